# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The response playbooks, end to end, against real lab hosts.

Each test breaks a host the way the runbook describes (tests/lab/lab.py break), runs
ansible-playbook as an operator would (triage.yml, or a response playbook), and checks the result
on the host itself: /health, integrity_check of the live DB, the symlink, the preserved files'
sha256 against what was measured before the run, the report with its timestamps, and the Slack /
PagerDuty / webhook payloads that reached a real HTTP receiver on the controller's loopback.
"""

import datetime
import json
import os
import re
import subprocess
import threading
import time

import pytest

from digests import sha256
from receiver import Receiver

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PLAYBOOKS = os.path.join(REPO, 'playbooks')
LAB_VAULT_PASSWORD = os.path.join(REPO, 'tests', 'lab', 'vault-password.txt')
APP_LINK = '/opt/claude-code-production'
LIVE_DB = APP_LINK + '/.swarm/memory.db'
INCIDENTS = '/var/log/claude-code/incidents'
PRESERVE = '/var/lib/claude-flow-runbook/preserved'
INCIDENT_ID = re.compile(r'INC-\d{8}-\d{6}-lab\d+')
LOG_DIR = os.path.join(REPO, 'tests', 'output', 'lab_playbooks')

pytestmark = pytest.mark.lab


# ------------------------------------------------------------------------------------ helpers

@pytest.fixture(scope='module')
def receiver():
    with Receiver() as rec:
        yield rec


@pytest.fixture(scope='module')
def reports_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp('reports'))


def notify_vars(receiver, reports_dir):
    return {
        'claude_flow_slack_webhook_url': receiver.url('/slack/T000/B000/XXXX'),
        'claude_flow_pagerduty_routing_key': 'lab-routing-key-0123456789abcdef',
        'claude_flow_pagerduty_events_url': receiver.url('/pagerduty/v2/enqueue'),
        'claude_flow_webhook_url': receiver.url('/webhook/incidents'),
        'claude_flow_reports_dir': reports_dir,
    }


def ansible_env(lab):
    env = dict(lab.ansible_env)
    env['ANSIBLE_FORCE_COLOR'] = '0'
    env['PYTHONUNBUFFERED'] = '1'
    if os.path.exists(LAB_VAULT_PASSWORD):
        env['ANSIBLE_VAULT_IDENTITY_LIST'] = 'lab@' + LAB_VAULT_PASSWORD
    return env


class Run(object):
    def __init__(self, proc, seconds):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.seconds = seconds

    def statuses(self, task):
        """Result words (ok, changed, skipping, failed, fatal) of every TASK whose name contains task."""
        found = []
        for block in re.split(r'\n(?=TASK \[)', self.out):
            header = block.split('\n', 1)[0]
            if header.startswith('TASK [') and task in header:
                words = re.findall(r'^(ok|changed|skipping|failed|fatal):', block, re.M)
                found.append(words[0] if words else 'none')
        return found

    def ran(self, task):
        """True when a task with this name ran (not only skipped) at least once."""
        return any(status in ('ok', 'changed') for status in self.statuses(task))

    def recap(self, host):
        match = re.search(r'^%s\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)' % host,
                          self.out, re.M)
        assert match, 'no PLAY RECAP line for %s:\n%s' % (host, self.out[-3000:])
        return dict(zip(('ok', 'changed', 'unreachable', 'failed'), map(int, match.groups())))

    def __repr__(self):
        return 'rc=%s after %.1fs\n%s' % (self.rc, self.seconds, self.out[-6000:])


def playbook(lab, name, host, extra=None, check=False, tags=None, timeout=600):
    cmd = ['ansible-playbook', '-i', lab_inventory(lab), os.path.join(PLAYBOOKS, name), '-l', host]
    if extra:
        cmd += ['-e', json.dumps(extra)]
    if check:
        cmd.append('--check')
    if tags:
        cmd += ['--tags', tags]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=ansible_env(lab), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout, check=False)
    run = Run(proc, time.monotonic() - started)
    # Keep every run's output for reading after a failure (tests/output is ignored by git).
    os.makedirs(LOG_DIR, exist_ok=True)
    test = os.environ.get('PYTEST_CURRENT_TEST', 'run').split(' ')[0].split('::')[-1]
    with open(os.path.join(LOG_DIR, '%s-%s-%d.log' % (test, name.split('.')[0], int(time.time() * 1000))), 'w') as log:
        log.write(' '.join(cmd) + '\n' + run.out)
    return run


def lab_inventory(lab):
    inventory = getattr(lab, 'inventory', None)
    return inventory if inventory and os.path.exists(inventory) else os.path.join(REPO, 'inventories', 'lab',
                                                                                  'hosts.yml')


def index_of(host):
    return int(host[3:])


def host_file(lab, host, path):
    """Controller-side path of a host file, following the host's symlinks."""
    return lab.resolve(index_of(host), path)


