# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus alert rules, their promtool unit tests and the Alertmanager config, all from the severity table.

Nothing here knows a threshold: every number comes from severity.merge_thresholds(), so the
inventory's claude_flow_thresholds changes the rules the same way it changes triage.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.claude_flow.runbook.plugins.module_utils.prometheus_exposition import PREFIX, UNAVAILABLE
from ansible_collections.claude_flow.runbook.plugins.module_utils.severity import (
    CONDITIONS, LEVELS, ThresholdError, _breaches, _describe, merge_thresholds)

# Long enough that a value wobbling across a threshold for a scrape or two does not fire.
DEFAULT_FOR = {'P0': '2m', 'P1': '5m', 'P2': '10m', 'P3': '30m'}
DURATION_RE = re.compile(r'^([0-9]+(ms|s|m|h|d|w|y))+$')
HOST_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]*$')
GROUP = 'claude_flow_runbook'


class RulesError(ValueError):
    pass


def alertname(metric):
    return 'ClaudeFlow' + ''.join(part.capitalize() for part in metric.split('_'))


def _number(value):
    value = float(value)
    return repr(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)


def _durations(for_durations):
    durations = dict(DEFAULT_FOR)
    for level, value in (for_durations or {}).items():
        if level not in LEVELS:
            raise RulesError('for_durations has unknown severity %r; use P0, P1, P2 or P3' % (level,))
        if not DURATION_RE.match(str(value)):
            raise RulesError('for_durations.%s must be a Prometheus duration like 30s, 5m or 1h, got %r' % (level, value))
        durations[level] = str(value)
    return durations


def _check_duration(name, value):
    if value is not None and not DURATION_RE.match(str(value)):
        raise RulesError('%s must be a Prometheus duration like 30s, 5m or 1h, got %r' % (name, value))


def _selector(hosts, exclude):
    if hosts is None and not exclude:
        return ''
    names = hosts if hosts is not None else exclude
    for name in names:
        if not HOST_RE.match(str(name)):
            raise RulesError('host %r is not an inventory host name (letters, digits, _ . -)' % (name,))
    pattern = '|'.join(re.escape(str(name)) for name in sorted(names))
    return 'host%s"%s"' % ('=~' if hosts is not None else '!~', pattern.replace('\\', '\\\\'))


def _rule(name, expr, level, for_duration, keep_firing_for, summary, action, metric):
    rule = {
        'alert': name,
        'expr': expr,
        'for': for_duration,
        # The EDA source reads the host from `instance`: the exporter's host label is the inventory name.
        'labels': {'severity': level, 'instance': '{{ $labels.host }}', 'metric': metric, 'runbook': 'claude-flow'},
        'annotations': {'summary': summary, 'action': action},
    }
    if keep_firing_for:
        rule['keep_firing_for'] = keep_firing_for
    return rule


def rules_for_table(table, for_durations=None, keep_firing_for=None, hosts=None, exclude=()):
    """Alert rules for one merged threshold table, optionally limited to (or excluding) some hosts."""
    durations = _durations(for_durations)
    _check_duration('keep_firing_for', keep_firing_for)
    selector = _selector(hosts, exclude)
    rules = []
    for metric in sorted(table):
        spec = table[metric]
        series = '%s%s%s' % (PREFIX, metric, '{%s}' % selector if selector else '')
        # An unavailable metric has no value series; `unless` also covers a stale value beside the marker.
        guard = ' unless on(host) %s{metric="%s"} == 1' % (UNAVAILABLE, metric)
        for level in LEVELS:
            threshold = spec['levels'].get(level)
            if threshold is None:
                continue
            operator = '<' if spec['direction'] == 'below' else '>'
            expr = '%s %s %s%s' % (series, operator, _number(threshold), guard)
            rules.append(_rule(alertname(metric), expr, level, durations[level], keep_firing_for,
                               _describe(spec, threshold), spec['action'].get(level, ''), metric))
    for condition in sorted(CONDITIONS):
        spec = CONDITIONS[condition]
        expr = '%s%s%s == 1' % (PREFIX, condition, '{%s}' % selector if selector else '')
        rules.append(_rule(alertname(condition), expr, spec['severity'], durations[spec['severity']],
                           keep_firing_for, spec['runbook'], spec['action'], condition))
    return rules


def _canonical(overrides):
    return repr(sorted((k, sorted(v.items()) if isinstance(v, dict) else v) for k, v in (overrides or {}).items()))


