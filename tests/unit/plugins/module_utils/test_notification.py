"""module_utils.notification against a real HTTP receiver on loopback: retries, backoff, Retry-After,
no retry on 4xx, timeouts, refused connections, masking, payload checks."""

import socket
import time

import pytest

from ansible_collections.claude_flow.runbook.plugins.module_utils import notification as n
from scripted_http import ScriptedServer

TOKEN = 'T0KENabcdef0123456789xyz'


@pytest.fixture
def server():
    with ScriptedServer() as srv:
        yield srv


class Sleeps(object):
    """Records the waits asked for and really waits them (short in these tests)."""

    def __init__(self):
        self.asked = []

    def __call__(self, seconds):
        self.asked.append(seconds)
        time.sleep(seconds)


def dead_url(path='/hook'):
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()   # nothing listens there now: connections are refused
    return 'http://127.0.0.1:%d%s' % (port, path)


def test_backoff_doubles_up_to_the_cap():
    assert [n.backoff(a, 1, 5) for a in range(2, 7)] == [1, 2, 4, 5, 5]
    assert n.backoff(2, 0.25, 30) == 0.25


def test_retry_after_reads_seconds_and_dates():
    assert n.retry_after('3') == 3.0
    assert n.retry_after(None) is None and n.retry_after('soon') is None
    assert 9 <= n.retry_after('Thu, 01 Jan 2026 00:00:10 GMT', now=1767225600.0) <= 10


def test_500_twice_then_200_is_delivered_on_the_third_attempt(server):
    path = '/hook/' + TOKEN
    server.script(path, [500, 500, 200])
    sleeps = Sleeps()
    got = n.send('webhook', server.url(path), {'kind': 'page'}, retries=3, delay=0.2, max_delay=5, sleep=sleeps)
    assert got['delivered'] is True and got['status'] == 200
    assert [a['status'] for a in got['attempts']] == [500, 500, 200]
    assert sleeps.asked == [0.2, 0.4], sleeps.asked   # exponential backoff
    arrivals = [r['time'] for r in server.received(path)]
    assert len(arrivals) == 3 and arrivals[2] - arrivals[0] >= 0.5   # the waits really happened
    assert got['result'] == 'delivered (HTTP 200) at attempt 3'
    assert TOKEN not in repr(got) and got['endpoint'] == server.url('')


def test_always_500_gives_up_after_the_retries(server):
    server.script('/down', [(500, {}, b'{"error": "db is down"}')])
    sleeps = Sleeps()
    got = n.send('slack', server.url('/down'), {'text': 'x'}, retries=2, delay=0.05, max_delay=0.08, sleep=sleeps)
    assert got['delivered'] is False and got['status'] == 500
    assert len(server.received('/down')) == 3 and sleeps.asked == [0.05, 0.08]   # capped at max_delay
    assert got['result'] == 'NOT delivered: HTTP 500 {"error": "db is down"} (3 attempts)'


def test_429_honours_retry_after_within_the_cap(server):
    server.script('/busy', [(429, {'Retry-After': '1'}), 200])
    sleeps = Sleeps()
    got = n.send('webhook', server.url('/busy'), {'a': 1}, retries=3, delay=0.01, max_delay=5, sleep=sleeps)
    assert got['delivered'] and [a['status'] for a in got['attempts']] == [429, 200]
    assert sleeps.asked == [1.0] and got['attempts'][0]['retry_after_s'] == 1.0
    arrivals = [r['time'] for r in server.received('/busy')]
    assert arrivals[1] - arrivals[0] >= 0.9
    server.script('/slowdown', [(429, {'Retry-After': '3600'}), 200])
    capped = Sleeps()
    n.send('webhook', server.url('/slowdown'), {'a': 1}, retries=1, delay=0.01, max_delay=0.3, sleep=capped)
    assert capped.asked == [0.3]


def test_404_is_not_retried(server):
    server.script('/gone/' + TOKEN, [(404, {}, ('no_such_hook ' + TOKEN).encode())])
    sleeps = Sleeps()
    got = n.send('slack', server.url('/gone/' + TOKEN), {'text': 'x'}, retries=3, delay=0.01, sleep=sleeps)
    assert got['delivered'] is False and len(got['attempts']) == 1 and sleeps.asked == []
    assert len(server.received('/gone/' + TOKEN)) == 1
    assert got['result'] == 'NOT delivered: HTTP 404 no_such_hook ******** (1 attempt; HTTP 404 is not retried)'


