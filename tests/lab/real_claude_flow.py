# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real claude-flow releases from npm, installed once per machine and reused by the lab, the tests and
the benchmarks.

  python3 tests/lab/real_claude_flow.py install 2.7.47 3.43.0   # cached; prints each install dir
  python3 tests/lab/real_claude_flow.py path 2.7.47              # the cached install, rc 1 when absent
  python3 tests/lab/real_claude_flow.py capture 3.44.0           # reference outputs of a release
  python3 tests/lab/real_claude_flow.py compare 3.44.0           # stand-in vs real release, per command
  python3 tests/lab/real_claude_flow.py lock 3.44.0              # pin a new release's dependency tree

An install is `npm install --ignore-scripts` of a pinned dependency tree (tests/lab/real-releases/
claude-flow-VERSION.package-lock.json; `lock` writes it with `npm install --save-exact`): npm reaches
only its registry, and no dependency's install script runs, because some of them download prebuilt
binaries from elsewhere (better-sqlite3, sharp's libvips). Instead the native modules the CLI needs
are built here from the sources in their npm tarballs, with npm's own node-gyp against the local Node
headers (--nodedir = the local Node prefix):
  * 2.x: the better-sqlite3 that agentic-flow resolves (ReasoningBank's `memory store`; without it
    `memory store` fails with rc 1) and hnswlib-node;
  * 3.x: the better-sqlite3 that agentdb resolves (without it `memory store` says "Data stored" and
    writes nothing: sql.js fallback).
A sharp whose native part is missing (0.32.x, libvips from its install script) becomes a stub that
throws when called: claude-flow only uses it for images, but 2.x loads it at start-up.

Cache: $XDG_CACHE_HOME/claude-flow-runbook/ (~/.cache/claude-flow-runbook/ by default, outside the
checkout so a fresh clone on the same machine reuses it; CLAUDE_FLOW_REAL_CACHE moves it), one directory per
release, Node version and platform (claude-flow-VERSION-node-vX.Y.Z-linux-x64), made in a temporary
directory and renamed into place only after a smoke test (the version line, and a memory.db the CLI
really writes). Native builds are cached by package, version and Node version, so two releases that
share a better-sqlite3 build it once. Concurrent installs of one release wait on a lock.

Every CLI call here runs with NO_COLOR=1, RUFLO_DAEMON_AUTOSTART=0 and TZ=UTC in its own process
group, which is killed when the call ends or times out (2.x training can hang for ever).
Python 3 standard library only (lab.py imports it with the system python3).
"""

import argparse
import contextlib
import difflib
import fcntl
import gzip
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LOCK_DIR = os.path.join(HERE, 'real-releases')
STANDIN = os.path.join(HERE, 'standins', 'claude-flow')
REFERENCE = os.path.join(REPO, 'tests', 'fixtures', 'claude-flow-reference')
CACHE_ENV = 'CLAUDE_FLOW_REAL_CACHE'
DEFAULT_CACHE = os.path.join(os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'), 'claude-flow-runbook')

# The releases the lab, the tests and the benchmarks use (exact versions; each has a lock file).
PINNED = ('2.7.47', '3.43.0')
# Stand-in version that replays a product line (tests/lab/standins/claude-flow VERSIONS).
STANDIN_FOR_MAJOR = {2: '2.7.47', 3: '3.43.0'}
EXACT_VERSION = re.compile(r'^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$')

# (package that requires it, native package): resolved the way Node resolves `require(native)` there.
NATIVE_MODULES = {
    # ruv-swarm's own: with it, `npx ruv-swarm --version` (2.x training) never exits, as in production;
    # without it, it fails at once and training reports "not available".
    2: (('agentic-flow', 'better-sqlite3'), ('claude-flow', 'hnswlib-node'), ('ruv-swarm', 'better-sqlite3')),
    3: (('agentdb', 'better-sqlite3'),),
}
SHARP_STUB = """'use strict';
// claude-flow test install (tests/lab/real_claude_flow.py): sharp's native part (libvips) comes from
// its install script, which downloads it and cannot run here. claude-flow only uses sharp for
// images; any use of it says so.
function unavailable() {
  throw new Error('sharp is not available in this claude-flow test install (no libvips): images cannot be processed');
}
module.exports = new Proxy(unavailable, { get: (target, name) => (name === 'then' ? undefined : unavailable) });
"""
CLI_ENV = {'NO_COLOR': '1', 'RUFLO_DAEMON_AUTOSTART': '0', 'TZ': 'UTC'}
STAMP = 'install.json'
NPM_TIMEOUT = 1800
BUILD_TIMEOUT = 1800


class RealCliError(Exception):
    """A real release cannot be installed or run; the message names the problem and the fix."""


def log(text):
    sys.stderr.write('real_claude_flow: %s\n' % text)
    sys.stderr.flush()


def check_version(version):
    if not EXACT_VERSION.match(str(version)):
        raise RealCliError('%r is not an exact claude-flow version; give one like 2.7.47 (ranges and tags such as '
                           'latest are not pinned)' % (version,))
    return str(version)


def major_of(version):
    major = int(check_version(version).split('.', 1)[0])
    if major not in NATIVE_MODULES:
        raise RealCliError('claude-flow %s is neither 2.x nor 3.x; only those product lines are known here' % version)
    return major


# ---------------------------------------------------------------------------------------- toolchain

def _tool(name):
    path = shutil.which(name)
    if path is None:
        raise RealCliError('%s is not on PATH; real claude-flow releases need Node 20+ and npm (Debian: apt-get install '
                           'nodejs npm)' % name)
    return path


def node_version():
    return subprocess.run([_tool('node'), '--version'], stdout=subprocess.PIPE, universal_newlines=True,
                          check=True).stdout.strip()


def node_prefix():
    """The Node install prefix: <prefix>/bin/node and <prefix>/include/node/node.h (node-gyp's --nodedir)."""
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(_tool('node'))))
    if not os.path.isfile(os.path.join(prefix, 'include', 'node', 'node.h')):
        raise RealCliError('no Node headers at %s/include/node; native modules are built against them (Debian: '
                           'apt-get install libnode-dev, or use a Node install that ships include/)' % prefix)
    return prefix


