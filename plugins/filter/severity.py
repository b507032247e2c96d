# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: severity
short_description: Classify claude-flow facts into the runbook's P0-P3 severity on the controller
version_added: 0.1.0
description:
  - Applies the runbook's severity table to a dict of facts, with the same code the
    M(claude_flow.runbook.triage) module runs on the host, so both give the same answer.
  - Input is the C(metrics) dict a triage result returns (or any dict with the same keys), or a whole
    triage result, from which C(metrics), C(conditions) and C(unknown) are taken.
options:
  _input:
    description: Facts to classify, for example a registered triage result.
    type: dict
    required: true
  thresholds:
    description:
      - Overrides merged over the runbook's defaults, keyed by metric, each C({P0, P1, P2, P3}) (any subset).
      - A metric set to null is switched off.
    type: dict
    default: {}
author:
  - claude_flow.runbook maintainers (!UNKNOWN)
'''

EXAMPLES = r'''
- name: Re-classify a host's triage facts with stricter thresholds on the controller
  ansible.builtin.debug:
    msg: "{{ triage_result | claude_flow.runbook.severity(thresholds={'truth_score': {'P1': 0.92}}) }}"
'''

RETURN = r'''
_value:
  description: C(severity) (P0..P3 or none), C(reasons), C(unknown) and C(recommended_playbook).
  type: dict
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.claude_flow.runbook.plugins.module_utils.severity import ThresholdError, classify


def severity(facts, thresholds=None):
    if not isinstance(facts, dict):
        raise AnsibleFilterError('severity expects a dict of facts (a triage result or its metrics), got %s'
                                 % type(facts).__name__)
    if 'metrics' in facts and isinstance(facts['metrics'], dict):
        metrics, conditions, unknown = facts['metrics'], facts.get('conditions') or {}, facts.get('unknown') or {}
    else:
        metrics, conditions, unknown = facts, {}, {}
    try:
        return classify(metrics, conditions=conditions, thresholds=thresholds, unknown=unknown)
    except ThresholdError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {'severity': severity}