def host_exec(lab, host, *argv):
    proc = lab.exec(host, list(argv), capture=True)
    return proc.returncode, proc.stdout


INTEGRITY = ("import sqlite3,sys; c=sqlite3.connect('file:%s?mode=ro' % sys.argv[1], uri=True); "
             "print(c.execute('PRAGMA integrity_check').fetchone()[0])")


def integrity(lab, host, path=LIVE_DB):
    rc, out = host_exec(lab, host, '/usr/bin/python3', '-c', INTEGRITY, path)
    return out.strip() if rc == 0 else 'error: %s' % out.strip()


def health(lab, host):
    return lab.health(index_of(host))


def link_target(lab, host):
    return os.readlink(lab.fs(index_of(host), APP_LINK))


def tree_digest(root):
    """{relative path: sha256 or link target} of everything under root (controller side)."""
    result = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            full = os.path.join(folder, name)
            rel = os.path.relpath(full, root)
            if os.path.islink(full):
                result[rel] = 'link:' + os.readlink(full)
            elif os.path.isfile(full):
                result[rel] = sha256(full)
    return result


def db_set_digests(lab, host, db=LIVE_DB):
    real = host_file(lab, host, db)
    return {os.path.basename(real) + suffix: sha256(real + suffix)
            for suffix in ('', '-wal') if os.path.exists(real + suffix)}


def preserved_digests(lab, host):
    root = lab.fs(index_of(host), PRESERVE)
    return set(tree_digest(root).values()) if os.path.isdir(root) else set()


def incident_id_from(run):
    """The id the run worked under, from the incident_report role's 'Incident <id> (' line."""
    match = re.search(r'(?:Resumed open incident|Incident) (INC-\d{8}-\d{6}-lab\d+) \(', run.out)
    assert match, 'no incident id in the output:\n%s' % run.out[-3000:]
    return match.group(1)


def read_report(lab, host, incident):
    path = lab.fs(index_of(host), '%s/incident-%s.md' % (INCIDENTS, incident))
    assert os.path.exists(path), 'report %s missing' % path
    with open(path) as handle:
        return handle.read()


def timeline(report):
    """[(datetime, event)] from the report's Timeline section."""
    section = report.split('## Timeline', 1)[1].split('\n## ', 1)[0]
    entries = []
    for line in section.splitlines():
        match = re.match(r'^- (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) - (.*)$', line)
        if match:
            entries.append((datetime.datetime.strptime(match.group(1), '%Y-%m-%dT%H:%M:%S.%fZ'), match.group(2)))
    return entries


def payloads(receiver, prefix, since):
    return [r['json'] for r in receiver.received(prefix) if r['time'] >= since]


@pytest.fixture(autouse=True)
def _ansible_env(lab, lab_env):
    """The lab fixture's environment for ansible (control sockets in the lab dir), kept on the lab object."""
    lab.ansible_env = lab_env


@pytest.fixture
def fresh(lab):
    """Provision a host back to the healthy production layout before a test uses it."""
    def _fresh(host):
        lab.provision(host)
        assert health(lab, host) == 200
        return host
    return _fresh


def assert_healthy(lab, host):
    assert health(lab, host) == 200, '/health of %s is not 200' % host
    assert integrity(lab, host) == 'ok', 'live DB of %s fails integrity_check' % host


def assert_report_timeline(report, started, finished):
    entries = timeline(report)
    assert len(entries) >= 5, report
    times = [entry[0] for entry in entries]
    assert times == sorted(times), 'timeline out of order: %s' % entries
    lo = datetime.datetime.utcfromtimestamp(started - 2)
    hi = datetime.datetime.utcfromtimestamp(finished + 2)
    assert all(lo <= t <= hi for t in times), 'timeline %s outside the run %s..%s' % (times, lo, hi)
    return entries