def node_gyp():
    """npm's bundled node-gyp (no download of node-gyp itself)."""
    npm_dir = os.path.dirname(os.path.dirname(os.path.realpath(_tool('npm'))))
    path = os.path.join(npm_dir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
    if not os.path.isfile(path):
        raise RealCliError('npm at %s has no bundled node-gyp (%s); install a complete npm' % (npm_dir, path))
    for tool in ('make', 'g++', 'python3'):
        if shutil.which(tool) is None:
            raise RealCliError('%s is missing; native modules are compiled here (Debian: apt-get install '
                               'build-essential python3)' % tool)
    return path


def platform_key():
    return '%s-%s' % (sys.platform, os.uname().machine.replace('x86_64', 'x64').replace('aarch64', 'arm64'))


def cache_root():
    return os.path.abspath(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def cache_key(version):
    """What an install depends on: the release, the Node version (native ABI) and the platform."""
    return 'claude-flow-%s-node-%s-%s' % (check_version(version), node_version(), platform_key())


def lock_file(version):
    return os.path.join(LOCK_DIR, 'claude-flow-%s.package-lock.json' % check_version(version))


def package_json(version):
    return {'name': 'claude-flow-real-%s' % version, 'private': True, 'dependencies': {'claude-flow': version}}


@contextlib.contextmanager
def _locked(root):
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, '.install.lock'), 'a') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------- running

def run_group(argv, cwd, timeout, env=None):
    """Run argv in its own process group; the group is killed when the call ends or times out.
    Returns (stdout bytes, stderr bytes, rc or None on timeout, seconds)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        stdout, stderr = proc.communicate()
        rc = None
    _kill_group(proc.pid)   # a child left behind in the group (none expected) goes too
    return stdout, stderr, rc, time.monotonic() - started


def _kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def cli_env(extra=None):
    env = dict(os.environ)
    env.pop('FORCE_COLOR', None)
    env.update(CLI_ENV)
    env.update(extra or {})
    return env


def run_cli(app_dir, args, timeout=120, env=None):
    """The app's node_modules/.bin/claude-flow with cwd = app dir, like the collection calls it."""
    return run_group([os.path.join(app_dir, 'node_modules', '.bin', 'claude-flow')] + list(args), app_dir, timeout,
                     cli_env(env))


