# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One incident message to one channel (Slack incoming webhook, PagerDuty Events API v2, a generic JSON
webhook), over HTTP with retries: the one place that knows the channels' payloads and answers.

What this is built on:
  * Slack incoming webhooks answer 200 ``ok``; PagerDuty Events v2 answers 202 (``/v2/enqueue``);
    a generic webhook answers some 2xx. Anything else is not delivered.
  * A connection error, a timeout, 429 and 5xx are passing troubles: tried again with exponential
    backoff (``delay``, doubled each time, at most ``max_delay``). A ``Retry-After`` answer is
    honoured up to ``max_delay``. Any other 4xx is the request's own fault and is never retried.
  * Redirects are not followed: a POST that carries a secret goes only where it was configured to.
  * The URL and the routing key are secrets: every text returned (errors, answer excerpts, the
    request shown in check mode) is masked by value, and a malformed URL is described by its name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import email.utils
import json
import re
import time

from ansible.module_utils.urls import open_url
from ansible_collections.claude_flow.runbook.plugins.module_utils.secrets import (
    MASK, Masker, key_problem, url_problem)

CHANNELS = ('slack', 'pagerduty', 'webhook')
# The answers that mean "delivered", per channel.
ACCEPTED = {'slack': (200,), 'pagerduty': (200, 202), 'webhook': (200, 201, 202, 204)}
PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue'
PAGERDUTY_ACTIONS = ('trigger', 'acknowledge', 'resolve')
PAGERDUTY_SEVERITIES = ('critical', 'error', 'warning', 'info')
# The runbook's severities as PagerDuty severities.
PAGERDUTY_BY_RUNBOOK = {'P0': 'critical', 'P1': 'error', 'P2': 'warning', 'P3': 'info'}
PAGERDUTY_SUMMARY_MAX = 1024
# No answer at all (connection refused, timeout, TLS or DNS failure).
NO_ANSWER = -1
EXCERPT_CHARS = 200
READ_MAX_BYTES = 8192

DEFAULT_RETRIES = 3
DEFAULT_DELAY = 1.0
DEFAULT_MAX_DELAY = 30.0
DEFAULT_TIMEOUT = 10
MAX_RETRIES = 10
MAX_WAIT = 600.0


class NotificationError(Exception):
    """The message cannot be sent as asked; the message names the problem and the fix, never a secret."""


def retriable(status):
    """Whether an answer is a passing trouble worth another attempt."""
    return status == NO_ANSWER or status == 429 or 500 <= status <= 599


def backoff(attempt, delay, max_delay):
    """Seconds to wait before attempt (2, 3, ...): delay, 2*delay, 4*delay, ... at most max_delay."""
    return min(float(delay) * (2 ** (attempt - 2)), float(max_delay))


def retry_after(value, now=None):
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), or None when absent or unreadable."""
    if value is None:
        return None
    value = str(value).strip()
    if re.match(r'^\d+(\.\d+)?$', value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def check_settings(retries, delay, max_delay, timeout):
    if not 0 <= retries <= MAX_RETRIES:
        raise NotificationError('retries is %s; it must be between 0 and %d' % (retries, MAX_RETRIES))
    for name, value in (('delay', delay), ('max_delay', max_delay)):
        if not 0 <= value <= MAX_WAIT:
            raise NotificationError('%s is %s seconds; it must be between 0 and %d' % (name, value, MAX_WAIT))
    if not 1 <= timeout <= MAX_WAIT:
        raise NotificationError('timeout is %s seconds; it must be between 1 and %d' % (timeout, MAX_WAIT))


def check_endpoint(channel, url, routing_key=None, url_name='url', routing_key_name='routing_key'):
    """Raise NotificationError naming what is wrong with the endpoint (by its name, never its value)."""
    if channel not in CHANNELS:
        raise NotificationError('channel %r is not one of %s' % (channel, ', '.join(CHANNELS)))
    problem = url_problem(url_name, url)
    if not problem and not (url or '').strip():
        problem = '%s is empty; set it to the endpoint URL' % url_name
    if not problem and channel == 'pagerduty':
        problem = key_problem(routing_key_name, routing_key)
        if not problem and not (routing_key or '').strip():
            problem = '%s is empty; set it to the PagerDuty Events v2 integration (routing) key' % routing_key_name
    if problem:
        raise NotificationError(problem)


def _pagerduty_body(body, routing_key):
    action = body.get('event_action', 'trigger')
    if action not in PAGERDUTY_ACTIONS:
        raise NotificationError('body.event_action is %r; PagerDuty Events v2 knows %s'
                                % (action, ', '.join(PAGERDUTY_ACTIONS)))
    out = dict(body, event_action=action, routing_key=routing_key.strip())
    if action != 'trigger':
        if not body.get('dedup_key'):
            raise NotificationError('body.dedup_key is needed to %s a PagerDuty event (the one the trigger used)' % action)
        return out
    payload = dict(body.get('payload') or {})
    missing = [name for name in ('summary', 'source', 'severity') if not payload.get(name)]
    if missing:
        raise NotificationError('body.payload lacks %s, which a PagerDuty trigger needs' % ', '.join(missing))
    severity = PAGERDUTY_BY_RUNBOOK.get(payload['severity'], payload['severity'])
    if severity not in PAGERDUTY_SEVERITIES:
        raise NotificationError('body.payload.severity is %r; use P0-P3 or one of %s'
                                % (payload['severity'], ', '.join(PAGERDUTY_SEVERITIES)))
    payload.update(severity=severity, summary=str(payload['summary'])[:PAGERDUTY_SUMMARY_MAX])
    out['payload'] = payload
    return out


def build_body(channel, body, routing_key=None):
    """The JSON object the channel is sent: checked, and for PagerDuty completed with the routing key,
    the PagerDuty severity and a summary cut to PagerDuty's limit."""
    if not isinstance(body, dict) or not body:
        raise NotificationError('body must be a non-empty dict (the %s message)' % channel)
    if channel == 'slack' and not (body.get('text') or body.get('blocks') or body.get('attachments')):
        raise NotificationError('a Slack message needs body.text (or blocks or attachments)')
    if channel == 'pagerduty':
        return _pagerduty_body(body, routing_key or '')
    return dict(body)


