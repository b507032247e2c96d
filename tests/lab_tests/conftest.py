# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `lab` fixture: real lab hosts (tests/lab/lab.py) for one test module.

A module asks for `lab` and gets a tests/lab/lab.py Lab object for the default lab (.lab at the
repository root, so inventories/lab/hosts.yml works as well as lab.inventory). The lab comes up
before the module's first test and goes down after its last; `LAB_HOSTS = N` in the module sets the
fleet size (default 5, the hosts of inventories/lab/hosts.yml). A default lab still up from a crashed
run (or started by hand) is taken down first. `lab_env` is the environment for ansible commands
against it. Runs as root only; without root the module is skipped, saying so.
"""

import os
import subprocess
import sys
import types

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LAB_PY = os.path.join(REPO, 'tests', 'lab', 'lab.py')
sys.path.insert(0, os.path.dirname(LAB_PY))

import lab as labmod  # noqa: E402  (tests/lab is not a package)

DEFAULT_HOSTS = 5
LOCK_WAIT_S = 1800
# A lab in another state dir gets namespace names of its own: set this when another checkout on the
# same machine runs its default lab (whose names are fixed).
STATE_DIR = os.environ.get('CLAUDE_FLOW_LAB_DIR') or None


def pytest_configure(config):
    config.addinivalue_line('markers', 'lab: needs real lab hosts (tests/lab/lab.py, root)')


def lab_cli(*args, timeout=300):
    """Run tests/lab/lab.py the way a user does; fail the test with its output when it fails."""
    args = list(args) + (['--state-dir', STATE_DIR] if STATE_DIR else [])
    proc = subprocess.run([sys.executable, LAB_PY] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        pytest.fail('lab.py %s failed (rc %d):\n%s' % (' '.join(args), proc.returncode, proc.stdout))
    return proc.stdout


def lab_environment(state_dir):
    env = dict(os.environ)
    env['ANSIBLE_CONFIG'] = os.path.join(REPO, 'ansible.cfg')
    env['ANSIBLE_SSH_CONTROL_PATH_DIR'] = os.path.join(state_dir, 'cp')
    env['ANSIBLE_NOCOLOR'] = '1'
    venv_bin = os.path.dirname(sys.executable)
    env['PATH'] = venv_bin + os.pathsep + env.get('PATH', '')
    return env


@pytest.fixture(scope='module')
def lab(request):
    if os.geteuid() != 0:
        pytest.skip('the lab needs root (network, mount and PID namespaces); CI runs as root')
    hosts = getattr(request.module, 'LAB_HOSTS', DEFAULT_HOSTS)
    # One test session at a time: another one waits here, and `lab.py up/down` from outside refuse
    # to touch the lab while this module uses it.
    with labmod.Lab(STATE_DIR).hold(timeout=LOCK_WAIT_S):
        # No other test session uses it now: a lab still up was left by a crashed run (or by hand).
        lab_cli('down')
        lab_cli('up', '--hosts', str(hosts))
        try:
            yield labmod.Lab(STATE_DIR)
        finally:
            lab_cli('down')
            left = labmod.Lab(STATE_DIR).leftovers()
            assert not any(left.values()), 'lab down left things behind: %r' % left


@pytest.fixture(scope='module')
def lab_env(lab):
    return lab_environment(lab.state_dir)


@pytest.fixture(scope='session')
def lab_tools():
    """lab.py as a module, its CLI and the ansible environment, for tests that run a lab of their own
    (a test module cannot import this conftest by name: other test dirs have one too)."""
    return types.SimpleNamespace(labmod=labmod, cli=lab_cli, environment=lab_environment, repo=REPO)
