# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault matrix, secrets: malformed and failing notification endpoints, and secrets quoted in failure
messages, through real ansible-playbook runs of the notify and incident_report roles on the controller
(the roles' own host is localhost here), against a real HTTP receiver on loopback.

Every case holds a random token in the configured endpoints (Slack URL, webhook URL, PagerDuty routing
key); the values reach ansible-playbook through a vars file (mode 0600), never its command line. After
the run the token and its recognisable parts - every 12-character piece of it (a token cut short or
split by a line break) and its URL-encoded forms - are searched for in the whole ansible output (-v),
every file the run wrote (incident report in Markdown and HTML, the open-incident record, the copies
fetched to the controller) and the message bodies the receiver got; ``fault.secrets`` is the number of
places that hold one. The count is made here, independently of the masking code under test.
"""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from urllib.parse import quote, quote_plus

import pytest

from conftest import LAB_PY, REPO, changes, compare_check, crash_in, last_error, record_check, snapshot

sys.path.insert(0, os.path.join(REPO, 'tests', 'lab_tests'))

from receiver import Receiver  # noqa: E402  (tests/lab_tests is not a package)

RUN_TIMEOUT = 300
DEAD_PORT = 9   # discard: nothing listens on loopback, the connection is refused

# One play on the controller, run with the playbook's own Python; the play name is filled in.
PLAY_HEAD = '''---
- name: %s
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    claude_flow_responder: tester
  tasks:
'''

# The roles as a response runs them: open an incident, note a failed step in the timeline, page with
# the failure quoted, tick the escalation levels, save the record, write the report and fetch it.
PLAYBOOK = PLAY_HEAD.replace('%s', 'Notify and report on the controller') + '''\
    - name: Open the incident
      ansible.builtin.import_role:
        name: claude_flow.runbook.incident_report
        tasks_from: open
      vars:
        incident_report_severity: P0

    - name: Timeline - a step failed (its message quotes the secret, as a module error can)
      ansible.builtin.import_role:
        name: claude_flow.runbook.incident_report
        tasks_from: mark
      vars:
        incident_report_event: "Automated response FAILED at 'a step': {{ case_failure | truncate(300) }}"

    - name: Page
      ansible.builtin.import_role:
        name: claude_flow.runbook.notify
      vars:
        notify_kind: page
        notify_status: Fixing
        notify_progress: ["Automated response failed at 'a step': {{ case_failure }}"]
        notify_incident: "{{ incident_report_incident }}"

    - name: Record what notify returned in the incident record (the response role's write-back)
      ansible.builtin.import_role:
        name: claude_flow.runbook.response
        tasks_from: notified

    - name: Escalate
      ansible.builtin.import_role:
        name: claude_flow.runbook.notify
        tasks_from: escalate
      vars:
        notify_incident: "{{ incident_report_incident }}"

    - name: Record the escalation levels sent, the notifications and the undelivered pages
      ansible.builtin.import_role:
        name: claude_flow.runbook.response
        tasks_from: notified

    - name: Save the record
      ansible.builtin.import_role:
        name: claude_flow.runbook.incident_report
        tasks_from: save

    - name: Write the report
      ansible.builtin.import_role:
        name: claude_flow.runbook.incident_report
      vars:
        incident_report_status: Unresolved
        incident_report_failure: {step: a step, msg: "{{ case_failure }}"}
        incident_report_notifications: "{{ notify_notifications }}"
'''


# The next escalation tick, as playbooks/escalation_tick.yml runs it, then the report.
TICK_PLAYBOOK = PLAY_HEAD.replace('%s', 'Escalation tick on the controller') + '''\
    - name: Escalation tick (find the open incident, send what is due, record it, save the record)
      ansible.builtin.import_role:
        name: claude_flow.runbook.response
        tasks_from: escalate

    - name: Write the report
      ansible.builtin.import_role:
        name: claude_flow.runbook.incident_report
'''


@pytest.fixture(scope='module')
def receiver():
    with Receiver() as rec:
        yield rec


def read_tree(*roots):
    """{path: text} of every readable file under the roots."""
    found = {}
    for root in roots:
        for base, _dirs, names in os.walk(root):
            for name in names:
                try:
                    with open(os.path.join(base, name), 'rb') as handle:
                        found[os.path.join(base, name)] = handle.read().decode('utf-8', 'replace')
                except OSError:
                    pass
    return found


class Run(object):
    def __init__(self, rc, out, work, since):
        self.rc, self.out, self.work, self.since = rc, out, work, since

    def files(self):
        found = read_tree(os.path.join(self.work, 'incidents'), os.path.join(self.work, 'reports'),
                          os.path.join(self.work, 'reports-check'))
        return dict((os.path.relpath(path, self.work), text) for path, text in found.items())

    def record(self):
        path = os.path.join(self.work, 'incidents', 'open-incident.json')
        with open(path) as handle:
            return json.load(handle)

    def report(self):
        return [text for name, text in self.files().items() if name.startswith('incidents/') and name.endswith('.md')][0]

    def notifications(self):
        """The Notifications section of the Markdown report, one line per delivery result."""
        section = self.report().split('## Notifications', 1)[1].split('\n## ', 1)[0]
        return [line[2:] for line in section.strip().splitlines() if line.startswith('- ')]


def needles(token):
    """The token and its recognisable parts: itself, its URL-encoded forms, every 12-character piece."""
    found = {token, quote(token, safe=''), quote_plus(token), json.dumps(token)[1:-1]}
    found.update(token[i:i + 12] for i in range(0, max(len(token) - 11, 1)))
    return sorted(found, key=len, reverse=True)


def messages(receiver, since):
    """The message bodies the receiver got since then, by place name; the routing key is where
    PagerDuty needs it, so it is left out."""
    places = {}
    for number, request in enumerate(r for r in receiver.received() if r['time'] >= since):
        body = dict(request['json']) if isinstance(request['json'], dict) else {'raw': request['raw']}
        body.pop('routing_key', None)
        places['message %d to %s' % (number, request['path'].split('/')[1])] = json.dumps(body)
    return places


def holding(places, token):
    """The places (name -> text) that hold the token or a recognisable part of it."""
    parts = [part.lower() for part in needles(token) if len(part) >= 4]
    return sorted(place for place, text in places.items() if any(part in text.lower() for part in parts))


def leaks(run, token, receiver):
    """The places that hold the token or a part of it: the ansible output, each written file, each
    message body the receiver got."""
    places = {'ansible output': run.out, 'check-mode ansible output': run.check_out}
    places.update(run.files())
    places.update(messages(receiver, run.since))
    return holding(places, token)


def play(tmp_path, receiver, endpoints, failure='', verbose='-v', playbook=PLAYBOOK):
    """Run the roles with the given endpoint variables (through a 0600 vars file)."""
    work = str(tmp_path)
    with open(os.path.join(work, 'play.yml'), 'w') as handle:
        handle.write(playbook)
    data = {'claude_flow_slack_webhook_url': '', 'claude_flow_webhook_url': '', 'claude_flow_pagerduty_routing_key': '',
            'claude_flow_pagerduty_events_url': receiver.url('/pagerduty/v2/enqueue'),
            'claude_flow_incidents_dir': os.path.join(work, 'incidents'),
            'claude_flow_reports_dir': os.path.join(work, 'reports'),
            'case_failure': failure or 'nothing secret'}
    data.update(endpoints)
    vars_file = os.path.join(work, 'secret.vars.json')
    with open(vars_file, 'w') as handle:
        json.dump(data, handle)
    os.chmod(vars_file, 0o600)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))
    since = time.time()
    cmd = ['ansible-playbook', '-i', 'localhost,', os.path.join(work, 'play.yml'), '-e', '@' + vars_file]
    cmd += [verbose] if verbose else []
    # the check-mode twin first: no crash, nothing sent, no incident file written, the same outcome
    incidents = snapshot([os.path.join(work, 'incidents')])
    twin = subprocess.run(cmd + ['--check', '-e', 'claude_flow_reports_dir=' + os.path.join(work, 'reports-check')],
                          cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=RUN_TIMEOUT, check=False)
    assert not crash_in(twin.stdout), crash_in(twin.stdout)
    assert not [r for r in receiver.received() if r['time'] >= since], 'the --check run sent notifications'
    assert changes(incidents, snapshot([os.path.join(work, 'incidents')])) == [], 'the --check run wrote incident files'
    proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=RUN_TIMEOUT, check=False)
    record_check(compare_check(twin.returncode != 0, last_error(twin.stdout), proc.returncode != 0,
                               last_error(proc.stdout)))
    run = Run(proc.returncode, proc.stdout, work, since)
    run.check_out = twin.stdout
    return run


def no_leak(fault, run, token, receiver):
    assert 'Traceback' not in run.out and run.rc == 0, run.out[-4000:]
    hits = leaks(run, token, receiver)
    fault.secrets(len(hits))
    assert hits == [], 'the secret (or a part of it) leaked into: %s' % hits


def notes(run, channel):
    return [line for line in run.notifications() if (' %s ' % channel) in line]


def token():
    return secrets.token_hex(16)


def malformed_slack_case(tmp_path, receiver, fault, slack_url, secret, problem):
    """A malformed Slack URL next to a working webhook: Slack is not sent to, with a message naming the
    variable and the problem; the webhook still delivers; the secret is nowhere."""
    fault.scrub(tmp_path)
    hook = token()
    run = play(tmp_path, receiver, {'claude_flow_slack_webhook_url': slack_url,
                                    'claude_flow_webhook_url': receiver.url('/webhook/' + hook)})
    no_leak(fault, run, secret, receiver)
    no_leak(fault, run, hook, receiver)
    slack = notes(run, 'Slack')
    assert slack and all('NOT sent: claude_flow_slack_webhook_url ' + problem in line for line in slack), slack
    assert any('delivered (HTTP 200)' in line for line in notes(run, 'webhook')), run.notifications()
    assert not receiver.received('/slack' + '/'), 'a malformed URL reached the receiver'
    fault.did('Slack not sent: "%s"; the webhook delivered; 0 places hold the token (output, report, record, '
              'messages)' % fault.clip(slack[0].split('NOT sent: ', 1)[1], 160))


# ------------------------------------------------------------------------------------ malformed URLs

@pytest.mark.fault('secrets', 'Slack webhook URL without a scheme (the token in an "unknown url type" error)')
def test_slack_url_without_scheme(tmp_path, receiver, fault):
    secret = token()
    malformed_slack_case(tmp_path, receiver, fault, 'hooks.slack.com/services/T0FAULT/B0FAULT/' + secret, secret,
                         'has no scheme')


@pytest.mark.fault('secrets', 'Slack webhook URL with a defanged scheme (hxxps://)')
def test_slack_url_defanged_scheme(tmp_path, receiver, fault):
    secret = token()
    malformed_slack_case(tmp_path, receiver, fault, 'hxxps://hooks.slack.com/services/T0FAULT/B0FAULT/' + secret,
                         secret, 'has a scheme other than http or https')


@pytest.mark.fault('secrets', 'Slack webhook URL with a space in it')
def test_slack_url_with_space(tmp_path, receiver, fault):
    secret = token()
    malformed_slack_case(tmp_path, receiver, fault, receiver.url('/slack/T0FAULT/B0FAULT/ ' + secret), secret,
                         'contains a space')


@pytest.mark.fault('secrets', 'Slack webhook URL with a line break inside the token')
def test_slack_url_with_newline(tmp_path, receiver, fault):
    secret = token()
    broken = receiver.url('/slack/T0FAULT/B0FAULT/' + secret[:16] + '\n' + secret[16:])
    malformed_slack_case(tmp_path, receiver, fault, broken, secret, 'contains a line break')


@pytest.mark.fault('secrets', 'Slack webhook URL given URL-encoded (https%3A%2F%2F...), token with + / =')
def test_slack_url_url_encoded(tmp_path, receiver, fault):
    secret = 'Zq3+' + token()[:20] + '/x9=='
    encoded = quote(receiver.url('/slack/T0FAULT/B0FAULT/') + secret, safe='')
    malformed_slack_case(tmp_path, receiver, fault, encoded, secret, 'has no scheme')


@pytest.mark.fault('secrets', 'The token alone where the Slack URL belongs, a URL where the routing key belongs')
def test_token_alone_and_url_as_key(tmp_path, receiver, fault):
    fault.scrub(tmp_path)
    secret, key = token(), token()
    run = play(tmp_path, receiver, {'claude_flow_slack_webhook_url': secret,
                                    'claude_flow_pagerduty_routing_key': 'https://events.pagerduty.com/v2/enqueue/' + key})
    no_leak(fault, run, secret, receiver)
    no_leak(fault, run, key, receiver)
    slack, pagerduty = notes(run, 'Slack'), notes(run, 'PagerDuty')
    assert slack and 'claude_flow_slack_webhook_url has no scheme' in slack[0], run.notifications()
    assert pagerduty and 'claude_flow_pagerduty_routing_key looks like a URL' in pagerduty[0], run.notifications()
    assert not receiver.received('/pagerduty') or all(r['time'] < run.since for r in receiver.received('/pagerduty'))
    fault.did('neither sent: "%s"; "%s"; 0 places hold either secret' % (
        fault.clip(slack[0].split('NOT sent: ', 1)[1], 70), fault.clip(pagerduty[0].split('NOT sent: ', 1)[1], 70)))


@pytest.mark.fault('secrets', 'A very long webhook URL (5000 characters; error messages cut it short)')
def test_very_long_url(tmp_path, receiver, fault):
    fault.scrub(tmp_path)
    secret = token()
    long_url = receiver.url('/webhook/' + 'a' * 4900 + '/' + secret)
    run = play(tmp_path, receiver, {'claude_flow_webhook_url': long_url},
               failure="unknown url type: '%s'" % long_url)
    no_leak(fault, run, secret, receiver)
    hook = notes(run, 'webhook')
    assert hook and 'claude_flow_webhook_url is %d characters long' % len(long_url) in hook[0], run.notifications()
    fault.did('not sent: "%s"; a failure message quoting it (cut to 300 characters in the timeline) is masked; '
              '0 places hold the token' % fault.clip(hook[0].split('NOT sent: ', 1)[1], 110))


# ------------------------------------------------------------------------------------ failing endpoints

@pytest.mark.fault('secrets', 'Endpoints answer 500 (token in the URL path) and refuse connections')
def test_endpoint_errors_record_status_only(tmp_path, receiver, fault):
    fault.scrub(tmp_path)
    secret = token()
    run = play(tmp_path, receiver, {
        'claude_flow_slack_webhook_url': receiver.url('/slack/fail/T0FAULT/' + secret),
        'claude_flow_webhook_url': 'http://127.0.0.1:%d/webhook/%s' % (DEAD_PORT, secret),
        'claude_flow_pagerduty_routing_key': secret})
    no_leak(fault, run, secret, receiver)
    slack, hook, pagerduty = notes(run, 'Slack'), notes(run, 'webhook'), notes(run, 'PagerDuty')
    assert slack and 'NOT delivered: HTTP 500' in slack[0], run.notifications()
    assert hook and 'NOT delivered: HTTP -1' in hook[0], run.notifications()
    assert pagerduty and 'delivered (HTTP 202)' in pagerduty[0], run.notifications()
    assert 'WARNING: Slack page notification was not delivered' in run.out
    answers = (fault.clip(slack[0].split(': ', 1)[1], 90), fault.clip(hook[0].split(': ', 1)[1], 110))
    fault.did('recorded what each endpoint answered, without the URL: "%s"; "%s"; PagerDuty delivered with the '
              'routing key; 0 places hold the token' % answers)


@pytest.mark.fault('secrets', 'Vaulted endpoints with a trailing line break (a pasted value)')
def test_trailing_newline_still_delivers(tmp_path, receiver, fault):
    fault.scrub(tmp_path)
    secret = token()
    run = play(tmp_path, receiver, {'claude_flow_slack_webhook_url': receiver.url('/slack/T0FAULT/B0FAULT/' + secret) + '\n',
                                    'claude_flow_webhook_url': receiver.url('/webhook/' + secret) + '\n',
                                    'claude_flow_pagerduty_routing_key': secret + '\n'})
    no_leak(fault, run, secret, receiver)
    results = run.notifications()
    for channel, status in (('Slack', 200), ('webhook', 200), ('PagerDuty', 202)):
        assert any('delivered (HTTP %d)' % status in line for line in notes(run, channel)), results
    pages = [r for r in receiver.received('/pagerduty') if r['time'] >= run.since]
    assert pages and all(r['json']['routing_key'] == secret for r in pages)
    fault.did('the surrounding whitespace is ignored: Slack, webhook and PagerDuty delivered (%d messages); 0 places '
              'hold the token' % len([r for r in receiver.received() if r['time'] >= run.since]))


# ------------------------------------------------------------------------------------ secrets in messages

@pytest.mark.fault('secrets', 'A failure message quoting the webhook URL (and URL-encoded) reaches the page, '
                              'timeline, record and report')
def test_secret_in_failure_message(tmp_path, receiver, fault):
    fault.scrub(tmp_path)
    secret = 'Ab9+' + token()[:24] + '/=='
    url = receiver.url('/webhook/' + secret)
    failure = ("Request failed: <urlopen error unknown url type: '%s'> (encoded: %s; key %s)"
               % (url, quote(url, safe=''), secret))
    run = play(tmp_path, receiver, {'claude_flow_webhook_url': url, 'claude_flow_slack_webhook_url':
                                    receiver.url('/slack/T0FAULT/B0FAULT/' + quote(secret, safe=''))},
               failure=failure)
    no_leak(fault, run, secret, receiver)
    record = run.record()
    assert any('FAILED' in entry['event'] and '********' in entry['event'] for entry in record['timeline']), record
    sent = [r for r in receiver.received('/webhook') if r['time'] >= run.since and r['json'].get('kind') == 'page']
    assert sent and '********' in sent[0]['json']['text'], 'the page was not sent, or not masked'
    assert '********' in run.report()
    fault.did('the page (%d webhook + Slack messages), the timeline, the open-incident record and the report show '
              '******** where the URL, its encoded form and the key were; 0 places hold the token' % len(sent))


@pytest.mark.fault('secrets', 'Escalation with a malformed Slack URL: delivered through the webhook, Slack named '
                              'as not sent')
def test_escalation_with_malformed_slack(tmp_path, receiver, fault):
    fault.scrub(tmp_path)
    secret = token()
    run = play(tmp_path, receiver, {'claude_flow_slack_webhook_url': 'hooks.slack.com/services/T0/B0/' + secret,
                                    'claude_flow_webhook_url': receiver.url('/webhook/' + secret)})
    no_leak(fault, run, secret, receiver)
    record = run.record()
    assert [e['level'] for e in record['escalations_sent']] == ['on-call'], record['escalations_sent']
    escalations = [line for line in run.notifications() if ' escalation: ' in line]
    assert any('Slack escalation: On-call engineer responds (on-call): NOT sent: claude_flow_slack_webhook_url has no '
               'scheme' in line for line in escalations), escalations
    assert any('webhook escalation: On-call engineer responds (on-call): delivered (HTTP 200)' in line
               for line in escalations), escalations
    fault.did('the due level went out through the webhook and is recorded as sent; Slack recorded as "%s"; 0 places '
              'hold the token' % fault.clip(escalations[0].split('NOT sent: ', 1)[-1], 120))


@pytest.mark.fault('secrets', 'Escalation with every endpoint down: the level is not marked sent (tried again)')
def test_escalation_undelivered_is_retried(tmp_path, receiver, fault):
    fault.scrub(tmp_path)
    secret = token()
    run = play(tmp_path, receiver, {'claude_flow_webhook_url': 'http://127.0.0.1:%d/webhook/%s' % (DEAD_PORT, secret)})
    no_leak(fault, run, secret, receiver)
    record = run.record()
    assert record['escalations_sent'] == [], record['escalations_sent']
    assert re.search(r'WARNING: webhook escalation was not delivered: On-call engineer responds \(on-call\): NOT '
                     r'delivered: HTTP -1 Request failed', ' '.join(run.out.split())), run.out[-3000:]
    fault.did('the level stays due for the next tick (escalations_sent empty), the failure is reported with its '
              'status; 0 places hold the token')


@pytest.mark.fault('secrets', 'PagerDuty answers 500 to the page: retried with backoff, reported, and sent again at '
                              'the next escalation tick')
def test_undelivered_page_is_sent_again_at_the_next_tick(tmp_path, receiver, fault):
    fault.scrub(tmp_path)
    secret = token()
    quick = {'claude_flow_pagerduty_routing_key': secret, 'claude_flow_notify_retries': 2,
             'claude_flow_notify_retry_delay': 0.2}
    failing = dict(quick, claude_flow_pagerduty_events_url=receiver.url('/pagerduty/fail/v2/enqueue'))
    run = play(tmp_path, receiver, failing)
    no_leak(fault, run, secret, receiver)
    tries = [r for r in receiver.received('/pagerduty/fail/') if r['time'] >= run.since]
    assert len(tries) == 3 and tries[2]['time'] - tries[0]['time'] >= 0.5, tries   # 1 + 2 retries, 0.2 s + 0.4 s apart
    pending = run.record()['pages_pending']
    assert [(p['channel'], p['kind']) for p in pending] == [('PagerDuty', 'page')], pending
    assert 'routing_key' not in pending[0]['body'] and pending[0]['body']['dedup_key'] == run.record()['id']
    page = notes(run, 'PagerDuty')
    assert page and page[0].endswith('PagerDuty page: NOT delivered: HTTP 500 {"error": "receiver told to fail"} (3 attempts)'), page
    assert any(line.startswith('NOT delivered yet: PagerDuty page of ') for line in run.notifications())

    tick = play(tmp_path, receiver, quick, playbook=TICK_PLAYBOOK)
    no_leak(fault, tick, secret, receiver)
    resent = [r for r in receiver.received('/pagerduty/v2/') if r['time'] >= tick.since]
    assert len(resent) == 1 and resent[0]['json']['routing_key'] == secret, resent
    assert resent[0]['json']['payload']['summary'].startswith('\U0001f6a8 P0 INCIDENT - AUTOMATED RESPONSE FAILED')
    assert tick.record()['pages_pending'] == [], tick.record()['pages_pending']
    again = [line for line in tick.notifications() if 'PagerDuty page (sent again)' in line]
    assert again and again[0].endswith(': delivered (HTTP 202)'), tick.notifications()
    assert page[0] in tick.notifications(), 'the first run\'s failure left the report'
    assert not any(line.startswith('NOT delivered yet') for line in tick.notifications())
    fault.did('3 attempts with backoff, then "%s" in the report and the page kept in the record; the next tick sent '
              'it again (delivered, HTTP 202) and the report shows both; 0 places hold the key'
              % fault.clip(page[0].split(': ', 1)[1], 90))


# ------------------------------------------------------------------------------------ a real P0 run

class _LabSecret(object):
    """The endpoints of the lab case, for test_lab_faults.Case: the Slack URL without its scheme, the
    webhook and PagerDuty working; one token in all three."""

    def __init__(self, receiver, directory):
        self.receiver = receiver
        self.token = token()
        self.directory = directory
        self.vars = {'claude_flow_slack_webhook_url': 'hooks.slack.com/services/T0LAB/B0LAB/' + self.token,
                     'claude_flow_webhook_url': receiver.url('/webhook/' + self.token),
                     'claude_flow_pagerduty_routing_key': self.token,
                     'claude_flow_pagerduty_events_url': receiver.url('/pagerduty/v2/enqueue')}

    def vars_file(self, name, dead=False, **extra):
        path = os.path.join(self.directory, name + '.vars.json')
        with open(path, 'w') as handle:
            json.dump(dict(self.vars, **extra), handle)
        os.chmod(path, 0o600)
        return path


@pytest.fixture(scope='module')
def own_lab():
    """A one-host lab of this file's own (own state dir, so its namespaces meet no other lab), always
    taken down."""
    if os.geteuid() != 0:
        pytest.skip('the lab needs root (network, mount and PID namespaces); CI runs as root')
    import lab as labmod  # tests/lab, on sys.path through conftest
    state_dir = tempfile.mkdtemp(prefix='cflab-secrets-')
    up = subprocess.run([sys.executable, LAB_PY, 'up', '--hosts', '1', '--state-dir', state_dir], stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, universal_newlines=True, timeout=600, check=False)
    try:
        assert up.returncode == 0, up.stdout
        yield labmod.Lab(state_dir)
    finally:
        down = subprocess.run([sys.executable, LAB_PY, 'down', '--state-dir', state_dir], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, timeout=300, check=False)
        shutil.rmtree(state_dir, ignore_errors=True)
        assert down.returncode == 0, down.stdout


@pytest.mark.lab
@pytest.mark.fault('secrets', 'P0 response on a lab host with the Slack URL missing its scheme')
def test_lab_p0_with_malformed_slack_url(own_lab, receiver, tmp_path, fault):
    from test_lab_faults import Case  # the lab cases' playbook runner (vars file, env, kept logs)
    fault.scrub(tmp_path)
    secret = _LabSecret(receiver, str(tmp_path))
    case = Case(own_lab, secret, 'secrets_p0_malformed_slack', ['lab1'], str(tmp_path))
    fault.hosts = case.hosts
    own_lab.break_host(1, 'service_down')
    since = time.time()
    run = case.playbook('p0_response.yml')
    fault.checks = case.checks
    assert [check for check in case.checks if check[0] == 'diverged'] == [], case.checks
    assert 'Traceback' not in run.out and run.rc == 0, run
    places = dict(read_tree(case.reports, case.reports + '-check', os.path.join(own_lab.host_dir(1), 'upper')),
                  **{'ansible output': run.out, 'check-mode ansible output': case.check_runs[0].out})
    places.update(messages(receiver, since))
    hits = holding(places, secret.token)
    fault.secrets(len(hits))
    fault.lost(0)
    assert hits == [], 'the secret (or a part of it) leaked into: %s' % hits
    reports = [text for place, text in places.items() if place.startswith(case.reports + os.sep) and place.endswith('.md')]
    assert reports and 'Slack initial: NOT sent: claude_flow_slack_webhook_url has no scheme' in reports[0], reports
    delivered = [r for r in receiver.received('/webhook') if r['time'] >= since]
    pages = [r for r in receiver.received('/pagerduty') if r['time'] >= since]
    assert delivered and pages and own_lab.health(1) == 200
    fault.did('the service was restarted (/health 200); Slack not sent, named in the report ("claude_flow_slack_'
              'webhook_url has no scheme"); %d webhook and %d PagerDuty messages delivered; 0 places (output, host '
              'files, fetched reports, messages) hold the token' % (len(delivered), len(pages)))
