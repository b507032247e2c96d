"""The severity table and classifier: the runbook's thresholds, overrides, unknown never breaching."""

import pytest

from ansible_collections.claude_flow.runbook.plugins.module_utils import severity


@pytest.mark.parametrize('score,expected', [(0.80, 'P0'), (0.849, 'P0'), (0.85, 'P1'), (0.88, 'P1'),
                                            (0.93, 'P2'), (0.95, 'none'), (0.99, 'none')])
def test_truth_score_levels_follow_the_runbook(score, expected):
    assert severity.classify({'truth_score': score})['severity'] == expected


def test_reasons_quote_the_runbook_and_sort_most_severe_first():
    result = severity.classify({'truth_score': 0.93, 'cache_hit_rate': 40.0, 'goap_planning_ms': 250},
                               conditions={'db_corrupt': True})
    assert result['severity'] == 'P0'
    assert [r['severity'] for r in result['reasons']] == ['P0', 'P1', 'P2', 'P2']
    assert result['reasons'][0]['runbook'] == 'Database corruption detected'
    cache = [r for r in result['reasons'] if r['metric'] == 'cache_hit_rate'][0]
    assert cache['runbook'] == 'Cache hit rate < 60.0%' and cache['threshold'] == 60.0
    assert result['recommended_playbook'] == 'playbooks/p0_response.yml'


def test_unknown_and_none_never_raise_severity():
    result = severity.classify({'truth_score': None, 'cache_hit_rate': 10.0},
                               unknown={'cache_hit_rate': 'table patterns has never held a row'})
    assert result['severity'] == 'none' and result['reasons'] == []
    assert set(result['unknown']) == {'truth_score', 'cache_hit_rate'}


def test_overrides_merge_and_null_switches_off():
    assert severity.classify({'truth_score': 0.91}, thresholds={'truth_score': {'P1': 0.92}})['severity'] == 'P1'
    assert severity.classify({'ops_per_second': 3}, thresholds={'ops_per_second': None})['severity'] == 'none'
    assert severity.classify({'ops_per_second': 0.4},
                             thresholds={'ops_per_second': {'P0': 0.5, 'P1': 1, 'P2': 1.5}})['severity'] == 'P0'


@pytest.mark.parametrize('overrides,words', [
    ({'nope': {'P1': 1}}, 'unknown threshold metric'),
    ({'truth_score': {'P9': 1}}, 'unknown severity'),
    ({'truth_score': {'P1': 'high'}}, 'must be a number'),
    ({'truth_score': 0.9}, 'must be a dict'),
])
def test_bad_overrides_are_named(overrides, words):
    with pytest.raises(severity.ThresholdError, match=words):
        severity.merge_thresholds(overrides)


def test_per_agent_scores_are_judged_one_by_one():
    result = severity.classify({'agent_score': {'coder': 0.70, 'tester': 0.97}})
    assert result['severity'] == 'P2'
    assert result['reasons'][0]['agent'] == 'coder'


def test_defaults_are_not_mutated_by_overrides():
    severity.merge_thresholds({'truth_score': {'P0': 0.5}})
    assert severity.THRESHOLDS['truth_score']['levels']['P0'] == 0.85