def endpoint_of(url):
    """scheme://host[:port] of a URL: where a message goes, without the path that holds a webhook's token."""
    match = re.match(r'^([A-Za-z][A-Za-z0-9+.\-]*://)([^/?#]*)', url.strip())
    return (match.group(1) + match.group(2).rsplit('@', 1)[-1]) if match else ''


def _excerpt(data, masker):
    text = data.decode('utf-8', 'replace') if isinstance(data, bytes) else str(data or '')
    return masker.text(' '.join(text.split()))[:EXCERPT_CHARS]


def post_json(url, body, timeout, validate_certs):
    """One POST: (status, Retry-After header or None, answer bytes, error text or None).
    status is NO_ANSWER when nothing answered."""
    data = json.dumps(body).encode('utf-8')
    headers = {'Content-Type': 'application/json'}
    try:
        response = open_url(url.strip(), data=data, headers=headers, method='POST', timeout=timeout,
                            validate_certs=validate_certs, follow_redirects='none')
        return response.getcode(), None, response.read(READ_MAX_BYTES), None
    except Exception as exc:  # urllib raises many types; an HTTP answer has a code, anything else is no answer
        code = getattr(exc, 'code', None)
        if isinstance(code, int) and code > 0:
            answer = b''
            try:
                answer = exc.read(READ_MAX_BYTES)
            except Exception:  # a broken error body is still an answer with a status
                pass
            headers = getattr(exc, 'headers', None)
            return code, headers.get('Retry-After') if headers is not None else None, answer, None
        reason = getattr(exc, 'reason', exc)
        if 'timed out' in str(reason).lower() or type(reason).__name__ in ('timeout', 'TimeoutError'):
            return NO_ANSWER, None, b'', 'Request failed: timed out after %s s' % timeout
        return NO_ANSWER, None, b'', 'Request failed: %s' % (exc,)


def _summary(attempts, delivered):
    last = attempts[-1]
    count = len(attempts)
    if delivered:
        return 'delivered (HTTP %d)%s' % (last['status'], ' at attempt %d' % count if count > 1 else '')
    reason = last['error'] or last['answer']
    why = ('%d attempts' % count if retriable(last['status'])
           else '%s; HTTP %d is not retried' % ('1 attempt' if count == 1 else '%d attempts' % count, last['status']))
    return ('NOT delivered: HTTP %d %s (%s)' % (last['status'], reason, why)).replace('  ', ' ')


def send(channel, url, body, routing_key=None, retries=DEFAULT_RETRIES, delay=DEFAULT_DELAY,
         max_delay=DEFAULT_MAX_DELAY, timeout=DEFAULT_TIMEOUT, validate_certs=True, mask_values=None,
         check_mode=False, url_name='url', routing_key_name='routing_key', sleep=time.sleep):
    """Send body to the channel, retrying passing troubles; the result (masked) as the module returns it.
    Raises NotificationError, naming the problem, when the message cannot be sent at all."""
    check_settings(retries, delay, max_delay, timeout)
    check_endpoint(channel, url, routing_key, url_name, routing_key_name)
    masker = Masker([url, routing_key or ''] + list(mask_values or []))
    full = build_body(channel, body, routing_key)
    shown = dict(full, routing_key=MASK) if 'routing_key' in full else full
    result = {'channel': channel, 'endpoint': masker.text(endpoint_of(url)), 'delivered': False,
              'status': None, 'answer': '', 'attempts': []}
    if check_mode:
        result['request'] = {'method': 'POST', 'endpoint': result['endpoint'], 'body': masker.data(shown)}
        result['result'] = 'would send to %s (check mode: nothing sent)' % result['endpoint']
        return result
    wait = 0.0
    for number in range(1, retries + 2):
        if wait:
            sleep(wait)
        started = time.monotonic()
        status, asked, answer, error = post_json(url, full, timeout, validate_certs)
        attempt = {'attempt': number, 'status': status, 'waited_s': round(wait, 3),
                   'elapsed_ms': int((time.monotonic() - started) * 1000),
                   'answer': _excerpt(answer, masker), 'error': masker.text(error) if error else None}
        asked = retry_after(asked)
        if asked is not None:
            attempt['retry_after_s'] = asked
        result['attempts'].append(attempt)
        if status in ACCEPTED[channel]:
            result['delivered'] = True
            break
        if not retriable(status) or number > retries:
            break
        wait = min(asked, float(max_delay)) if asked is not None else backoff(number + 1, delay, max_delay)
    last = result['attempts'][-1]
    result.update(status=last['status'], answer=last['answer'],
                  result=_summary(result['attempts'], result['delivered']))
    return result