def link_app(install_dir, app_dir, app_version='1.0.0'):
    """Make app_dir a deployment of the install: node_modules -> the cached tree, and a package.json
    that depends on the release (as `npm install claude-flow@VERSION` leaves it)."""
    stamp = read_stamp(install_dir)
    os.makedirs(app_dir, exist_ok=True)
    link = os.path.join(app_dir, 'node_modules')
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(os.path.join(install_dir, 'node_modules'), link)
    with open(os.path.join(app_dir, 'package.json'), 'w') as handle:
        json.dump({'name': 'claude-code-production', 'version': app_version, 'private': True,
                   'dependencies': {'claude-flow': stamp['version']}}, handle, indent=2)
        handle.write('\n')
    return app_dir


# ---------------------------------------------------------------------------------------- install

def read_stamp(install_dir):
    try:
        with open(os.path.join(install_dir, STAMP)) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        raise RealCliError('%s is not a finished install; run `python3 tests/lab/real_claude_flow.py install VERSION`'
                           % install_dir)


def installed(version):
    """The cached install dir of a release for this Node, or None."""
    path = os.path.join(cache_root(), cache_key(version))
    return path if os.path.isfile(os.path.join(path, STAMP)) else None


def require(version):
    """The cached install dir; RealCliError naming the install command when absent."""
    path = installed(version)
    if path is None:
        raise RealCliError('claude-flow %s is not installed for Node %s; run `make real-cli` (or python3 '
                           'tests/lab/real_claude_flow.py install %s) once on this machine'
                           % (version, node_version(), version))
    return path


