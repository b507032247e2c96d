# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: mask_secrets
short_description: Mask secret values, and every recognisable part of them, in a text or a data structure
version_added: 0.2.0
description:
  - Replaces each given secret value by C(********) wherever it occurs, and so every recognisable part
    of it - the value trimmed, without its URL scheme, its path and query (the token part of a webhook
    URL), its token-like pieces, each line of a value with a line break, a piece of it cut short by
    truncation - in plain, URL-encoded, JSON-escaped and HTML-escaped form.
  - Matching ignores case. Values shorter than 4 characters are not masked.
  - Use it on every text that reaches a report, a record, a message or the run's output and may hold
    a secret (error messages, timelines), and mask before truncating.
  - The companion filters C(claude_flow.runbook.url_problem) and C(claude_flow.runbook.key_problem) check
    an endpoint URL or an API key and describe what is wrong with it by the variable's name, never by
    its value.
options:
  _input:
    description: A text, or lists/dicts holding texts (keys are masked too); other types pass unchanged.
    type: raw
    required: true
  secrets:
    description: The secret values; a string, or lists/dicts of them (nested). Empty values are ignored.
    type: raw
    required: true
author:
  - claude_flow.runbook maintainers (!UNKNOWN)
'''

EXAMPLES = r'''
- name: Record an error message without the webhook URL in it
  ansible.builtin.set_fact:
    delivery_error: >-
      {{ (result.msg | claude_flow.runbook.mask_secrets([claude_flow_slack_webhook_url, claude_flow_pagerduty_routing_key]))[:200] }}

- name: Say what is wrong with the Slack URL (the message names the variable, not the URL)
  ansible.builtin.debug:
    msg: "{{ claude_flow_slack_webhook_url | claude_flow.runbook.url_problem('claude_flow_slack_webhook_url') or 'ok' }}"

- name: Check a routing key
  ansible.builtin.debug:
    msg: "{{ claude_flow_pagerduty_routing_key | claude_flow.runbook.key_problem('claude_flow_pagerduty_routing_key') or 'ok' }}"
'''

RETURN = r'''
_value:
  description: The input with every form of every secret replaced by C(********) (mask_secrets); the problem
    with the endpoint, or an empty string when it is usable or empty (url_problem, key_problem).
  type: raw
'''

from ansible_collections.claude_flow.runbook.plugins.module_utils.secrets import key_problem, mask, url_problem


def mask_secrets(data, secrets):
    return mask(data, secrets)


class FilterModule(object):
    def filters(self):
        return {'mask_secrets': mask_secrets, 'url_problem': lambda value, name: url_problem(name, value),
                'key_problem': lambda value, name: key_problem(name, value)}
