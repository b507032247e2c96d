#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: notification
short_description: Send one incident message to Slack, PagerDuty Events v2 or a JSON webhook, with retries
version_added: 0.3.0
description:
  - Posts one message to one channel and reports what the endpoint answered, per attempt.
  - A connection error, a timeout, HTTP 429 and HTTP 5xx are tried again with exponential backoff
    (O(delay), doubled after each attempt, at most O(max_delay)); a C(Retry-After) answer is honoured up to
    O(max_delay). Any other 4xx is never retried. Redirects are not followed.
  - The message is delivered when Slack answers 200, PagerDuty 200 or 202, a webhook 200, 201, 202 or 204.
    When it is not, the module fails with RV(delivered=false) and the answers; use C(failed_when) to go on.
  - The URL and the routing key are secrets. Every text returned is masked by value (also their parts,
    such as the token path of a webhook URL), and a malformed URL fails with a message that names
    O(url_name) and the problem, never the URL.
  - Run it on the controller (C(delegate_to=localhost)), as managed hosts often cannot reach the internet.
extends_documentation_fragment:
  - claude_flow.runbook.attributes
options:
  channel:
    description:
      - V(slack) posts an incoming-webhook message, V(pagerduty) a PagerDuty Events API v2 event,
        V(webhook) the O(body) as it is.
    type: str
    required: true
    choices: [slack, pagerduty, webhook]
  url:
    description:
      - The endpoint, C(http://) or C(https://). Surrounding whitespace is ignored.
      - For V(pagerduty), the Events API v2 enqueue URL (its default).
      - Required for V(slack) and V(webhook).
    type: str
  routing_key:
    description:
      - The PagerDuty integration (routing) key; required for V(pagerduty), ignored otherwise.
    type: str
  body:
    description:
      - The message, as the channel takes it. For V(slack) a dict with C(text) (and optionally C(attachments)
        or C(blocks)); for V(webhook) any dict.
      - For V(pagerduty) an Events v2 event without the routing key - C(event_action) (default V(trigger)),
        C(dedup_key), and for a trigger C(payload) with C(summary), C(source) and C(severity). The severity
        may be given as the runbook's V(P0) to V(P3) (sent as critical, error, warning, info); the summary is
        cut to 1024 characters.
    type: dict
    required: true
  retries:
    description: How many times a passing trouble is tried again after the first attempt (0 to 10).
    type: int
    default: 3
  delay:
    description: Seconds before the first retry; each further retry waits twice as long as the one before.
    type: float
    default: 1.0
  max_delay:
    description: The longest wait between two attempts, in seconds, also for a C(Retry-After) answer.
    type: float
    default: 30.0
  timeout:
    description: Seconds one attempt may take.
    type: int
    default: 10
  validate_certs:
    description: Verify the endpoint's TLS certificate.
    type: bool
    default: true
  mask_values:
    description:
      - Further secret values masked in what the module returns (the URL and the routing key always are).
    type: list
    elements: str
    default: []
  url_name:
    description: How error messages name the URL (for example the inventory variable that holds it).
    type: str
    default: url
  routing_key_name:
    description: How error messages name the routing key.
    type: str
    default: routing_key
attributes:
  check_mode:
    details: Sends nothing; checks the endpoint and the message as a real run would and returns RV(request).
notes:
  - The incident roles call this module for every notification and escalation; C(claude_flow.runbook.notify)
    records RV(result), RV(status) and the number of RV(attempts) per channel in the incident record and report.
'''

EXAMPLES = r'''
- name: Page through PagerDuty (retried with backoff; the play goes on when it is not delivered)
  claude_flow.runbook.notification:
    channel: pagerduty
    routing_key: "{{ claude_flow_pagerduty_routing_key }}"
    body:
      event_action: trigger
      dedup_key: INC-20260101-120000-app1
      payload:
        summary: "P0 INCIDENT on app1: service down"
        severity: P0
        source: app1
  delegate_to: localhost
  register: page
  failed_when: false

- name: Say whether the page went out
  ansible.builtin.debug:
    msg: "PagerDuty: {{ page.result }} ({{ page.attempts | length }} attempts)"

- name: Post to Slack, fewer and quicker retries
  claude_flow.runbook.notification:
    channel: slack
    url: "{{ claude_flow_slack_webhook_url }}"
    url_name: claude_flow_slack_webhook_url
    body:
      text: "P1 INCIDENT UPDATE"
    retries: 2
    delay: 0.5
    max_delay: 5
  delegate_to: localhost

- name: Post an event to a generic JSON webhook
  claude_flow.runbook.notification:
    channel: webhook
    url: "{{ claude_flow_webhook_url }}"
    body:
      incident_id: INC-20260101-120000-app1
      kind: update
  delegate_to: localhost
'''

RETURN = r'''
delivered:
  description: Whether the endpoint accepted the message. Always false in check mode.
  returned: always
  type: bool
  sample: true
status:
  description: The HTTP status of the last attempt; -1 when nothing answered (connection refused, timeout).
  returned: when a request was made
  type: int
  sample: 200
answer:
  description: The start of the last answer's body (at most 200 characters, secrets masked).
  returned: when a request was made
  type: str
  sample: ok
attempts:
  description:
    - One entry per attempt, in order; empty in check mode.
    - C(waited_s) is the wait before the attempt, C(retry_after_s) what a C(Retry-After) header asked for.
  returned: always
  type: list
  elements: dict
  sample:
    - {attempt: 1, status: 500, waited_s: 0.0, elapsed_ms: 12, answer: "{\"error\": \"busy\"}", error: null}
    - {attempt: 2, status: 200, waited_s: 1.0, elapsed_ms: 9, answer: ok, error: null}
result:
  description: One line for a report - delivered, NOT delivered with the status and reason, or NOT sent and why.
  returned: always
  type: str
  sample: delivered (HTTP 200) at attempt 2
endpoint:
  description: Where the message goes, scheme and host only (the path of a webhook URL holds its token).
  returned: when the URL is usable
  type: str
  sample: https://hooks.slack.com
channel:
  description: The channel.
  returned: always
  type: str
  sample: slack
request:
  description: What would be sent (method, endpoint, the JSON body with secrets masked).
  returned: in check mode
  type: dict
  sample: {method: POST, endpoint: "https://events.pagerduty.com", body: {event_action: trigger, routing_key: "********"}}
'''

from ansible_collections.claude_flow.runbook.plugins.module_utils import module_envelope
from ansible_collections.claude_flow.runbook.plugins.module_utils.notification import (
    DEFAULT_DELAY, DEFAULT_MAX_DELAY, DEFAULT_RETRIES, DEFAULT_TIMEOUT, PAGERDUTY_EVENTS_URL, NotificationError, send)


def work(module, params):
    url = params['url'] if params['url'] is not None else (PAGERDUTY_EVENTS_URL if params['channel'] == 'pagerduty' else '')
    try:
        result = send(params['channel'], url, params['body'], routing_key=params['routing_key'],
                      retries=params['retries'], delay=params['delay'], max_delay=params['max_delay'],
                      timeout=params['timeout'], validate_certs=params['validate_certs'],
                      mask_values=params['mask_values'], check_mode=module.check_mode,
                      url_name=params['url_name'], routing_key_name=params['routing_key_name'])
    except NotificationError as exc:
        raise module_envelope.ModuleFailure(str(exc), result='NOT sent: %s' % exc, delivered=False, attempts=[],
                                            channel=params['channel'])
    if not (module.check_mode or result['delivered']):
        raise module_envelope.ModuleFailure(result['result'], **result)
    result.update(changed=True, msg=result['result'])
    return result


def main():
    module_envelope.run(work, dict(
        channel=dict(type='str', required=True, choices=['slack', 'pagerduty', 'webhook']),
        url=dict(type='str', no_log=True),
        routing_key=dict(type='str', no_log=True),
        body=dict(type='dict', required=True),
        retries=dict(type='int', default=DEFAULT_RETRIES),
        delay=dict(type='float', default=DEFAULT_DELAY),
        max_delay=dict(type='float', default=DEFAULT_MAX_DELAY),
        timeout=dict(type='int', default=DEFAULT_TIMEOUT),
        validate_certs=dict(type='bool', default=True),
        mask_values=dict(type='list', elements='str', default=[], no_log=True),
        url_name=dict(type='str', default='url'),
        routing_key_name=dict(type='str', default='routing_key', no_log=False),
    ))


if __name__ == '__main__':
    main()