def _npm(args, cwd):
    env = dict(os.environ, npm_config_ignore_scripts='true', npm_config_update_notifier='false',
               npm_config_fund='false', npm_config_audit='false')
    proc = subprocess.run([_tool('npm')] + args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=NPM_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise RealCliError('npm %s failed (rc %d) in %s; npm needs its registry (npm config get registry):\n%s'
                           % (' '.join(args), proc.returncode, cwd, proc.stdout[-3000:]))
    return proc.stdout


def _write_json(path, data):
    with open(path, 'w') as handle:
        json.dump(data, handle, indent=2)
        handle.write('\n')


def resolve_package(start, name):
    """Directory of package `name` as Node's require() finds it from the package dir `start`."""
    directory = start
    while True:
        candidate = os.path.join(directory, 'node_modules', name)
        if os.path.isfile(os.path.join(candidate, 'package.json')):
            return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _package_version(package_dir):
    with open(os.path.join(package_dir, 'package.json')) as handle:
        return json.load(handle)['version']


def build_native(package_dir, root):
    """build/Release/*.node of one native package: from the native cache, else compiled with node-gyp."""
    name = os.path.basename(package_dir)
    key = '%s-%s-node-%s-%s' % (name, _package_version(package_dir), node_version(), platform_key())
    cached = os.path.join(root, 'native', key)
    release = os.path.join(package_dir, 'build', 'Release')
    if not os.path.isdir(cached):
        log('building %s (%s) with node-gyp against %s/include/node' % (name, key, node_prefix()))
        started = time.monotonic()
        proc = subprocess.run(['node', node_gyp(), 'rebuild', '--release', '--nodedir=%s' % node_prefix(), '--jobs=2'],
                              cwd=package_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=BUILD_TIMEOUT, check=False)
        if proc.returncode != 0:
            raise RealCliError('node-gyp could not build %s in %s (rc %d):\n%s'
                               % (name, package_dir, proc.returncode, proc.stdout[-3000:]))
        binaries = [item for item in os.listdir(release) if item.endswith('.node')]
        if not binaries:
            raise RealCliError('node-gyp built no .node file for %s in %s' % (name, release))
        tmp = cached + '.tmp-%d' % os.getpid()
        os.makedirs(tmp)
        for item in binaries:
            shutil.copy2(os.path.join(release, item), tmp)
        os.replace(tmp, cached)
        log('built %s in %.0f s' % (name, time.monotonic() - started))
        return {'package': name, 'key': key, 'built_s': round(time.monotonic() - started, 1)}
    os.makedirs(release, exist_ok=True)
    for item in os.listdir(cached):
        shutil.copy2(os.path.join(cached, item), os.path.join(release, item))
    return {'package': name, 'key': key, 'built_s': 0}


def _stub_sharp(node_modules):
    """sharp copies whose require() fails (no native part) become stubs; returns their dirs."""
    stubbed = []
    for directory, subdirs, _files in os.walk(node_modules):
        if os.path.basename(directory) == 'sharp' and os.path.isfile(os.path.join(directory, 'package.json')):
            subdirs[:] = []
            probe = subprocess.run(['node', '-e', 'require(process.argv[1])', directory], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, check=False)
            if probe.returncode == 0:
                continue
            with open(os.path.join(directory, 'package.json')) as handle:
                main = json.load(handle).get('main') or 'index.js'
            main_path = os.path.join(directory, main if main.endswith('.js') else main + '.js')
            with open(main_path, 'w') as handle:
                handle.write(SHARP_STUB)
            stubbed.append(os.path.relpath(directory, node_modules))
        elif os.path.basename(directory) in ('.bin', 'build', 'src', 'dist', 'deps'):
            subdirs[:] = []
    return stubbed


def smoke_test(install_dir, version):
    """The release answers --version and really writes a memory.db (natives loaded)."""
    work = tempfile.mkdtemp(prefix='cf-smoke-', dir=install_dir)
    try:
        app = os.path.join(work, 'app')
        os.makedirs(app)
        os.symlink(os.path.join(install_dir, 'node_modules'), os.path.join(app, 'node_modules'))
        stdout, stderr, rc, _seconds = run_cli(app, ['--version'], timeout=120)
        first = stdout.decode('utf-8', 'replace').strip().splitlines()[0] if stdout.strip() else ''
        if rc != 0 or version not in first:
            raise RealCliError('claude-flow %s --version printed %r (rc %s, stderr %r)'
                               % (version, stdout[:200], rc, stderr[-500:]))
        tables = make_memory_db(app, version)
        if 'patterns' not in tables:
            raise RealCliError('claude-flow %s wrote no patterns table to .swarm/memory.db (tables: %s): its SQLite '
                               'binding did not load' % (version, ', '.join(tables) or 'none'))
        return {'version_line': first, 'memory_db_tables': len(tables)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def make_memory_db(app_dir, version, key='lab-seed', value='created by the real CLI'):
    """A .swarm/memory.db written by the release itself: 2.x `memory store`; 3.x `memory init` then
    `memory store`. The CLI exits without checkpointing: the WAL is checkpointed into the file (the
    first reader would do the same). Returns the DB's table names."""
    if major_of(version) == 2:
        steps = [['memory', 'store', key, value]]
    else:
        steps = [['memory', 'init'], ['memory', 'store', '--key', key, '--value', value]]
    for step in steps:
        stdout, stderr, rc, _seconds = run_cli(app_dir, step, timeout=300)
        if rc != 0:
            raise RealCliError('claude-flow %s %s failed in %s (rc %s):\n%s%s'
                               % (version, ' '.join(step), app_dir, rc, stdout.decode('utf-8', 'replace')[-1500:],
                                  stderr.decode('utf-8', 'replace')[-1500:]))
    db = os.path.join(app_dir, '.swarm', 'memory.db')
    if not os.path.isfile(db):
        return []
    conn = sqlite3.connect(db)
    try:
        conn.execute('PRAGMA wal_checkpoint(TRUNCATE)')
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    finally:
        conn.close()
    return tables


def install(version, force=False):
    """The cached install dir of `version` (exact), made when absent. Returns its stamp (a dict)."""
    major = major_of(version)
    root = cache_root()
    with _locked(root):
        target = os.path.join(root, cache_key(version))
        if os.path.isfile(os.path.join(target, STAMP)) and not force:
            stamp = read_stamp(target)
            stamp['cached'] = True
            return stamp
        if not os.path.isfile(lock_file(version)):
            raise RealCliError('no pinned dependency tree for claude-flow %s (%s); make one first with '
                               '`python3 tests/lab/real_claude_flow.py lock %s` and commit it'
                               % (version, os.path.relpath(lock_file(version), REPO), version))
        started = time.monotonic()
        work = target + '.tmp-%d' % os.getpid()
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        try:
            _write_json(os.path.join(work, 'package.json'), package_json(version))
            shutil.copyfile(lock_file(version), os.path.join(work, 'package-lock.json'))
            # `npm install` over the lock file installs exactly the locked tree; `npm ci` would refuse it,
            # because ruv-swarm asks for a `worker_threads` package the registry does not have (Node's own).
            log('npm install claude-flow@%s from its lock file (--ignore-scripts) into %s' % (version, work))
            _npm(['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'],
                 work)
            npm_s = time.monotonic() - started
            node_modules = os.path.join(work, 'node_modules')
            cli_dir = resolve_package(work, 'claude-flow')
            if cli_dir is None or _package_version(cli_dir) != version:
                raise RealCliError('npm ci did not install claude-flow %s in %s' % (version, work))
            natives = []
            for parent, native in NATIVE_MODULES[major]:
                parent_dir = cli_dir if parent == 'claude-flow' else resolve_package(cli_dir, parent)
                native_dir = resolve_package(parent_dir, native) if parent_dir else None
                if native_dir is None:
                    raise RealCliError('claude-flow %s: %s does not resolve %s; the dependency tree changed, update '
                                       'NATIVE_MODULES in %s' % (version, parent, native, __file__))
                natives.append(build_native(native_dir, root))
            stubs = _stub_sharp(node_modules)
            smoke = smoke_test(work, version)
            stamp = {'version': version, 'node': node_version(), 'platform': platform_key(), 'key': cache_key(version),
                     'natives': natives, 'sharp_stubs': stubs, 'smoke': smoke, 'npm_s': round(npm_s, 1),
                     'total_s': round(time.monotonic() - started, 1), 'installed_at': time.strftime(
                         '%Y-%m-%dT%H:%M:%SZ', time.gmtime())}
            _write_json(os.path.join(work, STAMP), stamp)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(work, target)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        stamp['cached'] = False
        return stamp


def lock(version):
    """Pin a release's dependency tree: npm install --save-exact, lock file kept in tests/lab/real-releases."""
    check_version(version)
    work = tempfile.mkdtemp(prefix='cf-lock-')
    try:
        _write_json(os.path.join(work, 'package.json'), package_json(version))
        _npm(['install', '--ignore-scripts', '--save-exact', '--no-audit', '--no-fund', '--package-lock-only',
              '--loglevel=error', 'claude-flow@%s' % version], work)
        with open(os.path.join(work, 'package.json')) as handle:
            wanted = json.load(handle)['dependencies']['claude-flow']
        if wanted != version:
            raise RealCliError('npm pinned claude-flow %s, not %s' % (wanted, version))
        os.makedirs(LOCK_DIR, exist_ok=True)
        shutil.copyfile(os.path.join(work, 'package-lock.json'), lock_file(version))
        return lock_file(version)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------------------- captures

def _state_history(app):
    os.makedirs(os.path.join(app, '.swarm'), exist_ok=True)
    shutil.copyfile(os.path.join(REFERENCE, 'state__history.json'),
                    os.path.join(app, '.swarm', 'verification-memory.json'))


def _state_trained(app, run):
    """3.x `trained`: memory init, memory store, neural train --epochs 2 (the 06th step is captured)."""
    run(['memory', 'init'])
    run(['memory', 'store', '--key', 'seed', '--value', 'reference'])


# Every command the stand-in replays: (name, state, args). The names are the captures'
# (v<VERSION>__<name>); states: None = empty app dir, 'history' = state__history.json, 'corrupt' = a
# state file that is not JSON, 'null_score' = the history plus an entry without a score, 'trained' = a
# 3.x project after `neural train` ('trained-before': just before it).
CASES = {
    2: (
        ('version', None, ['--version']),
        ('truth_json__nostate', None, ['truth', '--json']),
        ('truth_json__history', 'history', ['truth', '--json']),
        ('truth_json__corrupt', 'corrupt', ['truth', '--json']),
        ('truth_json__null_score', 'null_score', ['truth', '--json']),
        ('truth_report__history', 'history', ['truth', '--report']),
        ('truth_report__null_score', 'null_score', ['truth', '--report']),
        ('truth_json_agent_nosuch__history', 'history', ['truth', '--json', '--agent', 'nosuch']),
        ('truth_agent_coder__history', 'history', ['truth', '--agent', 'coder']),
        ('truth_threshold__history', 'history', ['truth', '--threshold', '0.9']),
        ('verify_status__history', 'history', ['verify', 'status']),
        ('verify_truth__history', 'history', ['verify', 'truth']),
        ('verify_init_moderate', None, ['verify', 'init', 'moderate']),
        ('verify_quarantine_coder__history', 'history', ['verify', 'quarantine', 'coder']),
        ('neural_status', None, ['neural', 'status']),
        ('neural_patterns', None, ['neural', 'patterns']),
        # `npx ruv-swarm --version` never exits: both are killed after HANG_SECONDS
        ('training_neural_train__hang', 'history', ['training', 'neural-train', '--data', 'recent', '--epochs', '1']),
    ),
    3: (
        ('version', None, ['--version']),
        ('truth_json', None, ['truth', '--json']),
        ('training_neural_train', None, ['training', 'neural-train', '--data', 'recent']),
        ('verify_status__offline_autostart0', None, ['verify', 'status']),
        ('dbbuild_06_neural_train', 'trained-before', ['neural', 'train', '--epochs', '2']),
        ('neural_status__trained', 'trained', ['neural', 'status']),
        ('neural_patterns__trained', 'trained', ['neural', 'patterns']),
        ('neural_patterns_rebuild_cache__trained', 'trained', ['neural', 'patterns', '--rebuild-cache']),
    ),
}
HANG_SECONDS = 25
CASE_TIMEOUT = 120
NULL_SCORE_ENTRY = {'taskId': 'task-108', 'agentType': 'tester', 'passed': False, 'threshold': 0.85,
                    'timestamp': '2026-11-28T05:47:26.140Z'}


def _prepare(app, state, run):
    if state in ('history', 'null_score'):
        _state_history(app)
    if state == 'null_score':
        path = os.path.join(app, '.swarm', 'verification-memory.json')
        with open(path) as handle:
            data = json.load(handle)
        data['history'].append(NULL_SCORE_ENTRY)
        _write_json(path, data)
    elif state == 'corrupt':
        os.makedirs(os.path.join(app, '.swarm'), exist_ok=True)
        with open(os.path.join(app, '.swarm', 'verification-memory.json'), 'w') as handle:
            handle.write('{"scores": [], "history": [ {"taskId": "t1", "agentType": "co')
    elif state in ('trained-before', 'trained'):
        _state_trained(app, run)
        if state == 'trained':
            run(['neural', 'train', '--epochs', '2'])


def capture_real(version, work, only=None):
    """{case name: (stdout, stderr, rc, seconds, app dir)} of the real release, each case in a fresh app dir."""
    install_dir = require(version)
    results = {}
    for name, state, args in CASES[major_of(version)]:
        if only and name not in only:
            continue
        app = link_app(install_dir, os.path.join(work, 'real-' + name))

        def setup(step, app=app):
            out, err, rc, _seconds = run_cli(app, step, timeout=300)
            if rc != 0:
                raise RealCliError('setting up %s: claude-flow %s %s failed (rc %s): %s'
                                   % (name, version, ' '.join(step), rc, (out + err).decode('utf-8', 'replace')[-800:]))
        _prepare(app, state, setup)
        stdout, stderr, rc, seconds = run_cli(app, args, timeout=HANG_SECONDS if name.endswith('__hang') else
                                              CASE_TIMEOUT)
        results[name] = (stdout, stderr, rc, seconds, app)
    return results


def capture_standin(major, work, only=None, standin=STANDIN):
    """The stand-in's answers to the same cases, in the same kind of app dir."""
    results = {}
    for name, state, args in CASES[major]:
        if only and name not in only:
            continue
        app = os.path.join(work, 'standin-' + name)
        os.makedirs(os.path.join(app, 'node_modules', '.bin'))
        shutil.copy2(standin, os.path.join(app, 'node_modules', '.bin', 'claude-flow'))
        if state in ('trained-before', 'trained'):
            os.makedirs(os.path.join(app, '.swarm'))
            open(os.path.join(app, '.swarm', 'memory.db'), 'wb').close()
        else:
            _prepare(app, state, None)
        stdout, stderr, rc, seconds = run_cli(app, args, env={'CLAUDE_FLOW_STANDIN_VERSION': STANDIN_FOR_MAJOR[major]},
                                              timeout=HANG_SECONDS if name.endswith('__hang') else CASE_TIMEOUT)
        results[name] = (stdout, stderr, rc, seconds, app)
    return results


# What legitimately differs between two runs of the same command on the same state.
_TIMESTAMP = re.compile(rb'\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z')
# A run of spinner frames ("... Checking neural systems...", then blanks to erase them), each after a
# carriage return or a newline: how many are drawn depends on timing.
_SPINNER = re.compile(rb'(?:[\r\n]+(?:[.:]{3} [^\r\n]*?\.\.\.| +(?=[\r\n])))+[\r\n]+')
# A duration in a table cell takes the cell's padding with it: the cell keeps its width, the value does not.
_DURATIONS = re.compile(rb'\b\d+(?:\.\d+)?(?:ms|s|\xce\xbcs)\b(?: *(?= \|))?')
_MS_IDS = re.compile(rb'(step_|_|entry_)1\d{12}')
# Training results: 3.x `neural train` reports a loss that differs in the last digit from run to run.
_TRAINING_FIGURES = re.compile(rb'(\| Final Loss +\| )\S+')


def normalise(data, app_dir, install_dir=None, version=None):
    """Bytes with what varies from run to run masked: timestamps, the project and install paths, spinner
    frames, durations, millisecond ids and training figures."""
    text = data
    for path, mark in ((install_dir, b'<install>'), (app_dir, b'<project>'),
                       ('/opt/claude-flow-%s' % version if version else None, b'<install>')):
        if path:
            raw = os.fsencode(path)
            text = text.replace(raw, mark).replace(os.fsencode(os.path.realpath(path)), mark)
            # 3.x cuts long table cells at 29 characters: a cut path is masked as a whole
            text = re.sub(re.escape(raw[:14]) + rb'[^ |\n]*\.\.\.', mark + b'...', text)
    text = _SPINNER.sub(b'\n<spinner>\n', text)
    text = _TIMESTAMP.sub(b'<timestamp>', text)
    text = _DURATIONS.sub(b'<duration>', text)
    text = _MS_IDS.sub(lambda match: match.group(1) + b'<ms>', text)
    text = _TRAINING_FIGURES.sub(lambda match: match.group(1) + b'<figure>', text)
    return text


def compare(version, work=None, only=None, standin=STANDIN):
    """Stand-in vs real release for every case the stand-in replays: [(case, same, diff text)]."""
    major = major_of(version)
    own = work is None
    work = work or tempfile.mkdtemp(prefix='cf-compare-')
    try:
        real = capture_real(version, work, only)
        replayed = capture_standin(major, work, only, standin)
        install_dir = require(version)
        rows = []
        for name in real:
            diffs = []
            for index, stream in enumerate(('stdout', 'stderr', 'rc')):
                if stream == 'rc':
                    ours, theirs = [b'%s\n' % str(result[name][2]).encode() for result in (replayed, real)]
                else:
                    ours = normalise(replayed[name][index], replayed[name][4], None, STANDIN_FOR_MAJOR[major])
                    theirs = normalise(real[name][index], real[name][4], install_dir, version)
                if ours != theirs:
                    diffs += difflib.unified_diff(
                        ours.decode('utf-8', 'replace').splitlines(True), theirs.decode('utf-8', 'replace').splitlines(True),
                        'stand-in %s %s' % (name, stream), 'claude-flow %s %s' % (version, stream))
            rows.append((name, not diffs, ''.join(diffs)))
        return rows
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


def memory_schema(db):
    """`sqlite3 DB .schema`, as the existing captures were made (Python's sqlite_master without the CLI)."""
    if shutil.which('sqlite3'):
        return subprocess.run(['sqlite3', '-readonly', db, '.schema'], stdout=subprocess.PIPE, universal_newlines=True,
                              check=True).stdout
    conn = sqlite3.connect(db)
    try:
        return ''.join('%s;\n' % row[0] for row in conn.execute(
            'SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid'))
    finally:
        conn.close()


def write_capture(version, out_dir=REFERENCE):
    """v<VERSION>__<case>.{stdout,stderr,rc} and v<VERSION>-memory.schema.sql, named like the existing
    captures (a capture with carriage returns is stored gzipped, as tests/unit/reference_outputs.py reads it)."""
    major = major_of(version)
    work = tempfile.mkdtemp(prefix='cf-capture-')
    written = []
    try:
        for name, (stdout, stderr, rc, _seconds, app) in capture_real(version, work).items():
            rc_text = b'%d\n' % rc if rc is not None else b'killed after %d s\n' % HANG_SECONDS
            for stream, data in (('stdout', stdout), ('stderr', stderr), ('rc', rc_text)):
                path = os.path.join(out_dir, 'v%s__%s.%s' % (version, name, stream))
                for old in (path, path + '.gz'):
                    if os.path.exists(old):
                        os.unlink(old)
                if b'\r' in data:
                    path += '.gz'
                    with gzip.open(path, 'wb') as handle:
                        handle.write(data)
                else:
                    with open(path, 'wb') as handle:
                        handle.write(data)
                written.append(path)
        app = link_app(require(version), os.path.join(work, 'schema'))
        make_memory_db(app, version)
        if major == 3:
            run_cli(app, ['neural', 'train', '--epochs', '2'], timeout=300)
        schema = memory_schema(os.path.join(app, '.swarm', 'memory.db'))
        path = os.path.join(out_dir, 'v%s-memory.schema.sql' % version)
        with open(path, 'w') as handle:
            handle.write(schema)
        written.append(path)
        return written
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------------------- CLI

def main(argv=None):
    parser = argparse.ArgumentParser(description='Real claude-flow releases for the lab, the tests and the benchmarks.')
    sub = parser.add_subparsers(dest='command', required=True)
    for name, text in (('install', 'install (cached) and print the install dir'),
                       ('path', 'print the cached install dir; rc 1 when not installed'),
                       ('lock', 'pin a release: write tests/lab/real-releases/claude-flow-VERSION.package-lock.json'),
                       ('capture', 'capture reference outputs into tests/fixtures/claude-flow-reference'),
                       ('compare', 'run every command the stand-in replays on the stand-in and the release; diff')):
        command = sub.add_parser(name, help=text)
        command.add_argument('versions', nargs='*' if name in ('install', 'path') else '+', metavar='VERSION')
        if name == 'install':
            command.add_argument('--force', action='store_true', help='reinstall even when cached')
        if name == 'capture':
            command.add_argument('--out', default=REFERENCE)
    args = parser.parse_args(argv)
    versions = args.versions or list(PINNED)
    failed = False
    try:
        for version in versions:
            if args.command == 'install':
                stamp = install(version, force=args.force)
                log('claude-flow %s: %s (%s)' % (version, 'cached' if stamp['cached'] else 'installed in %.0f s'
                                                 % stamp['total_s'], stamp['key']))
                print(os.path.join(cache_root(), stamp['key']))
            elif args.command == 'path':
                path = installed(version)
                if path is None:
                    log('claude-flow %s is not installed for Node %s' % (version, node_version()))
                    failed = True
                else:
                    print(path)
            elif args.command == 'lock':
                print(lock(version))
            elif args.command == 'capture':
                install(version)
                for path in write_capture(version, args.out):
                    print(os.path.relpath(path, REPO))
            elif args.command == 'compare':
                install(version)
                for name, same, diff in compare(version):
                    print('%-36s %s' % (name, 'same as the stand-in' if same else 'DIFFERS from the stand-in'))
                    if not same:
                        failed = True
                        sys.stdout.write(diff)
    except RealCliError as exc:
        sys.stderr.write('real_claude_flow: error: %s\n' % exc)
        return 1
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
