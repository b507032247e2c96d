# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbook's P0-P3 severity table as data, and the one classifier that reads it.

The triage module and the controller-side filter plugin both call classify(),
so a host is judged the same way wherever the facts are evaluated.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

LEVELS = ('P0', 'P1', 'P2', 'P3')
PLAYBOOKS = {'P0': 'playbooks/p0_response.yml', 'P1': 'playbooks/p1_response.yml',
             'P2': 'playbooks/p2_response.yml', 'P3': 'playbooks/p3_response.yml'}


def _metric(direction, levels, runbook, **action):
    """One row of the table: direction 'below' (value < threshold breaches) or 'above' (value > threshold),
    the threshold per level, the runbook's words, and the action per level."""
    return {'direction': direction, 'levels': levels, 'runbook': runbook, 'action': action}


# Levels are checked P0 first, so the most severe breached level wins for a metric.
THRESHOLDS = {
    'truth_score': _metric(
        'below', {'P0': 0.85, 'P1': 0.90, 'P2': 0.95}, 'Truth verification score < {threshold}',
        P0='roll back to the previous release (P0 step 2)',
        P1='retrain patterns: training neural-train --data recent (P1 step 3)',
        P2='investigate and schedule maintenance (P2 procedure)'),
    'agent_score': _metric(
        'below', {'P2': 0.90}, 'Single agent underperforming (score < {threshold})',
        P2='review the agent; quarantine it if it keeps failing (Common issue 1, option 3)'),
    'ops_per_second': _metric(
        'below', {'P0': 50000, 'P1': 100000, 'P2': 150000}, 'Neural operations/sec < {threshold}',
        P0='check for bottlenecks: ANALYZE, VACUUM, missing indexes (Common issue 2)',
        P1='optimize the database and check for bottlenecks (Common issue 2)',
        P2='schedule database maintenance (Common issue 2)'),
    'cache_hit_rate': _metric('below', {'P1': 60.0}, 'Cache hit rate < {threshold}%',
                              P1='clear stale patterns and VACUUM (P1 step 3, Common issue 4)'),
    'quarantined_ratio': _metric('above', {'P1': 0.10}, 'Multiple agents quarantined (> {threshold_pct}%)',
                                 P1='review quarantined agents and the release that introduced them'),
    'growth_mb_per_hour': _metric(
        'above', {'P1': 100.0}, 'Memory database growing rapidly (> {threshold}MB/hour)',
        P1='find the writer, prune old patterns, check disk space (Common issue 2)'),
    'goap_planning_ms': _metric('above', {'P2': 100.0}, 'GOAP planning slow (> {threshold}ms average)',
                                P2='clear stale planning patterns, retrain heuristics (Common issue 5)'),
    'db_size_bytes': _metric(
        'above', {'P3': 858993459}, 'Memory database size approaching threshold (> {threshold} bytes)',
        P3='schedule pruning and VACUUM (maintenance.yml)'),
    'log_size_bytes': _metric('above', {'P3': 524288000}, 'Log files growing large (> {threshold} bytes)',
                              P3='rotate and compress application logs'),
    'disk_free_ratio': _metric(
        'below', {'P1': 0.05, 'P3': 0.15}, 'Disk space low on the database filesystem (< {threshold_pct}% free)',
        P1='free disk space now: SQLite fails writes on a full disk (Prevention: monitor disk)',
        P3='plan disk space (Prevention: monitor disk space and I/O)'),
}

# Facts that are conditions rather than numbers.
CONDITIONS = {
    'db_corrupt': {'severity': 'P0', 'runbook': 'Database corruption detected',
                   'action': 'stop the service, restore the newest verified backup (P0 step 2, Common issue 3)'},
    'service_down': {'severity': 'P0', 'runbook': 'System completely unavailable',
                     'action': 'restart the service; roll back if it does not come up (P0 step 2)'},
    'db_missing': {'severity': 'P0', 'runbook': 'Data loss detected',
                   'action': 'restore the newest verified backup (P0 step 2)'},
}


class ThresholdError(ValueError):
    pass


def merge_thresholds(overrides):
    """Runbook defaults with overrides: {metric: {P0: x, ...}} merges, {metric: None} switches it off."""
    table = copy.deepcopy(THRESHOLDS)
    for metric, levels in (overrides or {}).items():
        if metric not in table:
            raise ThresholdError('unknown threshold metric %r; known metrics: %s'
                                 % (metric, ', '.join(sorted(table))))
        if levels is None:
            table[metric]['levels'] = {}
            continue
        if not isinstance(levels, dict):
            raise ThresholdError('thresholds.%s must be a dict like {P1: 0.9} or null to switch it off, got %r'
                                 % (metric, levels))
        for level, value in levels.items():
            if level not in LEVELS:
                raise ThresholdError('thresholds.%s has unknown severity %r; use P0, P1, P2 or P3'
                                     % (metric, level))
            if value is None:
                table[metric]['levels'].pop(level, None)
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    raise ThresholdError('thresholds.%s.%s must be a number, got %r' % (metric, level, value))
            table[metric]['levels'][level] = value
            table[metric]['action'].setdefault(level, table[metric]['action'][sorted(table[metric]['action'])[0]])
    return table


def _breaches(direction, value, threshold):
    return value < threshold if direction == 'below' else value > threshold


def _describe(spec, threshold):
    return spec['runbook'].format(threshold=threshold, threshold_pct=round(threshold * 100, 2))


def worst(severities):
    present = [s for s in severities if s in LEVELS]
    return min(present, key=LEVELS.index) if present else 'none'


def classify(metrics, conditions=None, thresholds=None, unknown=None):
    """Classify measured facts.

    metrics: {metric: number or None}; None or a metric listed in unknown is never a breach.
    conditions: {condition: bool}; True breaches, None/False does not.
    Returns {severity, reasons, unknown, recommended_playbook}; reasons most severe first.
    """
    table = merge_thresholds(thresholds)
    unknown = dict(unknown or {})
    reasons = []
    for name, value in sorted((metrics or {}).items()):
        spec = table.get(name)
        if spec is None or name in unknown:
            continue
        if value is None:
            unknown.setdefault(name, 'not measured')
            continue
        if isinstance(value, dict):  # per-agent scores: {agent: score}
            for agent, score in sorted(value.items()):
                reason = _first_breach(name, spec, score)
                if reason:
                    reason['agent'] = agent
                    reasons.append(reason)
            continue
        reason = _first_breach(name, spec, value)
        if reason:
            reasons.append(reason)
    for name, state in sorted((conditions or {}).items()):
        if state and name in CONDITIONS:
            spec = CONDITIONS[name]
            reasons.append({'metric': name, 'value': True, 'threshold': True, 'severity': spec['severity'],
                            'runbook': spec['runbook'], 'action': spec['action']})
    reasons.sort(key=lambda r: LEVELS.index(r['severity']))
    severity = worst(r['severity'] for r in reasons)
    return {'severity': severity, 'reasons': reasons, 'unknown': unknown,
            'recommended_playbook': PLAYBOOKS.get(severity)}


def _first_breach(name, spec, value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    for level in LEVELS:
        threshold = spec['levels'].get(level)
        if threshold is not None and _breaches(spec['direction'], value, threshold):
            return {'metric': name, 'value': value, 'threshold': threshold, 'severity': level,
                    'runbook': _describe(spec, threshold), 'action': spec['action'].get(level, '')}
    return None
