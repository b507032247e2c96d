# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Triage results as Prometheus exposition text, and the runner that writes them for node_exporter.

One run = triage.run() (the same probes and SQL the triage module uses) rendered as
gauges, one per metric of the severity table, plus the conditions, the probe's own
health and one series per unavailable metric whose reason is a code from REASON_CODES
(never the free-text reason: label values must stay a small fixed set).

The runner is what the monitoring role deploys on each host (bundled with the
module_utils it imports): it writes <textfile_dir>/claude_flow.prom atomically, once
(systemd timer) or every interval seconds (service loop).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import re
import sys
import time

from ansible_collections.claude_flow.runbook.plugins.module_utils.safe_files import atomic_write_bytes
from ansible_collections.claude_flow.runbook.plugins.module_utils.severity import CONDITIONS, THRESHOLDS

PREFIX = 'claude_flow_'
UNAVAILABLE = PREFIX + 'metric_unavailable'
# Outside input (agent names come from DB rows and CLI output): cap the series it can create.
MAX_AGENTS = 200

# Fixed reason codes; (code, pattern over the triage reason text) in match order.
REASON_CODES = ('db_missing', 'db_corrupt', 'db_error', 'not_in_schema', 'feature_unused', 'no_recent_data',
                'warming_up', 'state_unreadable', 'cli_unsupported', 'source_error', 'not_configured',
                'file_missing', 'probe_failed', 'other')
_REASON_PATTERNS = (
    ('db_corrupt', re.compile(r'failed (integrity|quick)_check|malformed|not a database', re.I)),
    ('not_in_schema', re.compile(r'does not exist in this database|this schema has no|has no column', re.I)),
    ('feature_unused', re.compile(r'never held a row|not in use|usage is 0|has been used yet', re.I)),
    ('no_recent_data', re.compile(r'\bno (verification|goap_planning|pattern)\b.*\bin the last\b|no verification '
                                  r'recorded|none has a score|averageScore null|no per-agent scores', re.I)),
    ('warming_up', re.compile(r'needs an earlier size sample', re.I)),
    ('state_unreadable', re.compile(r'unreadable|corrupted', re.I)),
    ('cli_unsupported', re.compile(r'has no truth command|unsupported', re.I)),
    ('not_configured', re.compile(r'^no \w+ given|known agents unknown|not measured', re.I)),
    ('db_missing', re.compile(r'^database .* does not exist', re.I)),
    ('file_missing', re.compile(r'does not exist', re.I)),
    ('db_error', re.compile(r'database is locked|unable to open|disk i/o|sqlite', re.I)),
    ('source_error', re.compile(r'claude-flow|cannot read|permission|timed? ?out|rc \d+', re.I)),
)

HELP = {
    'triage_up': '1 when the last triage probe ran to the end, 0 when it failed (then every metric is unavailable)',
    'triage_duration_seconds': 'Wall time of the last triage probe',
    'triage_last_run_timestamp_seconds': 'Unix time the last triage probe finished',
    'metric_unavailable': 'A runbook metric that could not be measured, with a reason code (never a severity)',
}


def reason_code(reason, conditions=None):
    """Map a triage 'unknown' reason (free text) to one of REASON_CODES."""
    conditions = conditions or {}
    if conditions.get('db_missing'):
        return 'db_missing'
    if conditions.get('db_corrupt'):
        return 'db_corrupt'
    text = str(reason or '')
    for code, pattern in _REASON_PATTERNS:
        if pattern.search(text):
            return code
    return 'other'


def escape_label(value):
    """Label value escaping of the text exposition format: backslash, double quote, line feed."""
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def format_value(value):
    value = float(value)
    if math.isnan(value):
        return 'NaN'
    if math.isinf(value):
        return '+Inf' if value > 0 else '-Inf'
    return repr(value)


def _labels(pairs):
    return '{%s}' % ','.join('%s="%s"' % (name, escape_label(value)) for name, value in pairs)


def metric_help(metric):
    spec = THRESHOLDS.get(metric) or CONDITIONS.get(metric)
    if spec is None:
        return HELP[metric]
    wording = spec['runbook'].replace('{threshold}', 'threshold').replace('{threshold_pct}', 'threshold')
    if metric in CONDITIONS:
        return '1 when true, 0 when measured false (runbook: %s)' % wording
    return 'Triage metric (runbook: %s)' % wording


class Exposition(object):
    """Collects samples per metric family and renders them with one HELP/TYPE each."""

    def __init__(self, host):
        self.host = host
        self.families = {}

    def add(self, name, value, **labels):
        pairs = [('host', self.host)] + sorted(labels.items())
        self.families.setdefault(name, []).append((pairs, value))

    def render(self):
        lines = []
        for name in sorted(self.families):
            full = PREFIX + name
            lines.append('# HELP %s %s' % (full, metric_help(name).replace('\\', '\\\\').replace('\n', ' ')))
            lines.append('# TYPE %s gauge' % full)
            for pairs, value in self.families[name]:
                lines.append('%s%s %s' % (full, _labels(pairs), format_value(value)))
        return '\n'.join(lines) + '\n'


