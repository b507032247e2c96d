# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One read-only round trip on a host: every fact the runbook's P0/P1 assessment reads, classified.

Each probe returns its facts or says why it could not measure them; a probe
that fails makes its metrics unknown and never raises the severity.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import time

from ansible.module_utils.urls import open_url

from ansible_collections.claude_flow.runbook.plugins.module_utils.memory_db import (
    MemoryDbError, check_integrity, missing_db_state, open_for_reading)
from ansible_collections.claude_flow.runbook.plugins.module_utils.memory_db_metrics import Context, collect
from ansible_collections.claude_flow.runbook.plugins.module_utils.safe_files import fs_usage
from ansible_collections.claude_flow.runbook.plugins.module_utils.safe_read import (
    LOG_TAIL_MAX_BYTES, UnsafeFileError, kind_of, tail_lines)
from ansible_collections.claude_flow.runbook.plugins.module_utils.remediation_plan import build_plan
from ansible_collections.claude_flow.runbook.plugins.module_utils.severity import LEVELS, classify

LOG_PATTERN = re.compile(r'critical|error|fatal', re.IGNORECASE)
DB_METRICS = ['ops_per_second', 'cache_hit_rate', 'goap_planning', 'growth_bytes_per_hour', 'db_size_bytes',
              'wal_size_bytes', 'patterns_created_24h', 'schema_profile']


class Facts(object):
    """Metrics for the classifier, conditions, unknown reasons, and details for the operator."""

    def __init__(self):
        self.metrics = {}
        self.conditions = {}
        self.unknown = {}
        self.details = {}

    def unknown_all(self, names, reason):
        for name in names:
            self.metrics[name] = None
            self.unknown[name] = reason


def integrity_mode(path, full_check_max_bytes):
    """integrity_check (the runbook's; also compares every index with its table) up to the size limit,
    quick_check (skips that comparison, O(pages)) above it, so a huge DB does not slow the assessment."""
    try:
        size = sum(os.path.getsize(member) for member in (path, path + '-wal') if os.path.exists(member))
    except OSError:
        size = 0
    return 'full' if full_check_max_bytes and size <= full_check_max_bytes else 'quick'


DB_METRIC_NAMES = ['ops_per_second', 'cache_hit_rate', 'goap_planning_ms', 'growth_mb_per_hour', 'db_size_bytes']


def probe_database(facts, path, window_s, busy_timeout_ms, record_growth, full_check_max_bytes=0, evidence_dirs=()):
    names = DB_METRIC_NAMES
    if not os.path.lexists(path) or (os.path.islink(path) and not os.path.exists(path)):
        state, reason = missing_db_state(path, evidence_dirs)
        facts.details['db_state'] = state
        if state == 'missing':
            facts.conditions['db_missing'] = True
        else:
            # Unknown is not a breach: nothing says data was lost.
            facts.conditions['db_missing'] = None
            facts.unknown['db_missing'] = reason
        facts.unknown_all(names, reason)
        return None
    if not os.path.isfile(path) or os.path.isdir(path):
        kind = 'a directory' if os.path.isdir(path) else kind_of(os.stat(path).st_mode)
        reason = ('configuration problem: %s is %s, not a database file; it was not opened (that could block): check '
                  'path' % (path, kind))
        facts.details['db_state'] = 'config'
        facts.conditions['db_missing'] = None
        facts.unknown['db_missing'] = reason
        facts.unknown['db_corrupt'] = reason
        facts.unknown_all(names, reason)
        return None
    facts.details['db_state'] = 'present'
    mode = integrity_mode(path, full_check_max_bytes)
    check = check_integrity(path, mode=mode, busy_timeout_ms=busy_timeout_ms)
    pragma = 'integrity_check' if mode == 'full' else 'quick_check'
    facts.details['integrity'] = {'ok': check['ok'], 'errors': check['errors'][:10],
                                  'journal_mode': check['journal_mode'], 'check': pragma}
    if not check['ok']:
        facts.conditions['db_corrupt'] = True
        facts.unknown_all(names, 'database failed %s' % pragma)
        facts.metrics['db_size_bytes'] = check['size_bytes']
        facts.unknown.pop('db_size_bytes')
        return None
    facts.conditions['db_corrupt'] = False
    try:
        with open_for_reading(path, busy_timeout_ms) as db:
            ctx = Context(db, window_s, record_growth=record_growth)
            metrics, unavailable = collect(ctx, DB_METRICS)
    except MemoryDbError as exc:
        facts.unknown_all(names, str(exc))
        return None
    facts.details['schema_profile'] = metrics['schema_profile']
    facts.details['db'] = metrics
    facts.metrics['ops_per_second'] = metrics['ops_per_second']
    facts.metrics['cache_hit_rate'] = metrics['cache_hit_rate']
    goap = metrics['goap_planning']
    facts.metrics['goap_planning_ms'] = goap['avg_ms'] if goap else None
    growth = metrics['growth_bytes_per_hour']
    facts.metrics['growth_mb_per_hour'] = round(growth / 1048576.0, 3) if growth is not None else None
    facts.metrics['db_size_bytes'] = metrics['db_size_bytes'] + (metrics['wal_size_bytes'] or 0)
    renamed = {'goap_planning': 'goap_planning_ms', 'growth_bytes_per_hour': 'growth_mb_per_hour'}
    for name, reason in unavailable.items():
        facts.unknown[renamed.get(name, name)] = reason
    return metrics


