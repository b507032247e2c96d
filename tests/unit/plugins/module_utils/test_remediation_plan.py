"""The remediation table: each finding gets the runbook's action, precedence holds, unknown plans nothing."""

import pytest

from ansible_collections.claude_flow.runbook.plugins.module_utils import remediation_plan, severity


def plan_for(response, metrics=None, conditions=None, extra_reasons=(), thresholds=None, unknown=None):
    result = severity.classify(metrics or {}, conditions=conditions, thresholds=thresholds, unknown=unknown)
    reasons = result['reasons'] + list(extra_reasons)
    return [step['action'] for step in remediation_plan.build_plan(reasons, response, metrics)]


DANGLING = {'metric': 'release_link_dangling', 'severity': 'P0', 'value': True, 'runbook': 'symlink dangles'}

# (response, metrics, conditions, extra reasons, expected actions in order): the decisions the P0 and
# P1 procedures made in their when: lists, now rows of data.
CASES = [
    ('P0', {}, {}, (), []),
    ('P0', {}, {'db_corrupt': True}, (), ['recover_db']),
    ('P0', {}, {'db_missing': True}, (), ['recover_db']),
    ('P0', {}, {'db_missing': True}, (DANGLING,), ['repoint_release']),
    ('P0', {'truth_score': 0.5}, {}, (), ['rollback']),
    ('P0', {'truth_score': 0.5}, {'db_corrupt': True}, (), ['recover_db']),
    ('P0', {}, {'service_down': True}, (), ['restart_service']),
    ('P0', {'truth_score': 0.5}, {'service_down': True}, (), ['rollback']),
    ('P0', {}, {'service_down': True, 'db_corrupt': True}, (), ['recover_db']),
    ('P0', {'ops_per_second': 10}, {}, (), ['optimize_db']),
    ('P0', {'ops_per_second': 10}, {'service_down': True}, (), ['restart_service', 'optimize_db']),
    ('P0', {'ops_per_second': 10, 'truth_score': 0.1}, {}, (), ['rollback']),
    ('P0', {'truth_score': 0.88, 'cache_hit_rate': 10.0}, {}, (), []),  # P1 findings: not the P0 procedure's
    ('P1', {}, {}, (), []),
    ('P1', {'truth_score': 0.88}, {}, (), ['retrain']),
    ('P1', {'truth_score': 0.5}, {}, (), ['retrain']),
    ('P1', {'cache_hit_rate': 50.0}, {}, (), ['prune_stale']),
    ('P1', {'truth_score': 0.88, 'cache_hit_rate': 65.0}, {}, (), ['retrain', 'prune_stale']),
    ('P1', {'truth_score': 0.88, 'cache_hit_rate': 75.0}, {}, (), ['retrain']),
    ('P1', {'cache_hit_rate': 65.0}, {}, (), []),  # below 70 but nothing at P1: no fix to ride along with
    ('P1', {'growth_mb_per_hour': 500.0}, {}, (), ['prune_old']),
    ('P1', {'growth_mb_per_hour': 500.0, 'cache_hit_rate': 50.0}, {}, (), ['prune_stale']),
    ('P1', {'growth_mb_per_hour': 500.0, 'cache_hit_rate': 69.0}, {}, (), ['prune_stale']),
    ('P1', {'ops_per_second': 60000}, {}, (), ['optimize_db']),
    ('P1', {'ops_per_second': 60000, 'growth_mb_per_hour': 500.0}, {}, (), ['prune_old']),
    ('P1', {'ops_per_second': 60000, 'cache_hit_rate': 50.0}, {}, (), ['prune_stale']),
    ('P1', {'quarantined_ratio': 0.5}, {}, (), ['review_quarantine']),
    ('P1', {'disk_free_ratio': 0.01}, {}, (), ['free_disk']),
    ('P1', {}, {'db_corrupt': True}, (), []),  # a P0 condition is the P0 procedure's
    ('P2', {'goap_planning_ms': 500.0}, {}, (), ['schedule_maintenance']),
    ('P2', {'agent_score': {'coder': 0.5}}, {}, (), ['schedule_maintenance']),
    ('P3', {'db_size_bytes': 10 ** 10}, {}, (), ['backlog']),
    ('P3', {'disk_free_ratio': 0.10}, {}, (), ['backlog']),
]


@pytest.mark.parametrize('response,metrics,conditions,extra,expected', CASES)
def test_plan_follows_the_table(response, metrics, conditions, extra, expected):
    assert plan_for(response, metrics, conditions, extra) == expected


def test_unknown_metrics_plan_nothing():
    assert plan_for('P1', {'cache_hit_rate': 0.0}, unknown={'cache_hit_rate': 'idle: no lookups in the window'}) == []
    assert plan_for('P0', {'truth_score': None}) == []


def test_switched_off_metric_plans_nothing():
    assert plan_for('P0', {'ops_per_second': 1}, thresholds={'ops_per_second': None}) == []


def test_each_step_says_why_and_quotes_the_runbook():
    result = severity.classify({'truth_score': 0.88, 'cache_hit_rate': 65.0})
    plan = remediation_plan.build_plan(result['reasons'], 'P1', {'truth_score': 0.88, 'cache_hit_rate': 65.0})
    retrain, prune = plan
    assert retrain['why'] == ['Truth verification score < 0.9: measured 0.88'] and retrain['metrics'] == ['truth_score']
    assert retrain['runbook'].startswith('P1 step 3')
    assert prune['why'] == ['Cache hit rate below 70.0% while another P1 fix runs: measured 65.0']


def test_restart_falls_back_to_rollback():
    result = severity.classify({}, conditions={'service_down': True})
    assert remediation_plan.build_plan(result['reasons'], 'P0')[0]['fallback'] == 'rollback'


def test_every_metric_and_condition_has_an_action_at_each_of_its_levels():
    triggers = set(trigger for spec in remediation_plan.ACTIONS for trigger in spec['triggers'])
    for metric, spec in severity.THRESHOLDS.items():
        for level in spec['levels']:
            assert (metric, level) in triggers, '%s at %s has no action in the remediation table' % (metric, level)
    for condition, spec in severity.CONDITIONS.items():
        assert (condition, spec['severity']) in triggers


def test_a_bad_response_level_is_named():
    with pytest.raises(remediation_plan.PlanError, match='response must be one of P0, P1, P2, P3'):
        remediation_plan.build_plan([], 'P7')
