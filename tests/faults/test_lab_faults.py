# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault matrix, playbook level, on real lab hosts: rollback faults, SIGKILL in the middle of a
restore, two alerts for one host at once, a host lost in the middle of a rollout, bad variables
given to the playbooks, and the notification secrets after every run.

Every case has hosts of its own, so all of them run at the same time (the ``scenarios`` fixture
starts each in a thread at the first test; a test waits for its own and then asserts). Notifications
go to a real HTTP receiver on the controller's loopback, at URLs that contain a secret token; after
each case its ansible output, the files its hosts wrote and its fetched reports are searched for the
token (``fault.secrets``).
"""

import concurrent.futures
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import (LAB_PY, REPO, CheckDiverged, PriorState, changes, compare_check, crash_in, gen, integrity,
                      last_error, sha256, snapshot)

sys.path.insert(0, os.path.join(REPO, 'tests', 'lab'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'lab_tests'))

import lab as labmod  # noqa: E402  (tests/lab is not a package)
from receiver import Receiver  # noqa: E402

pytestmark = pytest.mark.lab

HOSTS = 14
PLAYBOOKS = os.path.join(REPO, 'playbooks')
LAB_VAULT_PASSWORD = os.path.join(REPO, 'tests', 'lab', 'vault-password.txt')
APP_LINK = '/opt/claude-code-production'
RELEASES = '/opt/claude-code-backups'
PRESERVE = '/var/lib/claude-flow-runbook/preserved'
GUARD = '/var/lib/claude-flow-runbook/guard'
INCIDENTS = '/var/log/claude-code/incidents'
BACKUPS = '/var/backups/claude-code'
RUN_TIMEOUT = 900
# What a check-mode run must leave as it was on a host: the production link, every release (the live DB
# set is in one), the collection's state (preserve dirs, lock, history), incident records, backups.
HOST_STATE = (APP_LINK, RELEASES, '/var/lib/claude-flow-runbook', INCIDENTS, BACKUPS)
# Every run's full output is kept here (tests/output is not committed), named <case>-<n>.log.
RUN_LOGS = os.path.join(
    os.path.dirname(os.environ.get('FAULTS_OUTCOMES') or os.path.join(REPO, 'tests', 'output', 'faults.json')),
    'faults-runs')


# ------------------------------------------------------------------------------------ the lab

@pytest.fixture(scope='module')
def lab():
    """The lab named by $FAULTS_LAB_DIR (the molecule faults scenario's), else one of our own in a
    state dir of its own (own namespace names: it never meets the default lab), always taken down."""
    if os.geteuid() != 0:
        pytest.skip('the lab needs root (network, mount and PID namespaces); CI runs as root')
    given = os.environ.get('FAULTS_LAB_DIR')
    state_dir = given or tempfile.mkdtemp(prefix='cflab-faults-')
    if not given:
        proc = subprocess.run([sys.executable, LAB_PY, 'up', '--hosts', str(HOSTS), '--state-dir', state_dir],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stdout
    the_lab = labmod.Lab(state_dir)
    try:
        up = sorted(the_lab.state.get('hosts', {}), key=lambda name: int(name[3:]))
        assert len(up) >= HOSTS, 'the lab in %s has %d hosts; the fault cases need %d' % (state_dir, len(up), HOSTS)
        yield the_lab
    finally:
        if not given:
            proc = subprocess.run([sys.executable, LAB_PY, 'down', '--state-dir', state_dir], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, universal_newlines=True, timeout=300, check=False)
            shutil.rmtree(state_dir, ignore_errors=True)
            assert proc.returncode == 0, proc.stdout


class Secret(object):
    """The notification endpoints: the receiver's URLs with a secret token in them; the token is also
    the PagerDuty routing key. They reach ansible-playbook through a vars file (mode 0600), never
    through its command line."""

    def __init__(self, receiver, directory):
        self.receiver = receiver
        self.token = secrets.token_hex(16)
        self.vars = {
            'claude_flow_slack_webhook_url': receiver.url('/slack/T0FAULT/B0FAULT/' + self.token),
            'claude_flow_pagerduty_routing_key': self.token,
            'claude_flow_pagerduty_events_url': receiver.url('/pagerduty/v2/enqueue'),
            'claude_flow_webhook_url': receiver.url('/webhook/' + self.token),
        }
        self.dead_vars = dict(self.vars, claude_flow_slack_webhook_url='http://127.0.0.1:9/slack/T0/B0/' + self.token,
                              claude_flow_webhook_url='http://127.0.0.1:9/webhook/' + self.token)
        self.directory = directory

    def vars_file(self, name, dead=False, **extra):
        path = os.path.join(self.directory, name + '.vars.json')
        data = dict(self.dead_vars if dead else self.vars, **extra)
        with open(path, 'w') as handle:
            json.dump(data, handle)
        os.chmod(path, 0o600)
        return path


class Run(object):
    def __init__(self, rc, out, seconds):
        self.rc, self.out, self.seconds = rc, out, seconds

    def recap(self, host):
        match = re.search(r'^%s\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)' % host,
                          self.out, re.M)
        return dict(zip(('ok', 'changed', 'unreachable', 'failed'), map(int, match.groups()))) if match else None

    def __repr__(self):
        return 'rc=%s after %.1f s\n%s' % (self.rc, self.seconds, self.out[-5000:])


class Case(object):
    """One scenario's view of the lab: its hosts, files on them, playbook runs, the secret grep."""

    def __init__(self, lab, secret, name, hosts, work):
        self.lab, self.secret, self.name, self.hosts = lab, secret, name, hosts
        self.work = os.path.join(work, name)
        self.reports = os.path.join(self.work, 'reports')
        os.makedirs(self.reports)
        self.runs = []
        self.check_runs = []
        self.checks = []
        self.started = time.time()

    def env(self):
        env = dict(os.environ)
        env.update({'ANSIBLE_CONFIG': os.path.join(REPO, 'ansible.cfg'), 'ANSIBLE_NOCOLOR': '1',
                    'ANSIBLE_SSH_CONTROL_PATH_DIR': self.lab.cp_dir, 'PYTHONUNBUFFERED': '1',
                    'PATH': os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')})
        if os.path.exists(LAB_VAULT_PASSWORD):
            # the lab inventory's group_vars hold vault-encrypted (made-up) escalation contacts
            env['ANSIBLE_VAULT_IDENTITY_LIST'] = 'lab@' + LAB_VAULT_PASSWORD
        return env

    def command(self, playbook, limit=None, extra=None, dead=False, args=(), reports=None):
        vars_file = self.secret.vars_file('%s-%d' % (self.name, len(self.runs)), dead=dead,
                                          claude_flow_reports_dir=reports or self.reports)
        cmd = ['ansible-playbook', '-i', self.lab.inventory, os.path.join(PLAYBOOKS, playbook),
               '-l', limit or ','.join(self.hosts), '-e', '@' + vars_file]
        for key, value in (extra or {}).items():
            cmd += ['-e', '%s=%s' % (key, value)]
        return cmd + list(args)

    def playbook(self, playbook, runtime=None, **kwargs):
        """A playbook run, preceded by its check-mode twin on the same state (check_twin); the two are
        compared (compare_twin). runtime: what makes the real run fail that only acting reveals."""
        twin = self.check_twin(playbook, **kwargs)
        run = self._run(self.command(playbook, **kwargs))
        self.compare_twin(twin, run, runtime)
        return self.keep(run)

    def _run(self, command):
        started = time.monotonic()
        proc = subprocess.run(command, cwd=REPO, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=RUN_TIMEOUT, check=False)
        return Run(proc.returncode, proc.stdout, time.monotonic() - started)

    def state(self, receiver_since=None):
        found = {}
        for host in self.hosts:
            found.update(snapshot([self.lab.fs(int(host[3:]), path) for path in HOST_STATE]))
            found['%s service' % host] = self.lab.service_state(int(host[3:]))
            found['%s notifications' % host] = len(payloads_for(self.secret.receiver, host, receiver_since or 0))
        return found

    def check_twin(self, playbook, args=(), **kwargs):
        """The same run with --check on the same state: no crash, nothing changed on the hosts, nobody
        notified. Its reports go to reports-check on the controller (check-mode output, by design)."""
        since = time.time()
        before = self.state(since)
        reports = self.reports + '-check'
        os.makedirs(reports, exist_ok=True)
        run = self._run(self.command(playbook, args=list(args) + ['--check'], reports=reports, **kwargs))
        self.check_runs.append(run)
        os.makedirs(RUN_LOGS, exist_ok=True)
        with open(os.path.join(RUN_LOGS, '%s-check-%d.log' % (self.name, len(self.check_runs))), 'w') as handle:
            handle.write('rc=%s seconds=%.1f\n%s' % (run.rc, run.seconds, run.out))
        crash = crash_in(run.out)
        assert not crash, '%s: %s --check crashed: %s' % (self.name, playbook, crash)
        changed = changes(before, self.state(since))
        assert not changed, '%s: %s --check changed %s' % (self.name, playbook, changed)
        return run

    def compare_twin(self, twin, run, runtime=None):
        """Record how the check twin agreed with the real run; a divergence is kept as an error for the
        case's test to raise (the scenario itself runs on)."""
        try:
            self.checks.append(compare_check(twin.rc != 0, error_text(twin), run.rc != 0, error_text(run), runtime))
        except CheckDiverged as exc:
            self.checks.append(('diverged', '%s (run %d)' % (exc, len(self.runs) + 1)))

    def keep(self, run):
        self.runs.append(run)
        os.makedirs(RUN_LOGS, exist_ok=True)
        with open(os.path.join(RUN_LOGS, '%s-%d.log' % (self.name, len(self.runs))), 'w') as handle:
            handle.write('rc=%s seconds=%.1f\n%s' % (run.rc, run.seconds, run.out))
        return run

    def start(self, playbook, **kwargs):
        """A playbook run in its own process group (so SIGKILL reaches all of ansible)."""
        proc = subprocess.Popen(self.command(playbook, **kwargs), cwd=REPO, env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, universal_newlines=True, start_new_session=True)
        proc.started = time.monotonic()
        return proc

    def finish(self, proc, timeout=RUN_TIMEOUT, twin=None, runtime=None):
        """The run started by start(); twin: its check-mode twin (check_twin before start), compared."""
        out = proc.communicate(timeout=timeout)[0]
        run = Run(proc.returncode, out, time.monotonic() - proc.started)
        if twin is not None:
            self.compare_twin(twin, run, runtime)
        return self.keep(run)

    def fs(self, host, path):
        return self.lab.resolve(int(host[3:]), path)

    def exec(self, host, *argv):
        return self.lab.exec(int(host[3:]), list(argv), capture=True)

    def live_db(self, host):
        return self.fs(host, APP_LINK + '/.swarm/memory.db')

    def link(self, host):
        return os.readlink(self.lab.fs(int(host[3:]), APP_LINK))

    def preserve_dirs(self, host):
        return [self.fs(host, PRESERVE)]

    def lock_held(self, host):
        return os.path.exists(self.fs(host, GUARD + '/lock.json'))

    def history(self, host):
        try:
            with open(self.fs(host, GUARD + '/history.json')) as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return []
        return data.get('entries', data) if isinstance(data, dict) else data

    def secret_hits(self):
        """Files and outputs of this case that hold the secret token."""
        needle = self.secret.token
        hits = ['ansible output of run %d' % number for number, run in enumerate(self.runs) if needle in run.out]
        hits += ['ansible output of check run %d' % number for number, run in enumerate(self.check_runs)
                 if needle in run.out]
        roots = [self.reports, self.reports + '-check'] + [os.path.join(self.lab.host_dir(int(host[3:])), 'upper') for host in self.hosts]
        for root in roots:
            for base, _dirs, names in os.walk(root):
                for name in names:
                    path = os.path.join(base, name)
                    try:
                        with open(path, 'rb') as handle:
                            if needle.encode() in handle.read():
                                hits.append(path)
                    except OSError:
                        pass
        return hits


def break_host(case, host, mode):
    return case.lab.break_host(int(host[3:]), mode)


def payloads_for(receiver, host, since, prefix=''):
    found = []
    for record in receiver.received(prefix):
        body = json.dumps(record.get('json'))
        if record['time'] >= since and re.search(r'\b%s\b' % host, body):
            found.append(record)
    return found


def clean_run(run):
    assert 'Traceback' not in run.out, run


def changed_tasks(run, pattern):
    """Names of the tasks matching pattern that reported a change in this run."""
    found = []
    for block in re.split(r'^(?=TASK \[)', run.out, flags=re.M):
        match = re.match(r'TASK \[(.*?)\]', block)
        if match and re.search(pattern, match.group(1)) and re.search(r'^changed: \[', block, re.M):
            found.append(match.group(1))
    return found


def error_text(run):
    """The operator-facing error of a failed run: the last [ERROR] with the line after it."""
    return last_error(run.out)


# ------------------------------------------------------------------------------------ scenarios

def rollback_no_previous_release(case, receiver):
    host = case.hosts[0]
    for release in ('release-2026.11.20', 'release-2026.11.25'):
        shutil.rmtree(case.lab.fs(int(host[3:]), '%s/%s' % (RELEASES, release)))
    break_host(case, host, 'truth_low_p0')
    prior = PriorState(case.live_db(host))
    link = case.link(host)
    run = case.playbook('p0_response.yml')
    return {'run': run, 'prior': prior, 'link_before': link, 'link_after': case.link(host),
            'health': case.lab.health(int(host[3:])), 'lock': case.lock_held(host),
            'pages': payloads_for(receiver, host, case.started, '/pagerduty'),
            'slack': payloads_for(receiver, host, case.started, '/slack'),
            'lost': prior.lost(*case.preserve_dirs(host))}


def rollback_previous_missing_backup(case, receiver):
    host = case.hosts[0]
    os.unlink(case.lab.fs(int(host[3:]), RELEASES + '/release-2026.11.25/memory.db.backup'))
    break_host(case, host, 'truth_low_p0')
    prior = PriorState(case.live_db(host))
    run = case.playbook('p0_response.yml')
    return {'run': run, 'link_after': case.link(host), 'health': case.lab.health(int(host[3:])),
            'lock': case.lock_held(host), 'lost': prior.lost(*case.preserve_dirs(host)),
            'integrity': integrity(case.live_db(host))}


def symlink_to_deleted_dir(case, receiver):
    host = case.hosts[0]
    index = int(host[3:])
    priors = [PriorState(case.fs(host, '%s/%s/.swarm/memory.db' % (RELEASES, release)))
              for release in ('release-2026.11.20', 'release-2026.11.25', 'release-2026.11.27')]
    link = case.lab.fs(index, APP_LINK)
    os.unlink(link)
    os.symlink(RELEASES + '/release-2026.12.01', link)   # a release dir that was deleted
    health_before = case.lab.health(index)
    run = case.playbook('p0_response.yml')
    return {'run': run, 'health_before': health_before, 'link_after': case.link(host),
            'health': case.lab.health(index), 'lock': case.lock_held(host),
            'pages': payloads_for(receiver, host, case.started, '/pagerduty'),
            'lost': sum(prior.lost(*case.preserve_dirs(host)) for prior in priors)}


def service_fails_after_rollback(case, receiver):
    """The release rolled back to has a DB backup that passes integrity_check but holds no table:
    the service starts and /health answers 503."""
    host = case.hosts[0]
    for release in ('release-2026.11.20', 'release-2026.11.25'):
        backup = case.lab.fs(int(host[3:]), '%s/%s/memory.db.backup' % (RELEASES, release))
        os.unlink(backup)
        conn = sqlite3.connect(backup)   # a valid SQLite file (passes integrity_check) without any table
        conn.execute('CREATE TABLE gone (x)')
        conn.execute('DROP TABLE gone')
        conn.commit()
        conn.close()
    break_host(case, host, 'truth_low_p0')
    prior = PriorState(case.live_db(host))
    link = case.link(host)
    run = case.playbook('p0_response.yml', runtime='the release rolled back to answers /health 503 only once the '
                        'service runs on it')
    return {'run': run, 'link_before': link, 'link_after': case.link(host),
            'health': case.lab.health(int(host[3:])), 'service': case.lab.service_state(int(host[3:])),
            'lock': case.lock_held(host), 'lost': prior.lost(*case.preserve_dirs(host)),
            'pages': payloads_for(receiver, host, case.started, '/pagerduty'),
            'slack': payloads_for(receiver, host, case.started, '/slack')}


def two_alerts_at_once(case, receiver):
    host = case.hosts[0]
    break_host(case, host, 'corrupt_db')
    prior = PriorState(case.live_db(host))
    twin = case.check_twin('p0_response.yml')
    first = case.start('p0_response.yml')
    second = case.start('p0_response.yml')
    runs = [case.finish(first, twin=twin, runtime='the other run holds the remediation lock'),
            case.finish(second, twin=twin, runtime='the other run holds the remediation lock')]
    preserved = []
    for base, dirs, _names in os.walk(case.fs(host, PRESERVE)):
        preserved += [name for name in dirs if 'pre-restore' in name]
    return {'runs': runs, 'history': case.history(host), 'preserved': preserved,
            'restores': [changed_tasks(run, r'Restore the DB|Restore the release|Perform the rollback') for run in runs],
            'lock_lines': [tail(run, r'msg: lock ') for run in runs],
            'health': case.lab.health(int(host[3:])), 'lock': case.lock_held(host),
            'integrity': integrity(case.live_db(host)), 'lost': prior.lost(*case.preserve_dirs(host)),
            'initial_pages': [p for p in payloads_for(receiver, host, case.started, '/pagerduty')
                              if p['json'].get('event_action') == 'trigger']}


def sigkill_mid_restore(case, receiver):
    host = case.hosts[0]
    index = int(host[3:])
    break_host(case, host, 'corrupt_db')
    live = case.live_db(host)
    prior = PriorState(live)
    journal = live + '.restore-journal.json'
    preserve = case.fs(host, PRESERVE)
    case.check_twin('p0_response.yml')   # the killed run's twin: nothing to compare with a killed run
    proc = case.start('p0_response.yml')
    killed_at = None
    deadline = time.monotonic() + 600
    # the restore has begun when its journal exists or the pre-restore preserve dir appears
    while proc.poll() is None and time.monotonic() < deadline:
        started = os.path.exists(journal) or any('pre-restore' in name for _b, dirs, _n in os.walk(preserve)
                                                 for name in dirs)
        if started:
            os.killpg(proc.pid, signal.SIGKILL)
            killed_at = 'journal' if os.path.exists(journal) else 'preserve'
            break
        time.sleep(0.002)
    killed = case.finish(proc)
    time.sleep(1)
    now = sha256(live) if os.path.exists(live) else None
    state = 'old' if now == prior.files[live][0] else ('new' if now and integrity(live) == 'ok' else 'MIX')
    lock_after_kill = _lock_and_keeper(case, host)
    rerun = case.playbook('p0_response.yml')
    return {'killed_at': killed_at, 'killed': killed, 'state': state, 'lock_after_kill': lock_after_kill,
            'rerun': rerun, 'health': case.lab.health(index), 'integrity': integrity(live),
            'journal_left': os.path.exists(journal), 'lock': case.lock_held(host),
            'lost': prior.lost(*case.preserve_dirs(host))}


def _lock_and_keeper(case, host):
    """The lock file left on the host, and whether its keeper process still runs there."""
    try:
        with open(case.fs(host, GUARD + '/lock.json')) as handle:
            lock = json.load(handle)
    except (OSError, ValueError):
        return None
    keeper = case.exec(host, 'cat', '/proc/%s/cmdline' % lock.get('pid')).stdout.replace('\0', ' ').strip()
    return {'incident_id': lock.get('incident_id'), 'ttl': lock.get('ttl'), 'keeper_pid': lock.get('pid'),
            'keeper_alive': bool(keeper)}


def bad_variable(extra, check_file=None):
    def scenario(case, receiver):
        host = case.hosts[0]
        prior = PriorState(case.live_db(host))
        watched = case.fs(host, check_file) if check_file else None
        watched_before = sha256(watched) if watched else None
        incidents_before = set(os.listdir(case.fs(host, INCIDENTS)))
        run = case.playbook('p0_response.yml', extra=extra)
        return {'run': run, 'lost': prior.lost(*case.preserve_dirs(host)),
                'watched_changed': bool(watched) and sha256(watched) != watched_before,
                'root_known': case.exec(host, 'id', 'root').returncode == 0,
                'new_incident_files': sorted(set(os.listdir(case.fs(host, INCIDENTS))) - incidents_before),
                'lock_taken': bool(case.history(host)) or case.lock_held(host),
                'pages': payloads_for(receiver, host, case.started, '/pagerduty'),
                'health': case.lab.health(int(host[3:]))}
    return scenario


def unreachable_mid_rollout(case, receiver):
    """maintenance.yml over three hosts in batches; the second host's network goes down once the
    first batch has started. Then triage over all three with the host still down; then the host comes
    back and the rollout is run again."""
    first, lost_host, last = case.hosts
    netns = case.lab.netns(int(lost_host[3:]))
    last_files = _release_sums(case, last)
    results = {}

    def link(state):
        subprocess.run(['ip', '-n', netns, 'link', 'set', 'eth0', state], check=True)

    # 1. serial 1, max_fail_percentage 0: the rollout stops at the lost host; the last is untouched
    first_batch = {'claude_flow_maintenance_serial': 1, 'claude_flow_maintenance_max_fail_percentage': 0}
    twin = case.check_twin('maintenance.yml', extra=first_batch)
    proc = case.start('maintenance.yml', extra=first_batch)
    seen = ''
    while proc.poll() is None:
        line = proc.stdout.readline()
        seen += line
        if re.search(r'^(ok|changed): \[%s\]' % first, line):
            link('down')
            break
    rest = proc.communicate(timeout=RUN_TIMEOUT)[0]
    stopped = Run(proc.returncode, seen + rest, time.monotonic() - proc.started)
    case.compare_twin(twin, stopped, runtime='%s went unreachable in the middle of the run' % lost_host)
    case.keep(stopped)
    results['stopped'] = stopped
    results['last_untouched'] = _release_sums(case, last) == last_files
    results['last_backups'] = _listing(case, last, BACKUPS)
    results['first_backups'] = _listing(case, first, BACKUPS)
    # 2. serial 2, max_fail_percentage 50: one of two failing in a batch is within the limit
    results['within'] = case.playbook('maintenance.yml', extra={'claude_flow_maintenance_serial': 2,
                                                                'claude_flow_maintenance_max_fail_percentage': 50})
    results['last_backups_within'] = _listing(case, last, BACKUPS)
    # 3. triage with the host still gone: the others are assessed
    results['triage'] = case.playbook('triage.yml')
    # 4. the host is back: the rollout resumes cleanly
    link('up')
    results['resumed'] = case.playbook('maintenance.yml', extra={'claude_flow_maintenance_serial': 1,
                                                                 'claude_flow_maintenance_max_fail_percentage': 0})
    results['lost_backups'] = _listing(case, lost_host, BACKUPS)
    results['locks'] = [case.lock_held(host) for host in case.hosts]
    return results


def _release_sums(case, host):
    root = case.lab.fs(int(host[3:]), RELEASES)
    sums = {}
    for base, _dirs, names in os.walk(root):
        for name in names:
            if not name.endswith('-shm') and not name.endswith('.growth.json'):
                sums[os.path.join(base, name)] = sha256(os.path.join(base, name))
    return sums


def _listing(case, host, path):
    root = case.lab.fs(int(host[3:]), path)
    return sorted(os.path.relpath(os.path.join(base, name), root) for base, _dirs, names in os.walk(root)
                  for name in names)


def no_usable_backup(case, receiver):
    """A live DB that is not a database any more (its header overwritten: .recover cannot salvage it) and
    no DB backup anywhere; the preflight's backup gate is waived so the response reaches the recovery."""
    host = case.hosts[0]
    for base, _dirs, names in os.walk(case.lab.fs(int(host[3:]), RELEASES)):
        for name in names:
            if name.startswith('memory.db.backup'):
                os.unlink(os.path.join(base, name))
    shutil.rmtree(case.lab.fs(int(host[3:]), BACKUPS), ignore_errors=True)
    os.makedirs(case.lab.fs(int(host[3:]), BACKUPS))
    live = case.live_db(host)
    gen.corrupt(live, 'not_a_database')
    prior = PriorState(live)
    run = case.playbook('p0_response.yml', extra={'claude_flow_preflight_require_backup': 'false'})
    return {'run': run, 'lost': prior.lost(*case.preserve_dirs(host)), 'lock': case.lock_held(host),
            'unchanged': sha256(live) == prior.files[live][0]}


def notify_endpoints_down(case, receiver):
    host = case.hosts[0]
    break_host(case, host, 'service_down')
    run = case.playbook('p0_response.yml', dead=True)
    return {'run': run, 'health': case.lab.health(int(host[3:])), 'lock': case.lock_held(host)}


SCENARIOS = {
    # name: (function, hosts)
    'rollback_no_previous_release': (rollback_no_previous_release, ['lab1']),
    'rollback_previous_missing_backup': (rollback_previous_missing_backup, ['lab2']),
    'symlink_to_deleted_dir': (symlink_to_deleted_dir, ['lab3']),
    'service_fails_after_rollback': (service_fails_after_rollback, ['lab4']),
    'two_alerts_at_once': (two_alerts_at_once, ['lab5']),
    'sigkill_mid_restore': (sigkill_mid_restore, ['lab6']),
    'negative_window': (bad_variable({'claude_flow_triage_window': '-5m'}), ['lab7']),
    'wrong_type': (bad_variable({'claude_flow_monitor_seconds': 'abc'}), ['lab8']),
    'path_outside_roots': (bad_variable({'claude_flow_db_path': '/etc/passwd'}, check_file='/etc/passwd'), ['lab9']),
    'unknown_severity': (bad_variable({'claude_flow_severity': 'P7'}), ['lab10']),
    'notify_endpoints_down': (notify_endpoints_down, ['lab11']),
    # on lab9 once path_outside_roots is done there (that case is refused before it touches anything)
    'no_usable_backup': (no_usable_backup, ['lab9']),
    'unreachable_mid_rollout': (unreachable_mid_rollout, ['lab12', 'lab13', 'lab14']),
}


# Scenarios that reuse a host once the one named has finished with it.
AFTER = {'no_usable_backup': 'path_outside_roots'}


@pytest.fixture(scope='module')
def scenarios(lab, tmp_path_factory):
    """Start every scenario at once (each on its own hosts); {name: (future, case)}."""
    work = str(tmp_path_factory.mktemp('lab-faults'))
    receiver = Receiver().start()
    secret = Secret(receiver, work)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(SCENARIOS))
    started = {}

    def run(name):
        function, hosts = SCENARIOS[name]
        if name in AFTER:
            started[AFTER[name]].exception()   # wait for the case that had the host first
        case = Case(lab, secret, name, hosts, work)
        return function(case, receiver), case

    for name in SCENARIOS:
        started[name] = pool.submit(run, name)
    yield {'futures': started, 'receiver': receiver}
    pool.shutdown(wait=True)
    receiver.stop()


def outcome(scenarios, name, fault=None, check=True):
    """A scenario's (result, case); with fault: the case's hosts and check twins recorded on it, and
    (check=True) CheckDiverged raised when a twin did not agree with its real run."""
    result, case = scenarios['futures'][name].result(timeout=2 * RUN_TIMEOUT)
    if fault is not None and check:
        fault.hosts = case.hosts
        fault.checks = list(case.checks)   # a divergence shows in the column too (a known gap's)
        diverged = [note for check, note in case.checks if check == 'diverged']
        if diverged:
            raise CheckDiverged('check mode diverged from the real run: %s' % ' | '.join(diverged))
    return result, case


def record_secrets(fault, case):
    hits = case.secret_hits()
    fault.secrets(len(hits))
    assert hits == [], 'the notification secret leaked into: %s' % hits


def single_run(scenarios, name, fault, check=True):
    """A one-playbook scenario's outcome: the run ended without a traceback, no prior DB byte was lost,
    the notification secret leaked nowhere. Returns (result, case, run). check=False: the test compares
    the check twins itself at its end (outcome), after the real run's own assertions."""
    result, case = outcome(scenarios, name, fault, check=check)
    run = result['run']
    clean_run(run)
    fault.lost(result['lost'])
    assert result['lost'] == 0
    record_secrets(fault, case)
    return result, case, run


def tail(run, pattern):
    """The last line of a run's output matching pattern (for the table)."""
    lines = [line.strip() for line in run.out.splitlines() if re.search(pattern, line)]
    return lines[-1] if lines else ''


# ------------------------------------------------------------------------------------ rollback


@pytest.mark.fault('rollback', 'No previous release to roll back to (truth score 0.80)')
def test_rollback_no_previous_release(scenarios, fault):
    result, _case, run = single_run(scenarios, 'rollback_no_previous_release', fault)
    assert run.rc != 0, run
    assert 'No release to roll back to' in run.out, run
    assert result['link_after'] == result['link_before']
    assert result['lock'] is False
    assert result['pages'], 'nobody was paged'
    fault.did('stopped before changing anything: "%s"; paged (%d PagerDuty events); symlink and DB unchanged; '
              'lock released' % (fault.clip(error_text(run), 260), len(result['pages'])))


@pytest.mark.fault('rollback', 'Previous release missing its DB backup')
def test_rollback_previous_release_missing_backup(scenarios, fault):
    result, _case, run = single_run(scenarios, 'rollback_previous_missing_backup', fault)
    assert run.rc == 0, run
    assert result['link_after'].endswith('release-2026.11.20'), result['link_after']
    assert result['health'] == 200 and result['integrity'] == 'ok' and not result['lock']
    fault.did('release-2026.11.25 skipped (no memory.db.backup), rolled back to release-2026.11.20 whose backup '
              'verified; /health 200; the DB rolled back from is preserved with sha256')


@pytest.mark.fault('rollback', 'Production symlink points at a deleted release dir')
def test_symlink_to_deleted_dir(scenarios, fault):
    result, _case, run = single_run(scenarios, 'symlink_to_deleted_dir', fault)
    assert result['lock'] is False
    assert run.rc == 0, run
    assert result['health'] == 200 and not result['link_after'].endswith('release-2026.12.01'), result
    fault.did('P0 saw db_missing, found the production symlink dangling and rolled back: the link now points at '
              '%s (newest release whose backup verifies; its live DB preserved with sha256 before the restore); '
              '/health %s' % (os.path.basename(result['link_after']), result['health']))


@pytest.mark.fault('rollback', 'The service fails to start after the rollback (/health 503 on the release rolled back to)')
def test_service_fails_after_rollback(scenarios, fault):
    result, _case, run = single_run(scenarios, 'service_fails_after_rollback', fault)
    swapped = changed_tasks(run, r'symlink|Perform the rollback')
    assert swapped, 'the rollback never happened, so this fault was not exercised:\n%s' % fault.clip(
        error_text(run), 400)
    assert run.rc != 0, 'a rollback that left /health at %s reported success' % result['health']
    assert result['pages'] or any('HUMAN' in json.dumps(p['json']) for p in result['slack']), 'nobody was paged'
    assert result['lock'] is False
    rolled_forward = result['link_after'] == result['link_before'] and result['health'] == 200
    stopped = result['service'] != 'active'
    fault.did('%s; paged ("%s"); link %s -> %s, service %s, /health %s' % (
        'rolled forward to the preserved state' if rolled_forward else
        ('stopped the service safely' if stopped else 'left the service running unhealthy'),
        fault.clip(error_text(run), 200), os.path.basename(result['link_before']),
        os.path.basename(result['link_after']), result['service'], result['health']))
    assert rolled_forward or stopped, ('after a failed rollback the service is left running on the bad release '
                                       '(/health %s): neither rolled forward nor stopped' % result['health'])


@pytest.mark.fault('backups', 'No usable backup and a DB .recover cannot salvage (preflight backup gate waived)')
def test_no_usable_backup(scenarios, fault):
    result, _case, run = single_run(scenarios, 'no_usable_backup', fault, check=False)
    assert result['unchanged'] and not result['lock'], result
    assert run.rc != 0 and 'NOTHING USABLE' in run.out, run
    fault.did('stopped with "%s"; the damaged DB untouched; lock released' % fault.clip(error_text(run), 260))
    outcome(scenarios, 'no_usable_backup', fault)   # the check twin must fail with the same reason


# ------------------------------------------------------------------------------------ process

@pytest.mark.fault('process', 'Two alerts for the same host at once (two p0_response.yml runs)')
def test_two_alerts_one_remediation(scenarios, fault):
    result, case = outcome(scenarios, 'two_alerts_at_once', fault)
    for run in result['runs']:
        clean_run(run)
    fault.lost(result['lost'])
    assert result['lost'] == 0
    record_secrets(fault, case)
    assert result['health'] == 200 and result['integrity'] == 'ok' and not result['lock']
    remediating = [number + 1 for number, tasks in enumerate(result['restores']) if tasks]
    fault.did('%d of the 2 runs remediated (runs %s; rc %s/%s); lock: %s; guard history: %d remediation(s); '
              'preserved sets: %d; PagerDuty triggers: %d' % (
                  len(remediating), remediating or '-', result['runs'][0].rc, result['runs'][1].rc,
                  ' / '.join(fault.clip(line.replace('msg: ', ''), 90) for line in result['lock_lines']),
                  len([e for e in result['history'] if e.get('outcome') == 'remediated']), len(result['preserved']),
                  len(result['initial_pages'])))
    incidents = [set(re.findall(r'INC-\d{8}-\d{6}-\w+', line)) for line in result['lock_lines']]
    shared = bool(incidents[0] & incidents[1]) and any('already held by this' in line
                                                       for line in result['lock_lines'])
    assert not shared, 'the second run re-entered the first run\'s lock: %s' % result['lock_lines']
    assert len(remediating) == 1, result['restores']


@pytest.mark.fault('process', 'The playbook killed with SIGKILL in the middle of a restore')
def test_sigkill_mid_restore(scenarios, fault):
    result, case = outcome(scenarios, 'sigkill_mid_restore', fault)
    assert result['killed_at'], 'the restore was never seen starting:\n%r' % result['killed']
    assert result['state'] in ('old', 'new'), result['state']
    rerun = result['rerun']
    clean_run(rerun)
    fault.lost(result['lost'])
    record_secrets(fault, case)
    assert rerun.rc == 0, 'the next run did not take over the killed run\'s lock (%s): %s' % (
        result['lock_after_kill'], fault.clip(tail(rerun, 'msg:|ERROR'), 300))
    assert result['health'] == 200 and result['integrity'] == 'ok'
    assert not result['journal_left'] and not result['lock']
    assert result['lost'] == 0
    fault.did('killed when the restore had written its %s; the DB was then the %s set (never a mix); lock after '
              'the kill: %s; the next run (%s) finished cleanly (/health 200, integrity ok, no journal, lock released)'
              % (result['killed_at'], result['state'], 'left, broken as stale once its lease lapsed'
                 if result['lock_after_kill'] else 'gone',
                 fault.clip(tail(rerun, r'msg: lock ').replace('msg: ', ''), 120)))


@pytest.mark.fault('process', 'A host unreachable in the middle of a rollout (serial batches, max_fail_percentage)')
def test_host_unreachable_mid_rollout(scenarios, fault):
    result, case = outcome(scenarios, 'unreachable_mid_rollout', fault)
    first, lost_host, last = case.hosts
    stopped, within, triage, resumed = result['stopped'], result['within'], result['triage'], result['resumed']
    for run in (stopped, within, triage, resumed):
        clean_run(run)
    assert stopped.recap(lost_host)['unreachable'] == 1, stopped
    assert stopped.rc != 0 and result['last_untouched'], 'max_fail_percentage 0 did not stop the rollout'
    assert result['first_backups'], 'the first host was not backed up first'
    assert result['last_backups_within'], 'within max_fail_percentage the rollout did not go on'
    assert triage.recap(first)['failed'] == 0 and triage.recap(last)['failed'] == 0, triage
    assert resumed.rc == 0 and result['lost_backups'], resumed
    assert result['locks'] == [False, False, False]
    fault.lost(0)
    record_secrets(fault, case)
    fault.did('serial 1 / max_fail_percentage 0: %s unreachable, the rollout stopped, %s untouched; serial 2 / '
              '50 %%: the batch with the lost host stayed within the limit and %s was maintained; triage assessed '
              'the other hosts; with the host back the rollout resumed cleanly (rc 0)' % (lost_host, last, last))


# ------------------------------------------------------------------------------------ input

def _input_case(scenarios, fault, name, what):
    result, _case, run = single_run(scenarios, name, fault)
    at_start = run.rc != 0 and not result['lock_taken'] and not result['new_incident_files'] and not result['pages']
    message = error_text(run)
    if at_start:
        fault.did('rejected before anything ran: "%s"' % fault.clip(message, 220))
        return
    raise AssertionError('not rejected at the start (%s): rc %s; lock taken: %s; incident files written: %s; '
                         'pages sent: %d; watched file changed: %s' % (
                             what, run.rc, result['lock_taken'], len(result['new_incident_files']),
                             len(result['pages']), result.get('watched_changed')))


@pytest.mark.fault('input', 'Playbook: negative window (-e claude_flow_triage_window=-5m)')
def test_playbook_negative_window(scenarios, fault):
    _input_case(scenarios, fault, 'negative_window', 'the run took the lock and opened an incident before the '
                'triage module refused the window, then paged')


@pytest.mark.fault('input', 'Playbook: wrong type (-e claude_flow_monitor_seconds=abc)')
def test_playbook_wrong_type(scenarios, fault):
    _input_case(scenarios, fault, 'wrong_type', 'the run went on with the bad value')


@pytest.mark.fault('input', 'Playbook: DB path outside the configured roots (-e claude_flow_db_path=/etc/passwd)')
def test_playbook_path_outside_roots(scenarios, fault):
    _input_case(scenarios, fault, 'path_outside_roots', 'the run used /etc/passwd as the DB')


@pytest.mark.fault('input', 'Playbook: unknown severity (-e claude_flow_severity=P7)')
def test_playbook_unknown_severity(scenarios, fault):
    _input_case(scenarios, fault, 'unknown_severity', 'the run went on')


# ------------------------------------------------------------------------------------ secrets

@pytest.mark.fault('secrets', 'Notification endpoints down (connection refused) with the secret in the URL')
def test_notify_endpoints_down_do_not_leak(scenarios, fault):
    result, case = outcome(scenarios, 'notify_endpoints_down', fault)
    run = result['run']
    clean_run(run)
    assert result['health'] == 200 and not result['lock'], result
    assert 'NOT delivered' in run.out or 'not delivered' in run.out, run
    fault.lost(0)
    record_secrets(fault, case)
    fault.did('service restarted, /health 200; the failed deliveries are reported ("%s") with the URL '
              'masked' % fault.clip(tail(run, 'not delivered|NOT delivered'), 160))


@pytest.mark.fault('secrets', 'Every fault case above: ansible output, host files and reports searched for the secret')
def test_no_secret_anywhere(scenarios, fault):
    hits = []
    for name in SCENARIOS:
        _result, case = outcome(scenarios, name)
        hits += case.secret_hits()
        fault.checks += [check for check in case.checks if check[0] != 'diverged']   # the twins' secrets too
    deliveries = scenarios['receiver'].received()
    assert deliveries, 'no notification reached the receiver: the secret was never in use'
    fault.secrets(len(hits))
    fault.lost(0)
    assert hits == []
    fault.did('%d notifications delivered to URLs holding the token; 0 hits in %d ansible runs, the hosts\' '
              'written files and the fetched reports' % (len(deliveries), sum(
                  len(outcome(scenarios, name)[1].runs) for name in SCENARIOS)))