def probe_health(facts, url, timeout):
    if not url:
        facts.unknown['service_down'] = 'no health_url given'
        return
    started = time.monotonic()
    detail = {'url': url, 'status': None, 'error': None}
    try:
        response = open_url(url, method='GET', timeout=timeout, validate_certs=True, follow_redirects='safe')
        detail['status'] = response.getcode()
    except Exception as exc:  # urllib raises many types; any of them means "not healthy"
        detail['status'] = getattr(exc, 'code', None)
        detail['error'] = str(exc)
    detail['elapsed_ms'] = int((time.monotonic() - started) * 1000)
    facts.details['health'] = detail
    facts.conditions['service_down'] = not (detail['status'] and 200 <= detail['status'] < 300)


def probe_disk(facts, path):
    usage = fs_usage(path)
    facts.details['disk'] = usage
    facts.metrics['disk_free_ratio'] = usage['free_ratio']


def probe_log(facts, log_path, lines):
    """The runbook's `tail -500 | grep -c`: reads at most LOG_TAIL_MAX_BYTES from the end, never a FIFO or a device."""
    facts.details['log'] = None
    facts.metrics['log_size_bytes'] = None
    if not log_path or not os.path.lexists(log_path):
        facts.unknown['log_size_bytes'] = 'log %s does not exist' % log_path
        return
    try:
        tail, size, read = tail_lines(log_path, lines, LOG_TAIL_MAX_BYTES, what='log')
    except UnsafeFileError as exc:
        facts.unknown['log_size_bytes'] = 'unavailable: %s' % exc
        return
    except (IOError, OSError) as exc:
        facts.unknown['log_size_bytes'] = 'unavailable: cannot read log %s (%s); check its permissions' % (log_path, exc)
        return
    facts.metrics['log_size_bytes'] = size
    counts = {'critical': 0, 'error': 0, 'fatal': 0}
    for line in tail:
        for match in set(m.lower() for m in LOG_PATTERN.findall(line)):
            counts[match] += 1
    facts.details['log'] = {'path': log_path, 'lines_read': len(tail), 'bytes_read': read, 'counts': counts}