# The runbook's aim, printed beside the measurement; timing is measured (bench/), never a test's verdict.
STABILISE_TARGET_S = 20.0


def stabilisation_seconds(run):
    match = re.search(r'stabilised in\s+([\d.]+) s', run.out)
    return float(match.group(1)) if match else None


def report_stabilisation(case, run):
    seconds = stabilisation_seconds(run)
    assert seconds is not None, 'the playbook did not print its stabilisation time'
    print('\nP0 %s: stabilised in %.1f s (target < %.0f s: %s), whole playbook %.1f s'
          % (case, seconds, STABILISE_TARGET_S, 'met' if seconds < STABILISE_TARGET_S else 'MISSED', run.seconds))


# ------------------------------------------------------------------------------------ P0

def test_p0_corrupt_db_recovered_via_triage(lab, fresh, receiver, reports_dir):
    host = fresh('lab1')
    lab.break_host(host, 'corrupt_db')
    assert integrity(lab, host) != 'ok'
    before = db_set_digests(lab, host)
    started = time.time()
    run = playbook(lab, 'triage.yml', host, notify_vars(receiver, reports_dir))
    finished = time.time()
    assert run.rc == 0, run
    assert 'PLAY [P0 - Critical response]' in run.out, run
    assert run.ran('Salvage the damaged DB to a side file'), run
    assert_healthy(lab, host)
    # every file of the damaged set is preserved byte for byte
    kept = preserved_digests(lab, host)
    for name, digest in before.items():
        assert digest in kept, '%s (sha256 %s) was not preserved' % (name, digest)
    incident = incident_id_from(run)
    report = read_report(lab, host, incident)
    assert '# P0 Incident Report' in report and incident in report
    # the summary is one field per line, as in the runbook's template
    assert '- **Incident ID:** %s\n- **Severity:** P0 - Critical\n' % incident in report, report[:400]
    assert before[os.path.basename(host_file(lab, host, LIVE_DB))] in report, 'preserved sha256 not in the report'
    # the investigation's anomaly count is memory_db_info's count with the bounds it applied (it once was the
    # length of the result mapping, always 4)
    assert re.search(r'^- Anomalous patterns: (\d+ \(confidence < 0\.3 or > 0\.95\)|unavailable: .+)$', report, re.M), report
    entries = assert_report_timeline(report, started, finished)
    assert any('System stabilized' in event for _stamp, event in entries)
    assert any('Incident resolved' in event for _stamp, event in entries)
    assert os.path.exists(os.path.join(reports_dir, host, 'incident-%s.md' % incident))
    # the run ends with the host's summary: outcome, plan, report path
    assert 'P0 response on %s: Resolved' % host in run.out, run
    assert 'plan: recover_db' in run.out and 'Report: %s/incident-%s.md' % (INCIDENTS, incident) in run.out, run
    with open(os.path.join(reports_dir, host, 'incident-%s.html' % incident)) as handle:
        html = handle.read()
    assert '<svg' in html and '<polyline' in html
    # Slack got the runbook's P0 step 3 shape; PagerDuty a trigger and a resolve with the incident id
    slack = payloads(receiver, '/slack', started)
    first = slack[0]
    assert first['text'] == '\U0001f6a8 P0 INCIDENT'
    fields = dict((f['title'], f['value']) for f in first['attachments'][0]['fields'])
    assert first['attachments'][0]['color'] == 'danger'
    assert fields['Severity'] == 'P0 - Critical' and fields['Status'] == 'In Progress'
    assert fields['Responder'] and fields['Time'] and fields['Incident ID'] == incident
    pagerduty = payloads(receiver, '/pagerduty', started)
    assert [p['event_action'] for p in pagerduty][0] == 'trigger' and pagerduty[-1]['event_action'] == 'resolve'
    assert all(p['dedup_key'] == incident for p in pagerduty)
    assert all(p['routing_key'] == 'lab-routing-key-0123456789abcdef' for p in pagerduty)
    assert pagerduty[0]['payload']['severity'] == 'critical' and pagerduty[0]['payload']['source'] == host
    assert 'Database corruption' in pagerduty[0]['payload']['summary']
    hooks = payloads(receiver, '/webhook', started)
    assert {h['kind'] for h in hooks} >= {'initial', 'update', 'resolved'}
    assert all(h['incident_id'] == incident for h in hooks)
    # the secret routing key never appears in the output
    assert 'lab-routing-key-0123456789abcdef' not in run.out
    report_stabilisation('corrupt_db', run)