def render(host, verdict=None, duration_s=0.0, finished_at=None, error=None):
    """Exposition text for one triage verdict (None with error when the probe failed)."""
    out = Exposition(host)
    out.add('triage_up', 0 if verdict is None else 1)
    out.add('triage_duration_seconds', round(duration_s, 6))
    out.add('triage_last_run_timestamp_seconds', round(finished_at if finished_at is not None else time.time(), 3))
    if verdict is None:
        for name in sorted(THRESHOLDS) + sorted(CONDITIONS):
            out.add('metric_unavailable', 1, metric=name, reason='probe_failed')
        return out.render()
    metrics = verdict.get('metrics') or {}
    conditions = verdict.get('conditions') or {}
    unknown = verdict.get('unknown') or {}
    for name in sorted(THRESHOLDS):
        value = metrics.get(name)
        if name in unknown or value is None:
            out.add('metric_unavailable', 1, metric=name,
                    reason=reason_code(unknown.get(name, 'not measured'), conditions))
            continue
        if isinstance(value, dict):  # per-agent scores
            for agent in sorted(value)[:MAX_AGENTS]:
                if value[agent] is not None:
                    out.add(name, value[agent], agent=agent)
            continue
        out.add(name, value)
    if 'db_corrupt' in conditions:  # the DB was found, so it is measured as not missing
        conditions = dict(conditions, db_missing=bool(conditions.get('db_missing')))
    for name in sorted(CONDITIONS):
        if name in unknown or name not in conditions or conditions[name] is None:
            out.add('metric_unavailable', 1, metric=name, reason=reason_code(unknown.get(name, 'not measured')))
            continue
        out.add(name, 1 if conditions[name] else 0)
    return out.render()


# What triage.run() needs; the same defaults as the triage module's options.
TRIAGE_DEFAULTS = {
    'app_dir': '/opt/claude-code-production', 'path': None, 'executable': None, 'timeout': None,
    'busy_timeout': 5000, 'integrity_check_max_bytes': 67108864, 'health_url': 'http://localhost:8080/health',
    'health_timeout': 3, 'log_path': '/var/log/claude-code/application.log', 'log_lines': 500, 'window': '1h',
    'thresholds': {}, 'registry': None, 'known_agents': None,
}


class ExporterConfigError(ValueError):
    pass


def load_config(path):
    """The runner's JSON config (written by the monitoring role): host, textfile, interval, triage options."""
    try:
        with open(path) as handle:
            config = json.load(handle)
    except (IOError, OSError, ValueError) as exc:
        raise ExporterConfigError('cannot read exporter config %s: %s' % (path, exc))
    if not isinstance(config, dict) or not config.get('host') or not config.get('textfile'):
        raise ExporterConfigError('exporter config %s needs "host" (inventory name) and "textfile" (a .prom path '
                                  'in node_exporter\'s textfile directory)' % path)
    if not str(config['textfile']).endswith('.prom'):
        raise ExporterConfigError('textfile %s must end in .prom: node_exporter reads only those' % config['textfile'])
    unknown = set(config.get('triage') or {}) - set(TRIAGE_DEFAULTS)
    if unknown:
        raise ExporterConfigError('exporter config %s: unknown triage options %s; known: %s'
                                  % (path, ', '.join(sorted(unknown)), ', '.join(sorted(TRIAGE_DEFAULTS))))
    params = dict(TRIAGE_DEFAULTS)
    params.update(config.get('triage') or {})
    config['triage'] = params
    return config


def run_once(config, triage_run=None):
    """One probe, rendered and written atomically. Returns (text, error or None)."""
    if triage_run is None:
        from ansible_collections.claude_flow.runbook.plugins.module_utils.triage import run as triage_run
    started = time.monotonic()
    verdict, error = None, None
    try:
        verdict = triage_run(config['triage'])
    except Exception as exc:  # any failure is "probe failed", reported as up=0; the loop goes on
        error = '%s: %s' % (type(exc).__name__, exc)
    text = render(config['host'], verdict, time.monotonic() - started, time.time())
    atomic_write_bytes(config['textfile'], text.encode('utf-8'), mode=0o644)
    return text, error


def main(argv=None):
    """Runner entry point: --config FILE [--loop] (loop: every config interval seconds, default 60)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if '--config' not in argv or argv.index('--config') + 1 >= len(argv):
        sys.stderr.write('usage: claude-flow-exporter --config FILE [--loop]\n')
        return 2
    try:
        config = load_config(argv[argv.index('--config') + 1])
    except ExporterConfigError as exc:
        sys.stderr.write('%s\n' % exc)
        return 2
    interval = float(config.get('interval') or 60)
    while True:
        started = time.monotonic()
        dummy, error = run_once(config)
        if error:
            sys.stderr.write('triage probe failed (exported claude_flow_triage_up 0): %s\n' % error)
        if '--loop' not in argv:
            return 1 if error else 0
        sys.stderr.flush()
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
