# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: prometheus_rules
short_description: Prometheus alert rules from the runbook's severity table and the inventory's overrides
version_added: 0.2.0
description:
  - Turns the severity table (C(plugins/module_utils/severity.py)) merged with C(claude_flow_thresholds) into
    Prometheus rule groups over the metrics the monitoring role's exporter writes - one alert per metric and
    level, C(severity) label C(P0)..C(P3), the runbook's wording as C(summary), the inventory host name in
    C(instance) (what the collection's Alertmanager event source reads).
  - A metric switched off with null gets no rule; an unavailable metric never fires.
  - R(claude_flow.runbook.prometheus_rule_tests,ansible_collections.claude_flow.runbook.prometheus_rule_tests_filter)
    makes their C(promtool test rules) file and
    R(claude_flow.runbook.alertmanager_config,ansible_collections.claude_flow.runbook.alertmanager_config_filter)
    the Alertmanager config that routes them to the EDA source.
options:
  _input:
    description:
      - C(claude_flow_thresholds) for every host, or, with O(by_host=true), a dict of host name to that host's
        C(claude_flow_thresholds) (hosts with the same overrides share a rule group).
    type: dict
    required: true
  by_host:
    description: Whether the input maps host names to their overrides.
    type: bool
    default: false
  for_durations:
    description: C(for) per severity, merged over C({P0 2m, P1 5m, P2 10m, P3 30m}).
    type: dict
    default: {}
  keep_firing_for:
    description: Prometheus C(keep_firing_for) on every alert (holds an alert through a short recovery).
    type: str
  stale_after:
    description: How long without a successful probe before C(ClaudeFlowExporterStale) fires.
    type: str
    default: 5m
author:
  - claude_flow.runbook maintainers (!UNKNOWN)
'''

EXAMPLES = r'''
- name: Rules for the fleet, each host with its own overrides
  ansible.builtin.copy:
    dest: /etc/prometheus/rules/claude-flow.yml
    content: "{{ dict(groups['claude_flow'] | zip(groups['claude_flow'] | map('extract', hostvars)
                 | map(attribute='claude_flow_thresholds', default={})))
                 | claude_flow.runbook.prometheus_rules(by_host=true) | to_nice_yaml(indent=2) }}"
    mode: "0644"
'''

RETURN = r'''
_value:
  description: The rule file content, C({groups [...]}).
  type: dict
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.claude_flow.runbook.plugins.module_utils.prometheus_rules import RulesError, prometheus_rules


def _rules(overrides, by_host=False, for_durations=None, keep_firing_for=None, stale_after='5m',
           evaluation_interval=None):
    if overrides is not None and not isinstance(overrides, dict):
        raise AnsibleFilterError('prometheus_rules expects a dict (claude_flow_thresholds, or host -> overrides '
                                 'with by_host=true), got %s' % type(overrides).__name__)
    try:
        if by_host:
            return prometheus_rules(by_host=dict(overrides or {}), for_durations=for_durations,
                                    keep_firing_for=keep_firing_for, stale_after=stale_after,
                                    evaluation_interval=evaluation_interval)
        return prometheus_rules(overrides, for_durations=for_durations, keep_firing_for=keep_firing_for,
                                stale_after=stale_after, evaluation_interval=evaluation_interval)
    except RulesError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {'prometheus_rules': _rules}