def prometheus_rules(overrides=None, by_host=None, for_durations=None, keep_firing_for=None,
                     stale_after='5m', group=GROUP, evaluation_interval=None):
    """Rule file content ({'groups': [...]}).

    overrides: claude_flow_thresholds for every host; or by_host: {host: its claude_flow_thresholds}, where
    hosts sharing the same overrides share one group (the most common set without a host list, so hosts
    added later get it).
    """
    _check_duration('stale_after', stale_after)
    _check_duration('evaluation_interval', evaluation_interval)
    groups = []
    if by_host:
        sets = {}
        for host in sorted(by_host):
            sets.setdefault(_canonical(by_host[host]), []).append(host)
        ordered = sorted(sets.items(), key=lambda item: (-len(item[1]), item[0]))
        others = [host for dummy, hosts in ordered[1:] for host in hosts]
        for index, (dummy, hosts) in enumerate(ordered):
            table = _merge(by_host[hosts[0]], hosts[0])
            if index == 0:
                rules = rules_for_table(table, for_durations, keep_firing_for, exclude=others)
            else:
                rules = rules_for_table(table, for_durations, keep_firing_for, hosts=hosts)
            groups.append(_group('%s_%d' % (group, index) if len(ordered) > 1 else group, rules, evaluation_interval))
    else:
        groups.append(_group(group, rules_for_table(_merge(overrides), for_durations, keep_firing_for),
                             evaluation_interval))
    groups.append(_group(group + '_exporter', [{
        'alert': 'ClaudeFlowExporterStale',
        # No severity P0-P3: the rulebook only logs it; a person has to look (nothing is measured).
        'expr': 'time() - %striage_last_run_timestamp_seconds > %d or %striage_up == 0'
                % (PREFIX, _seconds(stale_after), PREFIX),
        'for': stale_after,
        'labels': {'severity': 'info', 'instance': '{{ $labels.host }}', 'runbook': 'claude-flow'},
        'annotations': {'summary': 'claude-flow triage exporter has not produced a successful probe for %s'
                                   % stale_after,
                        'action': 'check the claude-flow-exporter unit on the host and its journal'},
    }], evaluation_interval))
    return {'groups': groups}


def _merge(overrides, host=None):
    try:
        return merge_thresholds(overrides)
    except ThresholdError as exc:
        raise RulesError('%s%s' % ('host %s: ' % host if host else '', exc))


def _group(name, rules, interval):
    group = {'name': name, 'rules': rules}
    if interval:
        group['interval'] = interval
    return group


def _seconds(duration):
    units = {'ms': 0.001, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800, 'y': 31536000}
    return int(sum(int(n) * units[u] for n, u in re.findall(r'([0-9]+)(ms|s|m|h|d|w|y)', duration)))


def _past(direction, threshold):
    """A value just past the threshold on the breaching side."""
    step = max(abs(float(threshold)) * 1e-6, 1e-9)
    if float(threshold) == int(threshold) and abs(threshold) > 1000:
        step = 1
    return float(threshold) - step if direction == 'below' else float(threshold) + step


def _expected(rule_index, metric, value, host, table):
    expected = []
    spec = table[metric]
    for level in LEVELS:
        threshold = spec['levels'].get(level)
        if threshold is not None and _breaches(spec['direction'], value, threshold):
            rule = rule_index[(metric, level)]
            labels = dict(rule['labels'], host=host, instance=host)
            expected.append({'exp_labels': labels, 'exp_annotations': dict(rule['annotations'])})
    return expected