def test_p0_truth_below_085_rolls_back(lab, fresh, receiver, reports_dir):
    host = fresh('lab2')
    lab.break_host(host, 'truth_low_p0')
    old_release = link_target(lab, host)
    before = db_set_digests(lab, host)
    started = time.time()
    run = playbook(lab, 'triage.yml', host, notify_vars(receiver, reports_dir))
    assert run.rc == 0, run
    assert run.ran('Point the production symlink at the release rolled back to'), run
    new_release = link_target(lab, host)
    assert new_release != old_release, 'the symlink still points at %s' % old_release
    assert os.path.exists(lab.fs(index_of(host), old_release + '/.claude-flow-rolled-back'))
    assert_healthy(lab, host)
    kept = preserved_digests(lab, host)
    for name, digest in before.items():
        assert digest in kept, '%s (sha256 %s) of the rolled-back release was not preserved' % (name, digest)
    report = read_report(lab, host, incident_id_from(run))
    assert 'Rolled back' in report and os.path.basename(new_release) in report
    assert '## Rows lost' in report, report
    report_stabilisation('truth<0.85 rollback', run)
    assert payloads(receiver, '/slack', started)[0]['text'] == '\U0001f6a8 P0 INCIDENT'


def test_p0_service_down_restarts(lab, fresh, receiver, reports_dir):
    host = fresh('lab3')
    release = link_target(lab, host)
    lab.break_host(host, 'service_down')
    assert health(lab, host) != 200
    run = playbook(lab, 'triage.yml', host, notify_vars(receiver, reports_dir))
    assert run.rc == 0, run
    assert run.ran('Restart the service (systemctl restart)'), run
    assert not run.ran('Point the production symlink at the release rolled back to'), run
    assert_healthy(lab, host)
    assert link_target(lab, host) == release, 'a restart was enough; no rollback expected'
    report_stabilisation('service_down', run)


def test_p0_second_run_is_idempotent_and_silent(lab, receiver, reports_dir):
    host = 'lab3'   # healthy again after the previous test
    assert health(lab, host) == 200
    before = tree_digest(lab.fs(index_of(host), '/opt/claude-code-backups'))
    started = time.time()
    run = playbook(lab, 'p0_response.yml', host, notify_vars(receiver, reports_dir))
    assert run.rc == 0, run
    assert 'No P0 condition on this host: nothing to do' in run.out
    assert run.recap(host)['changed'] == 0, run
    # nothing planned, so no remediation task is even shown (no wall of skipped tasks)
    shown = re.findall(r'^TASK \[claude_flow\.runbook\.(db_recovery|rollback|maintenance|diagnostics|service) :', run.out, re.M)
    assert not shown, 'remediation tasks listed on a healthy host: %s' % sorted(set(shown))
    assert 'P0 response on %s: nothing to do (no P0 condition)' % host in run.out, run
    assert payloads(receiver, '/', started) == []
    after = tree_digest(lab.fs(index_of(host), '/opt/claude-code-backups'))
    changed = [p for p in before if before[p] != after.get(p) and '.swarm/memory.db' not in p]
    assert not changed, changed


def test_p0_check_mode_changes_nothing(lab, fresh, receiver, reports_dir):
    host = fresh('lab4')
    lab.break_host(host, 'truth_low_p0')
    lab.exec(host, ['systemctl', 'stop', 'claude-code-production'], capture=True)  # nothing writes the DB now
    opt_before = tree_digest(lab.fs(index_of(host), '/opt/claude-code-backups'))
    link_before = link_target(lab, host)
    incidents_before = tree_digest(lab.fs(index_of(host), INCIDENTS))
    preserve_before = preserved_digests(lab, host)
    started = time.time()
    run = playbook(lab, 'p0_response.yml', host, notify_vars(receiver, reports_dir), check=True)
    assert run.rc == 0, run
    assert 'Would roll back' in run.out, run
    # the payloads are shown (the YAML callback prints the emoji escaped) but the routing key is not
    assert 'text: "\\U0001F6A8 P0 INCIDENT"' in run.out and 'event_action: trigger' in run.out, run
    assert 'lab-routing-key-0123456789abcdef' not in run.out
    assert tree_digest(lab.fs(index_of(host), '/opt/claude-code-backups')) == opt_before
    assert link_target(lab, host) == link_before
    assert tree_digest(lab.fs(index_of(host), INCIDENTS)) == incidents_before
    assert preserved_digests(lab, host) == preserve_before
    assert payloads(receiver, '/', started) == [], 'check mode sent notifications'
    lab.exec(host, ['systemctl', 'start', 'claude-code-production'], capture=True)


