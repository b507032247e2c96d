# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The real-release tier: the collection's modules against the real claude-flow 2.7.47 and 3.43.0 from
npm (tests/lab/real_claude_flow.py; `make real-cli` installs them once per machine, this tier installs
them when the cache is cold), compared with what the real CLI and sqlite3 print for the same state.

`app(version, state)` makes an app dir that deploys a release the way npm does (node_modules of the
cached install, package.json) in a state the real CLI made or reads. The lab tests run a lab of their
own (state dir .cache/lab-real-cli), so they never meet the default lab of the lab phase.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(REPO, '.collections')
sys.path.insert(0, COLLECTIONS)
sys.path.insert(0, os.path.join(REPO, 'tests', 'lab'))

import real_claude_flow as real  # noqa: E402  (tests/lab is not a package)
from module_runner import run_module  # noqa: E402

VERSIONS = real.PINNED
REFERENCE = real.REFERENCE


def pytest_configure(config):
    config.addinivalue_line('markers', 'lab: needs real lab hosts (tests/lab/lab.py, root)')


@pytest.fixture(scope='session')
def installs():
    """{version: install dir}; installs a release whose cache is cold (minutes, once per machine)."""
    found = {}
    for version in VERSIONS:
        try:
            found[version] = os.path.join(real.cache_root(), real.install(version)['key'])
        except real.RealCliError as exc:
            pytest.fail(str(exc))
    return found


class App(object):
    """An app dir running a real release."""

    def __init__(self, path, version, install):
        self.path, self.version, self.install = path, version, install
        self.major = real.major_of(version)
        self.db = os.path.join(path, '.swarm', 'memory.db')
        self.state_file = os.path.join(path, '.swarm', 'verification-memory.json')

    def cli(self, *args, timeout=120):
        """(stdout text, stderr text, rc) of the real CLI here."""
        stdout, stderr, rc, _seconds = real.run_cli(self.path, list(args), timeout=timeout)
        return stdout.decode('utf-8', 'replace'), stderr.decode('utf-8', 'replace'), rc

    def sqlite3(self, sql):
        """What the sqlite3 CLI prints for sql on the app's memory.db (read-only)."""
        proc = subprocess.run(['sqlite3', '-readonly', '-batch', self.db, sql], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, check=False, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def module(self, name, check_mode=False, env=None, **args):
        args.setdefault('app_dir', self.path)
        return run_module(name, args, check_mode=check_mode, env=env, timeout=300)

    def snapshot(self):
        """Every file under the app dir (not into node_modules) with its mtime and bytes, and every directory.
        SQLite's -wal/-shm are left out: any reader of a WAL database (the service, sqlite3 -readonly, a
        read-only module) creates them, and they hold no data the database did not have."""
        seen = {}
        for directory, subdirs, files in os.walk(self.path):
            subdirs[:] = [d for d in subdirs if not (directory == self.path and d == 'node_modules')]
            seen.update((os.path.relpath(os.path.join(directory, name), self.path), 'dir') for name in subdirs)
            for name in files:
                if name.endswith(('-wal', '-shm')):
                    continue
                full = os.path.join(directory, name)
                with open(full, 'rb') as handle:
                    seen[os.path.relpath(full, self.path)] = (os.lstat(full).st_mtime_ns, handle.read())
        return seen


@pytest.fixture
def app(installs, tmp_path):
    """app(version, state=None): state 'history' (the captured 7-entry verification state), 'cli' (a
    memory.db made by the real CLI, and on 2.x the state the real CLI writes itself)."""
    def make(version, state=None):
        path = real.link_app(installs[version], str(tmp_path / ('app-%s-%s' % (version, state))))
        made = App(path, version, installs[version])
        if state in ('history', 'cli+history'):
            os.makedirs(os.path.dirname(made.state_file), exist_ok=True)
            shutil.copyfile(os.path.join(REFERENCE, 'state__history.json'), made.state_file)
        if state in ('cli', 'cli+history'):
            real.make_memory_db(path, version)
            if made.major == 2 and state == 'cli':
                stdout, stderr, rc = made.cli('verify', 'verify', 'task-1', '--agent', 'reviewer')
                assert rc == 0, stdout + stderr
        return made
    return make


def truth_json(app):
    """The real 2.x `truth --json`, parsed."""
    stdout, stderr, rc = app.cli('truth', '--json')
    assert rc == 0, stderr
    return json.loads(stdout)
