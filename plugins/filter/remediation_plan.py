# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: remediation_plan
short_description: The ordered remediation actions a P0-P3 response takes for a triage result
version_added: 0.1.0
description:
  - Reads the reasons of a M(claude_flow.runbook.triage) result and returns, for one response level, the
    ordered list of actions from the collection's remediation table, with the precedence between them
    already applied (a recovered database is not also rolled back, a rolled-back release is not also
    restarted, ...).
  - The same table the triage module uses, so the plan a playbook walks is the plan a unit test checked.
  - An empty list means there is nothing for this response to fix.
options:
  _input:
    description: A registered triage result (C(reasons) and C(metrics) are read).
    type: dict
    required: true
  response:
    description:
      - The response level, C(P0)..C(P3), whose actions are wanted.
      - Defaults to the result's own C(severity); a healthy host (C(none)) gets an empty plan.
    type: str
  extra_reasons:
    description:
      - Findings the triage result does not carry, in the same shape as its reasons
        (C(metric), C(severity), C(runbook), optional C(value)), for example a C(release_link_dangling)
        reason of severity C(P0) when the production symlink points at a deleted release.
    type: list
    elements: dict
    default: []
author:
  - claude_flow.runbook maintainers (!UNKNOWN)
'''

EXAMPLES = r'''
- name: What the P0 procedure does on this host
  ansible.builtin.debug:
    msg: "{{ triage_result | claude_flow.runbook.remediation_plan('P0') | map(attribute='action') | list }}"
'''

RETURN = r'''
_value:
  description:
    - One entry per action, in the order they run, each with C(action) (repoint_release, recover_db, rollback,
      restart_service, optimize_db, retrain, prune_stale, prune_old, review_quarantine, free_disk,
      schedule_maintenance, backlog), C(why) (the findings that call for it), C(metrics), C(runbook) (the runbook
      step it performs) and C(fallback) (the action taken when it fails, or null).
  type: list
  elements: dict
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.claude_flow.runbook.plugins.module_utils.remediation_plan import PlanError, build_plan


def remediation_plan(result, response=None, extra_reasons=None):
    if not isinstance(result, dict) or not isinstance(result.get('reasons', []), list):
        raise AnsibleFilterError('remediation_plan expects a triage result (a dict with a list of reasons), got %s'
                                 % type(result).__name__)
    level = response or result.get('severity')
    if level in (None, 'none'):
        return []
    reasons = list(result.get('reasons') or []) + list(extra_reasons or [])
    bad = [reason for reason in reasons if not isinstance(reason, dict) or 'metric' not in reason or 'severity' not in reason]
    if bad:
        raise AnsibleFilterError('remediation_plan: every reason needs a metric and a severity, got %r' % bad[0])
    try:
        return build_plan(reasons, level, result.get('metrics'))
    except PlanError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {'remediation_plan': remediation_plan}
