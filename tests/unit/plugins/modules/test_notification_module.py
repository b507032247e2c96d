"""The notification module as a real process against a real HTTP receiver on loopback."""

import time

import pytest

from scripted_http import ScriptedServer

TOKEN = 'S3cretT0kenPart0123456789'


@pytest.fixture
def server():
    with ScriptedServer() as srv:
        yield srv


def test_retried_with_backoff_then_delivered(module, server):
    path = '/services/T0/B0/' + TOKEN
    server.script(path, [503, 500, 200])
    started = time.monotonic()
    got = module('notification', {'channel': 'slack', 'url': server.url(path), 'body': {'text': 'P0 INCIDENT'},
                                  'delay': 0.3, 'max_delay': 2})
    assert got['_rc'] == 0 and got['delivered'] is True and got['changed'] is True, got
    assert [a['status'] for a in got['attempts']] == [503, 500, 200]
    assert [a['waited_s'] for a in got['attempts']] == [0.0, 0.3, 0.6]
    assert time.monotonic() - started >= 0.9   # the module really waited between attempts
    assert server.received(path)[0]['json'] == {'text': 'P0 INCIDENT'}
    assert TOKEN not in got['_out'] and isinstance(got['execution_time_ms'], int)


def test_undelivered_fails_with_the_answers(module, server):
    path = '/webhook/' + TOKEN
    server.script(path, [(403, {}, ('invalid token ' + TOKEN).encode())])
    got = module('notification', {'channel': 'webhook', 'url': server.url(path), 'body': {'kind': 'page'}})
    assert got['failed'] is True and got['delivered'] is False and got['status'] == 403, got
    assert len(got['attempts']) == 1 and len(server.received(path)) == 1
    assert got['msg'] == 'NOT delivered: HTTP 403 invalid token ******** (1 attempt; HTTP 403 is not retried)'
    assert TOKEN not in got['_out']


def test_malformed_url_fails_without_quoting_it(module):
    got = module('notification', {'channel': 'slack', 'url': 'hooks.slack.com/services/T0/B0/' + TOKEN,
                                  'url_name': 'claude_flow_slack_webhook_url', 'body': {'text': 'x'}})
    assert got['failed'] is True and got['msg'].startswith('claude_flow_slack_webhook_url has no scheme'), got
    assert got['result'].startswith('NOT sent: ') and got['attempts'] == []
    assert TOKEN not in got['_out'] and 'hooks.slack' not in got['_out']


def test_check_mode_sends_nothing(module, server):
    got = module('notification', {'channel': 'pagerduty', 'url': server.url('/v2/enqueue'), 'routing_key': TOKEN,
                                  'body': {'dedup_key': 'INC-1', 'payload': {'summary': 's', 'source': 'h',
                                                                             'severity': 'P0'}}},
                 check_mode=True)
    assert got['_rc'] == 0 and got['changed'] is True and got['delivered'] is False, got
    assert server.requests == []
    assert got['request']['body']['payload']['severity'] == 'critical'
    assert got['request']['body']['routing_key'] == '********' and TOKEN not in got['_out']


def test_check_mode_fails_like_the_real_run(module):
    got = module('notification', {'channel': 'pagerduty', 'routing_key': 'short', 'body': {'dedup_key': 'x'}},
                 check_mode=True)
    assert got['failed'] is True and 'routing_key is 5 characters long' in got['msg'], got