def test_hang_times_out_and_is_retried(server):
    server.script('/slow', ['hang', 200])
    started = time.monotonic()
    got = n.send('webhook', server.url('/slow'), {'a': 1}, retries=1, delay=0.1, timeout=1, sleep=Sleeps())
    assert got['delivered'] is True and [a['status'] for a in got['attempts']] == [-1, 200]
    assert got['attempts'][0]['error'] == 'Request failed: timed out after 1 s'
    assert 0.9 <= time.monotonic() - started < 4


def test_connection_refused_is_retried_then_reported():
    url = dead_url('/webhook/' + TOKEN)
    sleeps = Sleeps()
    got = n.send('webhook', url, {'a': 1}, retries=2, delay=0.01, sleep=sleeps)
    assert got['delivered'] is False and [a['status'] for a in got['attempts']] == [-1, -1, -1]
    assert sleeps.asked == [0.01, 0.02]
    assert got['result'].startswith('NOT delivered: HTTP -1 Request failed: ') and 'refused' in got['result']
    assert got['result'].endswith('(3 attempts)') and TOKEN not in repr(got)


def test_pagerduty_gets_the_routing_key_and_its_own_severity(server):
    server.script('/v2/enqueue', [202])
    body = {'event_action': 'trigger', 'dedup_key': 'INC-1',
            'payload': {'summary': 'x' * 2000, 'source': 'app1', 'severity': 'P1'}}
    got = n.send('pagerduty', server.url('/v2/enqueue'), body, routing_key=TOKEN + '\n', sleep=Sleeps())
    sent = server.received('/v2/enqueue')[0]['json']
    assert got['delivered'] and sent['routing_key'] == TOKEN
    assert sent['payload']['severity'] == 'error' and len(sent['payload']['summary']) == 1024


def test_check_mode_sends_nothing_and_shows_the_masked_request(server):
    body = {'event_action': 'resolve', 'dedup_key': 'INC-1', 'note': 'key ' + TOKEN}
    got = n.send('pagerduty', server.url('/v2/enqueue'), body, routing_key=TOKEN, check_mode=True)
    assert server.requests == [] and got['delivered'] is False and got['attempts'] == []
    assert got['request']['body']['routing_key'] == '********'
    assert got['request']['body']['note'] == 'key ********' and TOKEN not in repr(got)


@pytest.mark.parametrize('url, problem', [
    ('hooks.slack.com/services/T0/B0/' + TOKEN, 'SLACK_URL has no scheme'),
    ('hxxps://hooks.slack.com/services/' + TOKEN, 'SLACK_URL has a scheme other than http or https'),
    ('https://hooks.slack.com/services/ ' + TOKEN, 'SLACK_URL contains a space'),
    ('', 'SLACK_URL is empty'),
])
def test_malformed_url_is_named_never_quoted(url, problem):
    with pytest.raises(n.NotificationError) as err:
        n.send('slack', url, {'text': 'x'}, url_name='SLACK_URL')
    assert str(err.value).startswith(problem) and TOKEN not in str(err.value) and 'hooks.slack' not in str(err.value)


@pytest.mark.parametrize('channel, body, key, problem', [
    ('slack', {'username': 'x'}, None, 'a Slack message needs body.text'),
    ('pagerduty', {'event_action': 'page'}, TOKEN, "body.event_action is 'page'"),
    ('pagerduty', {'event_action': 'resolve'}, TOKEN, 'body.dedup_key is needed to resolve'),
    ('pagerduty', {'payload': {'summary': 's'}}, TOKEN, 'body.payload lacks source, severity'),
    ('pagerduty', {'payload': {'summary': 's', 'source': 'h', 'severity': 'P9'}}, TOKEN, "body.payload.severity is 'P9'"),
    ('pagerduty', {'dedup_key': 'x'}, '', 'routing_key is empty'),
    ('pagerduty', {'dedup_key': 'x'}, 'https://events.pagerduty.com/' + TOKEN, 'routing_key looks like a URL'),
])
def test_bad_messages_fail_before_sending(server, channel, body, key, problem):
    with pytest.raises(n.NotificationError) as err:
        n.send(channel, server.url('/x'), body, routing_key=key)
    assert problem in str(err.value) and TOKEN not in str(err.value)
    assert server.requests == []


def test_settings_out_of_range_are_refused():
    with pytest.raises(n.NotificationError, match='retries is 11'):
        n.send('webhook', 'http://127.0.0.1:1/x', {'a': 1}, retries=11)
    with pytest.raises(n.NotificationError, match='timeout is 0 seconds'):
        n.send('webhook', 'http://127.0.0.1:1/x', {'a': 1}, timeout=0)