def test_p0_concurrent_runs_are_serialised(lab, fresh, receiver, reports_dir):
    host = fresh('lab5')
    lab.break_host(host, 'service_down')
    results = {}

    def go(name, delay):
        time.sleep(delay)
        results[name] = playbook(lab, 'p0_response.yml', host, notify_vars(receiver, reports_dir))

    threads = [threading.Thread(target=go, args=('first', 0)), threading.Thread(target=go, args=('second', 1.5))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results['first'].rc == 0, results['first']
    assert results['second'].rc == 0, results['second']
    waited = [r for r in results.values() if re.search(r'after\s+waiting\s+\d+\s+s\s+for\s+INC-', r.out)]
    assert len(waited) == 1, 'exactly one run must have waited for the other:\n%s\n%s' % (
        results['first'], results['second'])
    # the waiting run found the host already fixed and changed nothing
    assert 'No P0 condition on this host: nothing to do' in waited[0].out
    history_path = lab.fs(index_of(host), '/var/lib/claude-flow-runbook/guard/history.json')
    with open(history_path) as handle:
        entries = json.load(handle)['entries']
    acquired = re.search(r'lock acquired for (INC-\S+)\s+after waiting\s+\d+\s+s\s+for\s+INC-\S+\s+at\s+(\S+Z)',
                         waited[0].out)
    holder = [e for e in entries if e['outcome'] == 'remediated'][-1]
    assert acquired and acquired.group(2) >= holder['released_at'], (acquired and acquired.group(2), holder)
    assert_healthy(lab, host)


def test_p0_escalation_ticks_send_due_levels_once(lab, receiver, reports_dir):
    host = 'lab5'
    now = time.time()
    incident = 'INC-%s-%s' % (time.strftime('%Y%m%d-%H%M%S', time.gmtime(now - 660)), host)
    record = {'id': incident, 'severity': 'P0', 'status': 'Fixing', 'host': host,
              'started_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now - 660)), 'started_epoch': now - 660,
              'responder': 'tester', 'escalations_sent': [{'level': 'on-call', 'title': 'On-call engineer responds',
                                                           'sent_at': 'earlier'}],
              'notifications': [], 'timeline': [], 'persisted': True}
    path = lab.fs(index_of(host), INCIDENTS + '/open-incident.json')
    with open(path, 'w') as handle:
        json.dump(record, handle)
    try:
        started = time.time()
        run = playbook(lab, 'p0_response.yml', host, notify_vars(receiver, reports_dir), tags='escalate')  # the old name imports p0_response.yml
        assert run.rc == 0, run
        escalations = [h for h in payloads(receiver, '/webhook', started) if h.get('kind') == 'escalation']
        levels = [h['level'] for h in escalations]
        assert levels == ['manager', 'vp'], levels   # 11 minutes in: 5-min and 10-min levels, not 15-min
        # the contacts come from the lab vault (encrypted values), decrypted for the message
        assert escalations[0]['contact']['email'] == 'manager@lab.invalid'
        assert 'manager@lab.invalid' in escalations[0]['text']
        slack = payloads(receiver, '/slack', started)
        assert [s['text'] for s in slack] == ['\U0001f4df P0 ESCALATION: Notify engineering manager',
                                              '\U0001f4df P0 ESCALATION: Notify VP Engineering']
        with open(path) as handle:
            sent = [e['level'] for e in json.load(handle)['escalations_sent']]
        assert sent == ['on-call', 'manager', 'vp']
        again = time.time()
        run = playbook(lab, 'p0_response.yml', host, notify_vars(receiver, reports_dir), tags='escalate')  # the old name imports p0_response.yml
        assert run.rc == 0, run
        assert payloads(receiver, '/', again) == [], 'levels were sent twice'
    finally:
        os.unlink(path)


def test_p0_circuit_breaker_stops_and_pages(lab, fresh, receiver, reports_dir):
    host = fresh('lab4')
    # Two remediations on this host in the last ten minutes, as remediation_guard records them.
    now = time.time()
    history = {'reset_epoch': 0, 'entries': [
        {'incident_id': 'INC-EARLIER-%d' % n, 'owner': 'test', 'acquired_at': 'x', 'acquired_epoch': now - 600 + n,
         'released_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now - 500 + n * 60)),
         'released_epoch': now - 500 + n * 60, 'outcome': 'remediated', 'actions': ['restart']} for n in range(2)]}
    guard_dir = lab.fs(index_of(host), '/var/lib/claude-flow-runbook/guard')
    os.makedirs(guard_dir, exist_ok=True)
    with open(os.path.join(guard_dir, 'history.json'), 'w') as handle:
        json.dump(history, handle)
    lab.break_host(host, 'service_down')
    started = time.time()
    extra = dict(notify_vars(receiver, reports_dir), claude_flow_guard_max_remediations=2)
    run = playbook(lab, 'p0_response.yml', host, extra)
    assert run.rc != 0, run
    assert 'circuit breaker open: 2 remediations' in run.out and 'INC-EARLIER-1' in run.out, run
    assert not run.ran('Restart the service (systemctl restart)'), 'remediated despite the open breaker'
    assert health(lab, host) != 200, 'the service was restarted despite the open breaker'
    pages = [p for p in payloads(receiver, '/slack', started) if 'HUMAN NEEDED' in p['text']]
    assert pages, 'the open circuit breaker did not page'
    pagerduty = payloads(receiver, '/pagerduty', started)
    assert pagerduty[-1]['event_action'] == 'trigger' and 'circuit breaker' in json.dumps(pagerduty[-1])
    report = read_report(lab, host, incident_id_from(run))
    assert 'circuit breaker open' in report and 'Status:** Unresolved' in report
    # the failed run is recorded, so the breaker stays open until a human resets it
    with open(os.path.join(guard_dir, 'history.json')) as handle:
        assert json.load(handle)['entries'][-1]['outcome'] == 'failed'
    lab.exec(host, ['systemctl', 'start', 'claude-code-production'], capture=True)
    os.unlink(os.path.join(guard_dir, 'history.json'))


# ------------------------------------------------------------------------------------ P1 / P2

def test_p1_truth_below_090_retrains(lab, fresh, receiver, reports_dir):
    host = fresh('lab1')
    lab.break_host(host, 'truth_low_p1')
    started = time.time()
    run = playbook(lab, 'triage.yml', host, notify_vars(receiver, reports_dir))
    assert 'PLAY [P1 - High priority response]' in run.out, run
    assert run.ran('Truth score low: retrain patterns'), run
    assert_healthy(lab, host)
    incident = incident_id_from(run)
    report = read_report(lab, host, incident)
    assert '# P1 Incident Report' in report and 'Retrained patterns' in report
    pagerduty = payloads(receiver, '/pagerduty', started)
    assert pagerduty and pagerduty[0]['payload']['severity'] == 'error' and pagerduty[0]['dedup_key'] == incident
    # retraining does not change the recorded verification scores: the run must say it did not hold
    if run.rc != 0:
        assert 'did not hold' in run.out or 'Not resolved' in run.out
        assert any('HUMAN NEEDED' in p['text'] for p in payloads(receiver, '/slack', started))


def test_p1_cache_hit_low_prunes_after_backup(lab, fresh, receiver, reports_dir):
    host = fresh('lab2')
    lab.break_host(host, 'cache_low')
    run = playbook(lab, 'triage.yml', host, notify_vars(receiver, reports_dir))
    assert 'PLAY [P1 - High priority response]' in run.out, run
    assert run.ran('Prune patterns'), run
    backups = lab.fs(index_of(host), '/var/backups/claude-code')
    assert os.path.isdir(backups) and os.listdir(backups), 'no backup was taken before pruning'
    assert_healthy(lab, host)
    report = read_report(lab, host, incident_id_from(run))
    assert 'Backed up' in report and 'Pruned patterns' in report


def test_p2_goap_slow_tickets_once(lab, fresh, receiver, reports_dir):
    host = fresh('lab3')
    lab.break_host(host, 'goap_slow')
    tickets = lab.fs(index_of(host), INCIDENTS + '/tickets.jsonl')
    queue = lab.fs(index_of(host), INCIDENTS + '/maintenance-queue.jsonl')
    run = playbook(lab, 'triage.yml', host, notify_vars(receiver, reports_dir))
    assert run.rc == 0, run
    assert 'PLAY [P2 - Medium priority response]' in run.out, run
    with open(tickets) as handle:
        lines = [json.loads(line) for line in handle if line.strip()]
    assert len(lines) == 1 and lines[0]['severity'] == 'P2' and lines[0]['status'] == 'open'
    assert 'goap_planning_ms' in lines[0]['dedup_key']
    with open(queue) as handle:
        queued = [json.loads(line) for line in handle if line.strip()]
    assert len(queued) == 1 and queued[0]['prune_rules'] == ['goap_low_confidence']
    again = playbook(lab, 'p2_response.yml', host, notify_vars(receiver, reports_dir))
    assert again.rc == 0, again
    assert 'not duplicated' in again.out
    with open(tickets) as handle:
        assert len([line for line in handle if line.strip()]) == 1
    assert_healthy(lab, host)


def test_maintenance_drains_the_queue(lab, receiver, reports_dir):
    host = 'lab3'   # has the P2 maintenance entry from the previous test
    run = playbook(lab, 'maintenance.yml', host, notify_vars(receiver, reports_dir))
    assert run.rc == 0, run
    queue = lab.fs(index_of(host), INCIDENTS + '/maintenance-queue.jsonl')
    with open(queue) as handle:
        entries = [json.loads(line) for line in handle if line.strip()]
    assert entries and all(e['status'] == 'done' for e in entries if e['host'] == host)
    assert_healthy(lab, host)


def test_backup_playbook_keeps_n(lab, receiver, reports_dir):
    host = 'lab3'
    for _attempt in range(3):
        run = playbook(lab, 'backup.yml', host, {'claude_flow_backup_keep': 2})
        assert run.rc == 0, run
        time.sleep(1.1)   # timestamped folders are per second
    folder = lab.fs(index_of(host), '/var/backups/claude-code')
    stamps = [d for d in os.listdir(folder) if re.match(r'^\d{8}T\d{6}Z', d)]
    assert len(stamps) == 2, stamps


def test_p3_db_size_goes_to_the_backlog_once(lab, fresh, receiver, reports_dir):
    host = fresh('lab4')
    # The lab DB is small; a P3 size threshold below it makes the "approaching threshold" case real.
    thresholds = {'truth_score': {'P0': 0.85, 'P1': 0.90, 'P2': 0.95}, 'ops_per_second': {'P0': 0.2, 'P1': 0.4, 'P2': 0.5},
                  'db_size_bytes': {'P3': 100000}}
    extra = dict(notify_vars(receiver, reports_dir), claude_flow_thresholds=thresholds)
    started = time.time()
    run = playbook(lab, 'triage.yml', host, extra)
    assert run.rc == 0, run
    assert 'PLAY [P3 - Low priority response]' in run.out and run.ran('Append the entry to'), run
    backlog = lab.fs(index_of(host), INCIDENTS + '/backlog.jsonl')
    with open(backlog) as handle:
        entries = [json.loads(line) for line in handle if line.strip()]
    assert len(entries) == 1 and entries[0]['severity'] == 'P3' and entries[0]['reasons'][0]['metric'] == 'db_size_bytes'
    assert payloads(receiver, '/pagerduty', started) == [], 'P3 must not page'
    again = playbook(lab, 'p3_response.yml', host, extra)
    assert again.rc == 0 and 'not duplicated' in again.out, again
    with open(backlog) as handle:
        assert len([line for line in handle if line.strip()]) == 1


def _spoil_backups(lab, host):
    """Overwrite every memory.db.backup of the host with bytes that are no SQLite database."""
    spoiled = []
    root = lab.fs(index_of(host), '/opt/claude-code-backups')
    for release in sorted(os.listdir(root)):
        path = os.path.join(root, release, 'memory.db.backup')
        if os.path.exists(path):
            with open(path, 'wb') as handle:
                handle.write(b'not a database\n' * 64)
            spoiled.append(path)
    assert spoiled
    return spoiled


def test_p0_corrupt_db_without_backups_uses_the_salvaged_file(lab, fresh, receiver, reports_dir):
    host = fresh('lab5')
    lab.break_host(host, 'corrupt_db')
    _spoil_backups(lab, host)
    before = db_set_digests(lab, host)
    run = playbook(lab, 'p0_response.yml', host, notify_vars(receiver, reports_dir))
    assert run.rc == 0, run
    assert 'from recovered' in run.out, run
    assert_healthy(lab, host)
    kept = preserved_digests(lab, host)
    for name, digest in before.items():
        assert digest in kept, '%s (sha256 %s) was not preserved' % (name, digest)
    report = read_report(lab, host, incident_id_from(run))
    assert 'salvaged' in report and 'recovered' in report


def test_p0_nothing_usable_fails_loudly_and_pages(lab, fresh, receiver, reports_dir):
    host = fresh('lab5')
    _spoil_backups(lab, host)
    live = host_file(lab, host, LIVE_DB)
    lab.exec(host, ['systemctl', 'stop', 'claude-code-production'], capture=True)
    with open(live, 'r+b') as handle:   # the header and every page: nothing left to salvage
        size = os.path.getsize(live)
        handle.write(b'\0' * size)
    lab.exec(host, ['systemctl', 'start', 'claude-code-production'], capture=True)
    damaged = sha256(live)
    # Check mode shows the real plan: it fails with the reason the real run gives, never "restore from none".
    check = playbook(lab, 'p0_response.yml', host, notify_vars(receiver, reports_dir), check=True)
    assert check.rc != 0 and 'NOTHING USABLE' in check.out and 'from none' not in check.out, check
    assert sha256(live) == damaged
    started = time.time()
    run = playbook(lab, 'p0_response.yml', host, notify_vars(receiver, reports_dir))
    assert run.rc != 0, run
    assert 'NOTHING USABLE' in run.out, run
    reason = re.compile(r'NOTHING USABLE to restore\s+\S+\s+from:\s+no\s+verified\s+backup\s+matches[^(]*\(\d+\s+candidates')

    def said(out):
        return ' '.join(reason.search(out).group(0).split())
    assert said(check.out) == said(run.out), (check, run)
    assert sha256(live) == damaged, 'the damaged DB was changed although nothing could replace it'
    assert any('HUMAN NEEDED' in p['text'] for p in payloads(receiver, '/slack', started))
    report = read_report(lab, host, incident_id_from(run))
    assert 'NOTHING USABLE' in report and 'Unresolved' in report


def test_p0_restart_that_does_not_help_rolls_back(lab, fresh, receiver, reports_dir):
    host = fresh('lab1')
    old_release = link_target(lab, host)
    lab.exec(host, ['systemctl', 'stop', 'claude-code-production'], capture=True)
    # The live DB of this release becomes a valid SQLite file without tables: integrity_check passes
    # (so it is no "corruption"), but the app answers 503 on it, so a restart cannot help.
    live = host_file(lab, host, LIVE_DB)
    for suffix in ('-wal', '-shm'):
        if os.path.exists(live + suffix):
            os.unlink(live + suffix)
    os.unlink(live)
    rc, out = host_exec(lab, host, '/usr/bin/python3', '-c',
                        "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA user_version=7'); "
                        "c.commit(); c.close()", LIVE_DB)
    assert rc == 0, out
    assert integrity(lab, host) == 'ok' and health(lab, host) != 200
    extra = dict(notify_vars(receiver, reports_dir), claude_flow_health_retries=4)
    run = playbook(lab, 'p0_response.yml', host, extra)
    assert run.rc == 0, run
    assert run.ran('Restart the service (systemctl restart)'), run
    assert run.ran('Roll back after the failed restart') or run.ran('Point the production symlink at the release rolled back to'), run
    assert link_target(lab, host) != old_release
    assert_healthy(lab, host)
    report = read_report(lab, host, incident_id_from(run))
    assert 'Restart did not bring' in report and 'Rolled back' in report
