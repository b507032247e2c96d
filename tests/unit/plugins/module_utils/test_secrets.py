"""Secrets masked by value (every recognisable form) and endpoint checks that never quote the value."""

import html
import json
from urllib.parse import quote, quote_plus

import pytest

from ansible_collections.claude_flow.runbook.plugins.filter.secrets import FilterModule
from ansible_collections.claude_flow.runbook.plugins.module_utils import secrets

TOKEN = 'Xq7vK2pL9mN4rT8sW1yZ3bC6'
SLACK = 'https://hooks.slack.com/services/T0AB12CD3/B0EF45GH6/' + TOKEN
KEY = '0123456789abcdef0123456789abcdef'
MASK = secrets.MASK


def masked(text, values=(SLACK, KEY)):
    return secrets.mask(text, list(values))


@pytest.mark.parametrize('shown', [
    SLACK, SLACK.upper(), 'hooks.slack.com/services/T0AB12CD3/B0EF45GH6/' + TOKEN,
    '/services/T0AB12CD3/B0EF45GH6/' + TOKEN, TOKEN, quote(SLACK, safe=''), quote_plus(SLACK),
    json.dumps(SLACK)[1:-1].replace('/', '\\/'), KEY, TOKEN[:14], TOKEN[-13:]],
    ids=['whole', 'upper-case', 'no-scheme', 'path', 'token', 'url-encoded', 'plus-encoded', 'json-slashes', 'key',
         'cut-short', 'tail'])
def test_every_recognisable_form_is_masked(shown):
    text = "urlopen error unknown url type: '%s' (retrying)" % shown
    out = masked(text)
    assert TOKEN.lower() not in out.lower() and TOKEN[:12] not in out and KEY not in out
    assert out.startswith('urlopen error unknown url type: ') and out.endswith(' (retrying)')
    assert MASK in out


def test_parts_of_malformed_values():
    token = 'Zq3+aa11bb22cc33dd44/x9=='
    values = ['hxxps://hooks.slack.com/services/T0/B0/' + token, ' https://h.example/hook/ab12cd34ef56\nGH78ij90kl12 ',
              quote('https://h.example/a/' + token, safe='')]
    text = ' | '.join([token, quote(token, safe=''), 'ab12cd34ef56', 'GH78ij90kl12', html.escape(values[0]),
                       'https://h.example/a/' + token])
    out = secrets.mask(text, values)
    for part in (token, quote(token, safe=''), 'ab12cd34ef56', 'GH78ij90kl12', 'aa11bb22cc33'):
        assert part not in out, (part, out)


def test_ordinary_text_is_left_alone():
    text = ('P0 incident INC-20261206-010203-lab1 on lab1: /var/log/claude-code/incidents/incident.md sha256 '
            + 'a' * 64 + ' hooks.slack.com services incidents webhook 127.0.0.1 events.pagerduty.com/v2/enqueue')
    values = ['https://hooks.slack.com/services/T0/B0/' + TOKEN, 'http://127.0.0.1:8099/webhook/incidents', KEY]
    assert secrets.mask(text, values) == text


def test_short_and_empty_values_are_not_masked():
    assert secrets.mask('a b c abc', ['', 'abc', None, []]) == 'a b c abc'


def test_data_is_masked_everywhere_and_types_kept():
    data = {'timeline': [{'event': 'failed: ' + SLACK, 'epoch': 1.5}], SLACK: True, 'n': 3, 'none': None}
    out = secrets.mask(data, [SLACK])
    assert json.dumps(out).count(TOKEN) == 0
    assert out['timeline'][0]['epoch'] == 1.5 and out['n'] == 3 and out['none'] is None and out[MASK] is True


def test_count_finds_what_mask_removes():
    masker = secrets.Masker([SLACK, KEY])
    text = 'a %s b %s c %s' % (SLACK, KEY, TOKEN[:15])
    assert masker.count(text) == 3 and masker.count(masker.text(text)) == 0


def test_the_filters():
    filters = FilterModule().filters()
    assert TOKEN not in filters['mask_secrets']('x ' + SLACK, [SLACK, KEY])
    assert filters['url_problem'](SLACK, 'claude_flow_slack_webhook_url') == ''
    assert filters['key_problem'](KEY, 'claude_flow_pagerduty_routing_key') == ''


@pytest.mark.parametrize('value,problem', [
    ('hooks.slack.com/services/T0/B0/' + TOKEN, 'has no scheme'),
    (TOKEN, 'has no scheme'),
    (quote(SLACK, safe=''), 'has no scheme'),
    ('hxxps://hooks.slack.com/services/T0/B0/' + TOKEN, 'has a scheme other than http or https'),
    ('ftp://hooks.slack.com/' + TOKEN, 'has a scheme other than http or https'),
    ('https://hooks.slack.com/services/T0/B0/ ' + TOKEN, 'contains a space'),
    ('https://hooks.slack.com/services/T0/B0/X\n' + TOKEN, 'contains a line break'),
    ('https:///services/' + TOKEN, 'has no host'),
    ('https://hooks.slack.com:99999/' + TOKEN, 'port that is not a number'),
    ('https://hooks.slack.com/' + TOKEN * 200, 'characters long (at most 4096)'),
    ('https://ho oks/' + TOKEN, 'contains a space'),
    ('https://h^st.example/' + TOKEN, 'host name'),
])
def test_url_problems_name_the_variable_never_the_value(value, problem):
    message = secrets.url_problem('claude_flow_slack_webhook_url', value)
    assert message.startswith('claude_flow_slack_webhook_url ') and problem in message
    assert TOKEN not in message and TOKEN[:12] not in message and 'hooks.slack.com' not in message


@pytest.mark.parametrize('value', ['', '  ', SLACK, SLACK + '\n', 'http://127.0.0.1:8099/webhook/x',
                                   'https://[::1]:8443/hook', 'https://user:pw@h.example/x?token=1'])
def test_usable_urls(value):
    assert secrets.url_problem('v', value) == ''


@pytest.mark.parametrize('value,problem', [
    ('https://events.pagerduty.com/v2/enqueue/' + KEY, 'looks like a URL'),
    (KEY[:16] + ' ' + KEY[16:], 'contains a space'),
    ('abc', 'is 3 characters long'),
    (KEY * 9, 'is 288 characters long'),
])
def test_key_problems(value, problem):
    message = secrets.key_problem('claude_flow_pagerduty_routing_key', value)
    assert message.startswith('claude_flow_pagerduty_routing_key ') and problem in message
    assert KEY[:12] not in message


def test_usable_keys():
    assert secrets.key_problem('k', KEY + '\n') == '' and secrets.key_problem('k', '') == ''
    assert secrets.key_problem('k', 'lab-routing-key-0123456789abcdef') == ''


def test_wrong_types_are_named_not_shown():
    assert secrets.url_problem('u', [SLACK]) == 'u must be a URL string, got a list'
    assert secrets.key_problem('k', {'key': KEY}) == 'k must be a string, got a dict'
