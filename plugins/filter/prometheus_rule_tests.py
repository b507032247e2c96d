# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: prometheus_rule_tests
short_description: promtool unit tests for the alert rules, generated from the severity table
version_added: 0.2.0
description:
  - A C(promtool test rules) file for the rules
    R(claude_flow.runbook.prometheus_rules,ansible_collections.claude_flow.runbook.prometheus_rules_filter) makes
    from the same overrides - for every threshold a series exactly at it (no alert at that level) and one just
    past it (an alert at every level it breaches), each condition true and false, an unavailable metric beside a
    breaching value (no alert) and a breach shorter than C(for) (no alert).
options:
  _input:
    description: C(claude_flow_thresholds) (overrides merged over the severity table).
    type: dict
    required: true
  rule_files:
    description: Rule files the test loads, relative to the test file.
    type: list
    elements: str
    required: true
  for_durations:
    description: The same C(for) per severity the rules were made with.
    type: dict
    default: {}
  keep_firing_for:
    description: The same C(keep_firing_for) the rules were made with.
    type: str
author:
  - claude_flow.runbook maintainers (!UNKNOWN)
'''

EXAMPLES = r'''
- name: Unit tests for the generated rules (run with promtool test rules)
  ansible.builtin.copy:
    dest: /etc/prometheus/rules/claude-flow.test.yml
    content: "{{ claude_flow_thresholds | default({}) | claude_flow.runbook.prometheus_rule_tests(['claude-flow.yml'])
                 | to_nice_yaml(indent=2) }}"
    mode: "0644"
'''

RETURN = r'''
_value:
  description: The test file content, C({rule_files, evaluation_interval, tests}).
  type: dict
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.claude_flow.runbook.plugins.module_utils.prometheus_rules import (
    RulesError, prometheus_rule_tests)


def _rule_tests(overrides, rule_files, for_durations=None, keep_firing_for=None):
    try:
        return prometheus_rule_tests(rule_files, overrides, for_durations=for_durations,
                                     keep_firing_for=keep_firing_for)
    except RulesError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {'prometheus_rule_tests': _rule_tests}