def prometheus_rule_tests(rule_files, overrides=None, for_durations=None, keep_firing_for=None,
                          host='test-host'):
    """promtool test rules file: for every threshold, a series at the threshold (no alert at that level) and
    one just past it (alerts at every level it breaches), checked after `for`; conditions; an unavailable
    metric that never alerts; a breach shorter than `for` that does not fire."""
    table = _merge(overrides)
    durations = _durations(for_durations)
    rules = rules_for_table(table, for_durations, keep_firing_for)
    rule_index = dict(((r['labels']['metric'], r['labels']['severity']), r) for r in rules)
    longest = max(_seconds(d) for d in durations.values())
    minutes = longest // 60 + 2
    tests = []

    def case(name, series, alertname_, expected, eval_minutes=minutes, extra_series=()):
        inputs = [{'series': '%s{host="%s"}' % (series[0], host), 'values': series[1]}]
        inputs.extend({'series': s, 'values': v} for s, v in extra_series)
        tests.append({'name': name, 'interval': '1m', 'input_series': inputs,
                      'alert_rule_test': [{'eval_time': '%dm' % eval_minutes, 'alertname': alertname_,
                                           'exp_alerts': expected}]})

    for metric in sorted(table):
        spec = table[metric]
        for level in LEVELS:
            threshold = spec['levels'].get(level)
            if threshold is None:
                continue
            for label, value in (('at', float(threshold)), ('past', _past(spec['direction'], threshold))):
                case('%s %s %s threshold %s' % (metric, label, level, _number(threshold)),
                     (PREFIX + metric, '%sx%d' % (repr(value), minutes + 1)), alertname(metric),
                     _expected(rule_index, metric, value, host, table))
        worst_level = [lvl for lvl in LEVELS if lvl in spec['levels']]
        if worst_level:
            level = worst_level[0]
            value = _past(spec['direction'], spec['levels'][level])
            # Unavailable beside a (stale) breaching value: never a severity alert.
            case('%s unavailable never alerts' % metric, (PREFIX + metric, '%sx%d' % (repr(value), minutes + 1)),
                 alertname(metric), [], extra_series=[(
                     '%s{host="%s",metric="%s",reason="no_recent_data"}' % (UNAVAILABLE, host, metric),
                     '1x%d' % (minutes + 1))])
            # A breach shorter than `for` does not fire (one sample past, the rest healthy).
            values = [float(v) for v in spec['levels'].values()]
            healthy = 2 * max(values) if spec['direction'] == 'below' else min(values) / 2.0
            # Past the threshold for one minute less than `for` (pending, not firing), then healthy.
            short = max(1, _seconds(durations[level]) // 60 - 1)
            case('%s breach shorter than for does not fire' % metric,
                 (PREFIX + metric, '%sx%d %sx%d' % (repr(value), short, repr(healthy), minutes)), alertname(metric),
                 [], eval_minutes=short)
    for condition in sorted(CONDITIONS):
        rule = [r for r in rules if r['labels']['metric'] == condition][0]
        case('%s true' % condition, (PREFIX + condition, '1x%d' % (minutes + 1)), alertname(condition),
             [{'exp_labels': dict(rule['labels'], host=host, instance=host),
               'exp_annotations': dict(rule['annotations'])}])
        case('%s false' % condition, (PREFIX + condition, '0x%d' % (minutes + 1)), alertname(condition), [])
    return {'rule_files': list(rule_files), 'evaluation_interval': '1m', 'tests': tests}


def alertmanager_config(url, credentials_file, group_wait='30s', group_interval='5m', repeat_interval='4h',
                        resolve_timeout='5m'):
    """Alertmanager config: P0-P3 to the EDA source (bearer token from a file), grouped by host and severity;
    a higher severity on a host inhibits the lower ones there."""
    for name, value in (('group_wait', group_wait), ('group_interval', group_interval),
                        ('repeat_interval', repeat_interval), ('resolve_timeout', resolve_timeout)):
        _check_duration(name, value)
    if not re.match(r'^https?://[^\s]+$', str(url or '')):
        raise RulesError('url must be the EDA source URL, like http://127.0.0.1:5050/alerts, got %r' % (url,))
    if not str(credentials_file or '').startswith('/'):
        raise RulesError('credentials_file must be an absolute path to the file holding the bearer token, got %r'
                         % (credentials_file,))
    inhibit = []
    for index, level in enumerate(LEVELS[:-1]):
        inhibit.append({'source_matchers': ['severity="%s"' % level],
                        'target_matchers': ['severity=~"%s"' % '|'.join(LEVELS[index + 1:])],
                        'equal': ['instance']})
    return {
        'global': {'resolve_timeout': resolve_timeout},
        'route': {
            'receiver': 'claude-flow-log-only',
            'group_by': ['instance', 'severity'],
            'group_wait': group_wait, 'group_interval': group_interval, 'repeat_interval': repeat_interval,
            'routes': [{'receiver': 'claude-flow-eda', 'matchers': ['severity=~"%s"' % '|'.join(LEVELS)]}],
        },
        'receivers': [
            {'name': 'claude-flow-eda', 'webhook_configs': [{
                'url': url, 'send_resolved': True, 'max_alerts': 0,
                'http_config': {'authorization': {'type': 'Bearer', 'credentials_file': credentials_file}}}]},
            # Not P0-P3 (exporter stale): nothing to run; point this at a human channel.
            {'name': 'claude-flow-log-only'},
        ],
        'inhibit_rules': inhibit,
    }
