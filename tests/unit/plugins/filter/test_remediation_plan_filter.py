"""The remediation_plan filter gives exactly build_plan's answer for a triage result, and says what is wrong."""

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.claude_flow.runbook.plugins.filter.remediation_plan import FilterModule
from ansible_collections.claude_flow.runbook.plugins.module_utils import remediation_plan, severity
from ansible_collections.claude_flow.runbook.tests.unit.plugins.module_utils.test_remediation_plan import CASES

plan_filter = FilterModule().filters()['remediation_plan']


def triage_result(metrics, conditions, extra=()):
    """What the triage module returns: classify()'s verdict plus the metrics and conditions it measured."""
    result = severity.classify(metrics, conditions=conditions)
    result['reasons'] = result['reasons'] + list(extra)
    result.update(metrics=metrics, conditions=conditions)
    return result


@pytest.mark.parametrize('response,metrics,conditions,extra,expected', CASES)
def test_filter_equals_build_plan_on_every_table_case(response, metrics, conditions, extra, expected):
    result = triage_result(metrics, conditions, extra)
    plan = plan_filter(result, response)
    assert plan == remediation_plan.build_plan(result['reasons'], response, metrics)
    assert [step['action'] for step in plan] == expected


@pytest.mark.parametrize('response,metrics,conditions,extra,expected', CASES)
def test_extra_reasons_give_the_same_plan_as_reasons_in_the_result(response, metrics, conditions, extra, expected):
    result = triage_result(metrics, conditions)
    assert plan_filter(result, response, extra_reasons=list(extra)) == plan_filter(
        triage_result(metrics, conditions, extra), response)


def test_without_a_level_the_result_severity_is_the_response():
    result = triage_result({'truth_score': 0.88, 'cache_hit_rate': 65.0}, {})
    assert result['severity'] == 'P1'
    # what a triage module returning its own plan computes: build_plan for its severity
    assert plan_filter(result) == remediation_plan.build_plan(result['reasons'], 'P1', result['metrics'])
    assert [step['action'] for step in plan_filter(result)] == ['retrain', 'prune_stale']


def test_a_healthy_host_has_an_empty_plan():
    assert plan_filter(triage_result({'truth_score': 0.99}, {})) == []
    assert plan_filter(triage_result({'truth_score': 0.99}, {}), 'P0') == []


def test_bad_input_is_named():
    with pytest.raises(AnsibleFilterError, match='expects a triage result'):
        plan_filter('P0')
    with pytest.raises(AnsibleFilterError, match='response must be one of P0, P1, P2, P3'):
        plan_filter(triage_result({}, {'db_corrupt': True}), 'P9')
    with pytest.raises(AnsibleFilterError, match='needs a metric and a severity'):
        plan_filter({'reasons': [{'runbook': 'x'}]}, 'P0')
