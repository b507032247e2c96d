# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: alertmanager_config
short_description: Alertmanager config that routes the runbook's alerts to the EDA source
version_added: 0.2.0
description:
  - Routes alerts with C(severity) C(P0)..C(P3) to the collection's Alertmanager event source with the bearer
    token read from a file (C(credentials_file), so the token never sits in the config), with C(send_resolved)
    so the rulebook closes incidents.
  - Groups by C(instance) (the host) and C(severity); a firing higher severity on a host inhibits the lower ones
    on that host.
  - Anything else (the exporter-stale alert) goes to a receiver with no integrations; point it at people.
options:
  _input:
    description: The EDA source URL, for example V(http://127.0.0.1:5050/alerts).
    type: str
    required: true
  credentials_file:
    description: Absolute path of the file holding the bearer token, readable by Alertmanager.
    type: str
    required: true
  group_wait:
    description: Alertmanager C(group_wait).
    type: str
    default: 30s
  group_interval:
    description: Alertmanager C(group_interval).
    type: str
    default: 5m
  repeat_interval:
    description: Alertmanager C(repeat_interval).
    type: str
    default: 4h
  resolve_timeout:
    description: Alertmanager C(global.resolve_timeout).
    type: str
    default: 5m
author:
  - claude_flow.runbook maintainers (!UNKNOWN)
'''

EXAMPLES = r'''
- name: Alertmanager config for the incident-response rulebook
  ansible.builtin.copy:
    dest: /etc/prometheus/alertmanager.yml
    content: "{{ 'http://127.0.0.1:5050/alerts' | claude_flow.runbook.alertmanager_config(
                 credentials_file='/etc/prometheus/eda-token') | to_nice_yaml(indent=2) }}"
    mode: "0644"
'''

RETURN = r'''
_value:
  description: The Alertmanager configuration as a dict.
  type: dict
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.claude_flow.runbook.plugins.module_utils.prometheus_rules import (
    RulesError, alertmanager_config)


def _alertmanager(url, credentials_file, **timing):
    try:
        return alertmanager_config(url, credentials_file, **timing)
    except RulesError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {'alertmanager_config': _alertmanager}
