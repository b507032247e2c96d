"""The collection as a user gets it: built, installed into an empty collections path, its playbooks
started by name (ansible-playbook claude_flow.runbook.<playbook>), which needs identifier names."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
PLAYBOOKS = ['p0_response', 'p1_response', 'p2_response', 'p3_response', 'triage', 'maintenance', 'backup',
             'escalation_tick']


def run(argv, cwd, env):
    proc = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=300, check=False)
    return proc.returncode, proc.stdout


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """(cwd, env) for ansible commands that see only the installed collection: an empty ansible.cfg, a
    collections path holding nothing but the built tarball's install, and no checkout around."""
    work = tmp_path_factory.mktemp('installed')
    env = dict(os.environ, ANSIBLE_CONFIG=str(work / 'ansible.cfg'), ANSIBLE_COLLECTIONS_PATH=str(work / 'collections'),
               ANSIBLE_NOCOLOR='1', HOME=str(work))
    (work / 'ansible.cfg').write_text('[defaults]\n')
    rc, out = run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', '--output-path', str(work), REPO],
                  str(work), env)
    assert rc == 0, out
    tarball = [name for name in os.listdir(str(work)) if name.endswith('.tar.gz')]
    assert len(tarball) == 1, out
    rc, out = run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', '-p', str(work / 'collections'),
                   str(work / tarball[0])], str(work), env)
    assert rc == 0, out
    return str(work), env


@pytest.mark.parametrize('name', PLAYBOOKS)
def test_playbook_runs_by_name_from_the_installed_collection(installed, name):
    cwd, env = installed
    rc, out = run([os.path.join(BIN, 'ansible-playbook'), '-i', 'localhost,', 'claude_flow.runbook.' + name,
                   '--syntax-check'], cwd, env)
    assert rc == 0, out
    assert 'ansible_collections/claude_flow/runbook/playbooks/%s.yml' % name in out, out


def test_the_response_role_and_plan_filter_are_installed(installed):
    cwd, env = installed
    rc, out = run([os.path.join(BIN, 'ansible-doc'), '-t', 'role', 'claude_flow.runbook.response'], cwd, env)
    assert rc == 0 and 'response_steps' in out, out
    rc, out = run([os.path.join(BIN, 'ansible-doc'), '-t', 'filter', 'claude_flow.runbook.remediation_plan'], cwd, env)
    assert rc == 0 and 'extra_reasons' in out, out


def test_a_dashed_playbook_name_cannot_be_started_by_name(installed):
    """Why the procedures are p0_response.yml ...: collection playbook names must be identifiers."""
    cwd, env = installed
    rc, out = run([os.path.join(BIN, 'ansible-playbook'), '-i', 'localhost,', 'claude_flow.runbook.p0-response',
                   '--syntax-check'], cwd, env)
    assert rc != 0 and 'could not be found' in out, out
