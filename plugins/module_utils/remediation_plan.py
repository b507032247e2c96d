# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The remediation table: which runbook action a finding calls for, in which order, and what wins.

The severity table (severity.py) says how bad a host is; this table says what each response
procedure does about it. build_plan() turns the reasons classify() found into the ordered list of
actions for one response level, each with the findings that call for it and the runbook step it
performs. The triage module and the controller-side filter both call it, so the plan a playbook walks
is the plan a unit test checked.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.claude_flow.runbook.plugins.module_utils.severity import LEVELS

# Ordered by precedence: an earlier action runs first, and an action lists in 'unless' the actions
# that make it unnecessary when they are planned too (a restored DB is not also rolled back, a
# rolled-back release is not also restarted ...). 'triggers' are (metric or condition, severity)
# pairs; a reason matches when its metric is listed with its severity. 'fallback' is what the
# response does when the action itself fails.
ACTIONS = (
    {'action': 'repoint_release', 'responses': ('P0',),
     'triggers': (('release_link_dangling', 'P0'),), 'unless': (),
     'runbook': 'P0 step 2: manual rollback (the production symlink points at a deleted release)'},
    {'action': 'recover_db', 'responses': ('P0',),
     'triggers': (('db_corrupt', 'P0'), ('db_missing', 'P0')), 'unless': ('repoint_release',),
     'runbook': 'P0 step 2: If database corruption detected (stop, restore the newest verified backup, start)'},
    {'action': 'rollback', 'responses': ('P0',),
     'triggers': (('truth_score', 'P0'),), 'unless': ('recover_db', 'repoint_release'),
     'runbook': 'P0 step 2: If auto-rollback has not triggered, do manual rollback'},
    {'action': 'restart_service', 'responses': ('P0',), 'fallback': 'rollback',
     'triggers': (('service_down', 'P0'),), 'unless': ('recover_db', 'repoint_release', 'rollback'),
     'runbook': 'P0 step 2: Stabilize System (restart; roll back if it does not come up)'},
    {'action': 'optimize_db', 'responses': ('P0',),
     'triggers': (('ops_per_second', 'P0'),), 'unless': ('recover_db', 'repoint_release', 'rollback'),
     'runbook': 'Common issue 2: check for bottlenecks (ANALYZE, VACUUM, missing indexes)'},
    {'action': 'retrain', 'responses': ('P1',),
     'triggers': (('truth_score', 'P0'), ('truth_score', 'P1')), 'unless': (),
     'runbook': 'P1 step 3: If truth score is low, retrain patterns'},
    {'action': 'prune_stale', 'responses': ('P1',),
     'triggers': (('cache_hit_rate', 'P1'),), 'unless': (),
     'runbook': 'P1 step 3: If cache hit rate is low, optimize cache (clear stale patterns, VACUUM)'},
    {'action': 'prune_old', 'responses': ('P1',),
     'triggers': (('growth_mb_per_hour', 'P1'),), 'unless': ('prune_stale',),
     'runbook': 'Common issue 2, option 3: prune old patterns'},
    {'action': 'optimize_db', 'responses': ('P1',),
     'triggers': (('ops_per_second', 'P0'), ('ops_per_second', 'P1')), 'unless': ('prune_stale', 'prune_old'),
     'runbook': 'P1 step 3: If operations/sec is low, check for bottlenecks'},
    {'action': 'review_quarantine', 'responses': ('P1',),
     'triggers': (('quarantined_ratio', 'P1'),), 'unless': (),
     'runbook': 'P1 step 2: Check for degraded agents (review the quarantined agents; no automated fix)'},
    {'action': 'free_disk', 'responses': ('P1',),
     'triggers': (('disk_free_ratio', 'P1'),), 'unless': (),
     'runbook': 'Prevention: monitor disk space (a human frees space; no automated deletion)'},
    {'action': 'schedule_maintenance', 'responses': ('P2',),
     'triggers': tuple((metric, 'P2') for metric in
                       ('truth_score', 'agent_score', 'ops_per_second', 'goap_planning_ms')), 'unless': (),
     'runbook': 'P2: investigate, create a ticket, schedule maintenance if needed'},
    {'action': 'backlog', 'responses': ('P3',),
     'triggers': tuple((metric, 'P3') for metric in ('db_size_bytes', 'log_size_bytes', 'disk_free_ratio')),
     'unless': (), 'runbook': 'P3: log the issue and add it to the backlog'},
)

# A P1 response also clears stale patterns when the cache is below this hit rate and the host has any
# finding at P1 or worse (the runbook's "optimize cache" step is cheap and helps every P1 cause).
CACHE_PRUNE_BELOW = 70.0


class PlanError(ValueError):
    pass


def response_level(severity):
    """The response that handles a host of this severity (P0..P3), or None for a healthy host."""
    return severity if severity in LEVELS else None


def _triggered(spec, reasons):
    keys = set(spec['triggers'])
    return [reason for reason in reasons if (reason['metric'], reason['severity']) in keys]


def _why(reason):
    text = reason.get('runbook') or reason['metric']
    if reason.get('agent'):
        text += ' (agent %s)' % reason['agent']
    if reason.get('value') not in (None, True):
        text += ': measured %s' % reason['value']
    return text


def build_plan(reasons, response, metrics=None):
    """The ordered actions a `response` (P0..P3) takes for these classify() reasons.

    Returns a list of {action, why, metrics, runbook, fallback}; an empty list means nothing for this
    procedure to fix (the host is healthy at that level, or its findings are another level's).
    """
    if response not in LEVELS:
        raise PlanError('response must be one of %s, got %r' % (', '.join(LEVELS), response))
    reasons = list(reasons or [])
    at_or_above = LEVELS[:LEVELS.index(response) + 1]
    any_finding = any(reason['severity'] in at_or_above for reason in reasons)
    plan, planned = [], set()
    for spec in ACTIONS:
        if response not in spec['responses']:
            continue
        found = _triggered(spec, reasons)
        if spec['action'] == 'prune_stale' and not found and any_finding:
            found = _cache_below_prune_level(metrics)
        if not found or planned.intersection(spec['unless']) or spec['action'] in planned:
            continue
        planned.add(spec['action'])
        plan.append({'action': spec['action'], 'why': [_why(reason) for reason in found],
                     'metrics': sorted(set(reason['metric'] for reason in found)),
                     'runbook': spec['runbook'], 'fallback': spec.get('fallback')})
    return plan


def _cache_below_prune_level(metrics):
    value = (metrics or {}).get('cache_hit_rate')
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value >= CACHE_PRUNE_BELOW:
        return []
    return [{'metric': 'cache_hit_rate', 'severity': 'P1', 'value': value,
             'runbook': 'Cache hit rate below %s%% while another P1 fix runs' % CACHE_PRUNE_BELOW}]
