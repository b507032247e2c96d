"""Helpers for the Event-Driven Ansible tests: run the real ansible-rulebook, POST to it."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import types
import urllib.error
import urllib.request

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
RULEBOOKS = os.path.join(REPO, 'extensions', 'eda', 'rulebooks')
LAB = os.path.join(REPO, 'tests', 'lab', 'lab.py')
sys.path.insert(0, os.path.dirname(LAB))

from logged_process import LoggedProcess  # noqa: E402  (tests/lab is not a package)

COLLECTION_LINK = os.path.join(REPO, '.collections', 'ansible_collections', 'claude_flow', 'runbook')


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def tool(name):
    """A tool from the venv running the tests, else from PATH; fail naming the fix."""
    path = os.path.join(BIN, name)
    if os.path.exists(path):
        return path
    found = shutil.which(name)
    if not found:
        pytest.fail('%s not found next to %s or on PATH; install requirements-dev.txt (make venv)' % (name, sys.executable))
    return found


def tool_env(extra=None):
    """Environment for ansible tools: the repo's ansible.cfg (collections_path finds this collection)."""
    if not os.path.isdir(os.path.join(COLLECTION_LINK, 'extensions')):
        pytest.fail('%s is missing: run `make collection` so ansible finds claude_flow.runbook' % COLLECTION_LINK)
    env = dict(os.environ)
    env['ANSIBLE_CONFIG'] = os.path.join(REPO, 'ansible.cfg')
    env['PATH'] = BIN + os.pathsep + env.get('PATH', '')
    env['ANSIBLE_NOCOLOR'] = '1'
    env.update(extra or {})
    return env


def http(method, url, body=None, headers=None, timeout=10):
    """(status, parsed JSON or text) for one request; HTTP errors are answers, not exceptions."""
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode('utf-8')
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header('Content-Type', 'application/json')
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw.decode('utf-8'))
    except ValueError:
        return status, raw.decode('utf-8', 'replace')


class RulebookProcess:
    """ansible-rulebook as a child process in its own session, with its output in a file."""

    def __init__(self, args, env, log_path, cwd=REPO):
        self.args = args
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.process = None
        self.startup_seconds = None

    def start(self, health_url, timeout=90):
        started = time.monotonic()
        self.process = LoggedProcess([tool('ansible-rulebook')] + self.args, self.log_path, env=self.env, cwd=self.cwd)
        while time.monotonic() - started < timeout:
            if not self.process.alive():
                pytest.fail('ansible-rulebook exited with %s before listening:\n%s'
                            % (self.process.proc.returncode, self.output()))
            try:
                if http('GET', health_url, timeout=2)[0] == 200:
                    self.startup_seconds = time.monotonic() - started
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail('ansible-rulebook did not answer %s within %ss:\n%s' % (health_url, timeout, self.output()))

    def alive(self):
        return self.process is not None and self.process.alive()

    def output(self):
        return self.process.output() if self.process else ''

    def stop(self):
        """SIGTERM the rulebook's own process group (it and the playbooks it started), then SIGKILL."""
        if self.process is not None:
            self.process.stop()


def wait_for(predicate, timeout, interval=0.2):
    """Poll predicate() until it returns something truthy; return that, or the last value on timeout."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


@pytest.fixture(scope='session')
def eda():
    """The helpers above, as a fixture (two conftest.py files cannot both be imported as 'conftest')."""
    return types.SimpleNamespace(REPO=REPO, RULEBOOKS=RULEBOOKS, RulebookProcess=RulebookProcess, free_port=free_port,
                                 http=http, tool=tool, tool_env=tool_env, wait_for=wait_for)


class LabHosts:
    """A lab of real hosts in a state dir of its own (its own namespace names), driven through lab.py."""

    def __init__(self, state_dir):
        self.state_dir = str(state_dir)
        self.inventory_file = os.path.join(self.state_dir, 'hosts.yml')

    def lab(self, *args, timeout=120):
        # --state-dir right after the command: with exec, everything after HOST belongs to the command.
        proc = subprocess.run([sys.executable, LAB, args[0], '--state-dir', self.state_dir] + list(args[1:]),
                              capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0 and args[0] != 'exec':
            pytest.fail('lab.py %s failed (rc %d):\n%s%s' % (' '.join(args), proc.returncode, proc.stdout, proc.stderr))
        return proc

    def sh(self, host, script):
        """stdout of a shell script run inside a lab host (fails the test when it fails)."""
        proc = self.lab('exec', host, '--', 'sh', '-c', script, timeout=60)
        assert proc.returncode == 0, 'on %s `%s` failed: %s%s' % (host, script, proc.stdout, proc.stderr)
        return proc.stdout

    def inventory_dir(self, dest):
        """An inventory directory for ansible-rulebook: it copies a file -i alone, but a directory whole,
        so hosts.yml and the lab's group_vars (connection settings, vault) must sit in one small dir."""
        os.makedirs(dest)
        shutil.copy(self.inventory_file, os.path.join(dest, 'hosts.yml'))
        shutil.copytree(os.path.join(self.state_dir, 'group_vars'), os.path.join(dest, 'group_vars'))
        return dest

    def env(self):
        """What an ansible tool needs to reach these hosts: ssh sockets in the state dir, the lab vault."""
        return {'ANSIBLE_SSH_CONTROL_PATH_DIR': os.path.join(self.state_dir, 'cp'),
                'ANSIBLE_VAULT_IDENTITY_LIST': 'lab@' + os.path.join(REPO, 'tests', 'lab', 'vault-password.txt')}


@pytest.fixture
def lab_hosts(tmp_path_factory):
    """Three lab hosts lab1..lab3, always taken down again (only this lab: its own --state-dir)."""
    if os.geteuid() != 0:
        pytest.skip('the lab needs root (network, PID and mount namespaces): run the suite as root')
    # Short path: ssh control sockets live under it and a socket path is limited to 107 bytes.
    lab = LabHosts(tmp_path_factory.mktemp('lab'))
    try:
        lab.lab('up', '--hosts', '3')
        yield lab
    finally:
        lab.lab('down', timeout=180)