def probe_truth(facts, truth_reader):
    """truth_reader() -> truth_info-style dict (status, overall, agents, reason)."""
    truth = truth_reader()
    facts.details['truth'] = truth
    if truth.get('status') != 'ok' or truth.get('overall') is None:
        reason = truth.get('reason') or 'truth status %s' % truth.get('status')
        facts.unknown_all(['truth_score', 'agent_score'], reason)
        return
    facts.metrics['truth_score'] = truth['overall']
    agents = dict((a['agent'], a['score']) for a in truth.get('agents', []) if a.get('score') is not None)
    facts.metrics['agent_score'] = agents or None
    if not agents:
        facts.unknown['agent_score'] = 'no per-agent scores'


def probe_quarantine(facts, quarantine_reader):
    """quarantine_reader() -> {quarantined, quarantined_ratio, reason}."""
    state = quarantine_reader()
    facts.details['quarantine'] = state
    facts.metrics['quarantined_ratio'] = state.get('quarantined_ratio')
    if state.get('quarantined_ratio') is None:
        facts.unknown['quarantined_ratio'] = state.get('reason') or 'known agents unknown'


def classify_facts(facts, thresholds):
    verdict = classify(facts.metrics, conditions=facts.conditions, thresholds=thresholds, unknown=facts.unknown)
    verdict.update(metrics=facts.metrics, conditions=facts.conditions, details=facts.details)
    # What the host's own response procedure would do: the same build_plan the controller's filter runs.
    verdict['plan'] = build_plan(verdict['reasons'], verdict['severity'], facts.metrics) \
        if verdict['severity'] in LEVELS else []
    return verdict


def truth_reader(app_dir, executable, timeout, db_path, window_s, check_mode=False):
    """Truth scores the way truth_info's auto source reads them; errors become a status, never a raise.
    In check mode no CLI call that writes is made (the state file is read instead)."""
    from ansible_collections.claude_flow.runbook.plugins.module_utils import claude_flow, truth

    def read():
        try:
            return truth.collect('auto', app_dir, executable=executable, timeout=timeout, db_path=db_path,
                                 window=window_s, check_mode=check_mode)
        except (truth.TruthError, claude_flow.ClaudeFlowError) as exc:
            return {'status': 'error', 'reason': str(exc), 'overall': None, 'agents': []}
    return read


def quarantine_reader(app_dir, registry, known_agents_option, db_path):
    from ansible_collections.claude_flow.runbook.plugins.module_utils import quarantine, truth

    def read():
        try:
            entries = quarantine.load(registry or os.path.join(app_dir, quarantine.REGISTRY_FILE))
            known, source, why = quarantine.known_agents(
                known_agents_option, os.path.join(app_dir, truth.STATE_FILE), db_path)
        except quarantine.QuarantineError as exc:
            return {'quarantined': None, 'quarantined_ratio': None, 'reason': str(exc)}
        names = [e['agent'] for e in entries]
        return {'quarantined': names, 'known_agents': known, 'known_agents_source': source,
                'quarantined_ratio': quarantine.ratio(names, known), 'reason': why}
    return read


def run(params, check_mode=False):
    """Every probe, then the classification. params: the triage module's options."""
    from ansible_collections.claude_flow.runbook.plugins.module_utils.memory_db import parse_window
    window_s = parse_window(params['window'])
    app_dir = params['app_dir']
    db_path = params['path'] or os.path.join(app_dir, '.swarm', 'memory.db')
    facts = Facts()
    probe_database(facts, db_path, window_s, params['busy_timeout'], record_growth=not check_mode,
                   full_check_max_bytes=params.get('integrity_check_max_bytes', 0),
                   evidence_dirs=[params.get('backup_dir'), params.get('preserve_dir')])
    probe_health(facts, params['health_url'], params['health_timeout'])
    probe_disk(facts, db_path)
    probe_log(facts, params['log_path'], params['log_lines'])
    probe_truth(facts, truth_reader(app_dir, params['executable'], params['timeout'], db_path, window_s, check_mode))
    probe_quarantine(facts, quarantine_reader(app_dir, params['registry'], params['known_agents'], db_path))
    verdict = classify_facts(facts, params['thresholds'])
    verdict['window_seconds'] = window_s
    verdict['path'] = db_path
    return verdict
