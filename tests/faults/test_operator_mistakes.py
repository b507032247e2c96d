# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault cases: the operator mistakes most likely on a first run, through p0_response.yml on a lab host
whose DB is corrupt (a real P0). Each must stop before anything is locked, paged or changed, and say
what is wrong and how to fix it: a wrong service name, a DB path typo, no backups present (the
variables point at empty dirs), a vault-encrypted Slack URL without its password. (A wrong -l is
Ansible's own "Could not match supplied host pattern".)"""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import LAB_PY, REPO, PriorState, compare_check, crash_in, last_error

sys.path.insert(0, os.path.join(REPO, 'tests', 'lab'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'lab_tests'))

import lab as labmod  # noqa: E402  (tests/lab is not a package)
from receiver import Receiver  # noqa: E402

pytestmark = pytest.mark.lab

LIVE_DB = '/opt/claude-code-production/.swarm/memory.db'
GUARD_LOCK = '/var/lib/claude-flow-runbook/guard/lock.json'
INCIDENTS = '/var/log/claude-code/incidents'
VAULT_PASSWORD = 'operator-mistake-test-password'


@pytest.fixture(scope='module')
def broken_host(tmp_path_factory):
    """One lab host of our own with a corrupt memory.db, a receiver for every notification."""
    if os.geteuid() != 0:
        pytest.skip('the lab needs root (network, mount and PID namespaces); CI runs as root')
    state_dir = tempfile.mkdtemp(prefix='cflab-mistakes-')
    proc = subprocess.run([sys.executable, LAB_PY, 'up', '--hosts', '1', '--state-dir', state_dir],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=600, check=False)
    try:
        assert proc.returncode == 0, proc.stdout
        the_lab = labmod.Lab(state_dir)
        the_lab.break_host(1, 'corrupt_db')
        with Receiver() as receiver:
            yield the_lab, receiver, tmp_path_factory.mktemp('mistakes')
    finally:
        down = subprocess.run([sys.executable, LAB_PY, 'down', '--state-dir', state_dir], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, timeout=300, check=False)
        shutil.rmtree(state_dir, ignore_errors=True)
        assert down.returncode == 0, down.stdout


def p0(broken_host, extra, vault_file=None):
    the_lab, receiver, work = broken_host
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_SSH_CONTROL_PATH_DIR=the_lab.cp_dir,
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))
    env.pop('ANSIBLE_VAULT_IDENTITY_LIST', None)   # the operator gave no vault password
    cmd = ['ansible-playbook', '-i', the_lab.inventory, os.path.join(REPO, 'playbooks', 'p0_response.yml'), '-l', 'lab1',
           '-e', 'claude_flow_slack_webhook_url=%s' % receiver.url('/slack/T0/B0/x'),
           '-e', 'claude_flow_pagerduty_routing_key=mistake', '-e',
           'claude_flow_pagerduty_events_url=%s' % receiver.url('/pagerduty'),
           '-e', 'claude_flow_reports_dir=%s' % work]
    for key, value in extra.items():
        cmd += ['-e', '%s=%s' % (key, value)]
    if vault_file:
        cmd += ['-e', '@' + vault_file]

    def run(command):
        before = PriorState(the_lab.resolve(1, LIVE_DB))
        incidents = sorted(os.listdir(the_lab.resolve(1, INCIDENTS)))
        proc = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=600, check=False)
        after = PriorState(the_lab.resolve(1, LIVE_DB))
        untouched = (before.files == after.files and the_lab.service_state(1) == 'active'
                     and not os.path.exists(the_lab.resolve(1, GUARD_LOCK))
                     and sorted(os.listdir(the_lab.resolve(1, INCIDENTS))) == incidents
                     and not receiver.received())
        return proc, untouched

    # the check-mode twin first, on the same state: no crash, nothing touched, the same refusal
    twin, twin_untouched = run(cmd + ['--check'])
    assert not crash_in(twin.stdout), crash_in(twin.stdout)
    assert twin_untouched, 'the --check run locked, paged, wrote or stopped something'
    proc, untouched = run(cmd)
    outcome = compare_check(twin.returncode != 0, last_error(twin.stdout), proc.returncode != 0,
                            last_error(proc.stdout))
    return proc, untouched, outcome


def refused(fault, run, *phrases):
    proc, untouched, check = run
    fault.checks.append(check)
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert 'Refusing to start on lab1 (nothing was locked, paged or changed)' in proc.stdout, proc.stdout[-3000:]
    for phrase in phrases:
        assert phrase in proc.stdout, (phrase, proc.stdout[-3000:])
    assert untouched, 'something was locked, paged, written or stopped before the refusal'
    fault.did('refused before the lock, named the problem and the fix: %s' % ' / '.join(phrases))
    fault.lost(0)


@pytest.mark.fault('operator input', 'Wrong service name (-e claude_flow_service_name=claude-code-prod) on a P0 host')
def test_wrong_service_name(broken_host, fault):
    refused(fault, p0(broken_host, {'claude_flow_service_name': 'claude-code-prod'}),
            'systemd unit claude-code-prod not found', 'Fix: set claude_flow_service_name')


@pytest.mark.fault('operator input', 'DB path typo (memroy.db) on a P0 host')
def test_db_path_typo(broken_host, fault):
    refused(fault, p0(broken_host, {'claude_flow_db_path': '/opt/claude-code-production/.swarm/memroy.db'}),
            'memroy.db does not exist', LIVE_DB, 'Fix: set claude_flow_db_path')


@pytest.mark.fault('operator input', 'No backups present (releases and backup dirs point where there are none)')
def test_no_backups_present(broken_host, fault):
    refused(fault, p0(broken_host, {'claude_flow_releases_dir': '/opt/no-releases-here',
                                    'claude_flow_backup_dir': '/var/backups/none-here'}),
            'no DB backup', 'claude_flow_preflight_require_backup=false', 'playbooks/backup.yml')


@pytest.mark.fault('operator input', 'Vault-encrypted Slack URL, run without the vault password')
def test_vault_password_missing(broken_host, fault):
    the_lab, receiver, work = broken_host
    password = work / 'vault-pass'
    password.write_text(VAULT_PASSWORD)
    encrypted = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), 'ansible-vault'), 'encrypt_string', '--vault-id',
         'prod@%s' % password, '--name', 'vault_claude_flow_slack_webhook_url', receiver.url('/slack/T0/B0/vaulted')],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=True).stdout
    vault_file = work / 'vault.yml'
    vault_file.write_text(encrypted)
    run = p0(broken_host, {}, vault_file=str(vault_file))
    proc = run[0]
    refused(fault, run, 'vault_claude_flow_slack_webhook_url', 'cannot be decrypted',
            '--vault-id <id>@prompt', '--ask-vault-pass')
    assert VAULT_PASSWORD not in proc.stdout
    fault.secrets(0)
