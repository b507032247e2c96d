# Copyright: (c) 2026, claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab stand-ins, run as real processes: the claude-flow CLI against the captured reference
outputs (byte for byte), and the production app's /health against real SQLite files and ports."""

import calendar
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from process_scan import processes_in_group
from reference_outputs import read_bytes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STANDIN = os.path.join(REPO, 'tests', 'lab', 'standins', 'claude-flow')
APP = os.path.join(REPO, 'tests', 'lab', 'standins', 'app.py')
REFERENCE = os.path.join(REPO, 'tests', 'fixtures', 'claude-flow-reference')
REFERENCE_PROJECT = '/srv/proj/v3.43.0-db'  # cwd of the 3.x captures
TIMESTAMP = re.compile(rb'"timestamp": "(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)"')
ANSI = re.compile(rb'\x1b\[[0-9;]*m')
OWN_ENV = ('CLAUDE_FLOW_STANDIN_VERSION', 'CLAUDE_FLOW_STANDIN_TRAIN', 'NO_COLOR', 'RUFLO_DAEMON_AUTOSTART')


def reference(name):
    """(stdout, stderr, rc) of a captured case."""
    return read_bytes(name), read_bytes(name, 'stderr'), int(read_bytes(name, 'rc'))


def run(args, cwd, timeout=30, **env):
    """Run the stand-in the way callers do: the executable itself, cwd = app dir, TZ=UTC like the captures."""
    run_env = {key: value for key, value in os.environ.items() if key not in OWN_ENV}
    run_env['TZ'] = 'UTC'
    run_env.update(env)
    proc = subprocess.run([STANDIN] + list(args), cwd=str(cwd), env=run_env, capture_output=True, timeout=timeout,
                          check=False)
    return proc.stdout, proc.stderr, proc.returncode


def write_state(app_dir, history=None, raw=None):
    os.makedirs(os.path.join(str(app_dir), '.swarm'), exist_ok=True)
    path = os.path.join(str(app_dir), '.swarm', 'verification-memory.json')
    if raw is None:
        raw = json.dumps({'scores': [], 'history': history, 'timestamp': '2026-11-28T05:47:26.140Z'}, indent=2)
    with open(path, 'w') as handle:
        handle.write(raw)


def reference_history():
    with open(os.path.join(REFERENCE, 'state__history.json')) as handle:
        return json.load(handle)['history']


@pytest.fixture
def app_dir(tmp_path):
    """An app dir holding the captured 7-entry history as its verification state."""
    target = tmp_path / 'app'
    target.mkdir()
    (target / '.swarm').mkdir()
    shutil.copy(os.path.join(REFERENCE, 'state__history.json'), str(target / '.swarm' / 'verification-memory.json'))
    return target


def mask_timestamp(data):
    return TIMESTAMP.sub(b'"timestamp": "<ts>"', data)


def as_reference_project(data, cwd):
    """3.x outputs name the current project; map it back to the capture's project path."""
    cwd = str(cwd).encode()
    short = (cwd + b'/.claude-flow/neural/checkpoint.json')[:18] + b'...'
    return data.replace(short, REFERENCE_PROJECT.encode()[:18] + b'...').replace(cwd, REFERENCE_PROJECT.encode())


# --------------------------------------------------------------------------------------------
# claude-flow 2.7.47: captured cases, byte for byte

def test_standin_is_an_executable_python_script():
    with open(STANDIN, 'rb') as handle:
        # the one python shebang ansible-test's sanity allows; python-is-python3 provides it
        assert handle.readline() == b'#!/usr/bin/env python\n'
    assert os.access(STANDIN, os.X_OK)


@pytest.mark.parametrize('args, case', [
    (['--version'], 'v2.7.47__version'),
    (['truth', '--report'], 'v2.7.47__truth_report__history'),
    (['verify', 'status'], 'v2.7.47__verify_status__history'),
    (['verify', 'quarantine', 'coder'], 'v2.7.47__verify_quarantine_coder__history'),
    (['neural', 'status'], 'v2.7.47__neural_status'),
])
def test_2x_text_outputs_match_reference(app_dir, args, case):
    assert run(args, app_dir) == reference(case)


def test_2x_truth_json_matches_reference_with_history(app_dir):
    stdout, stderr, rc = run(['truth', '--json'], app_dir)
    ref_stdout, ref_stderr, ref_rc = reference('v2.7.47__truth_json__history')
    assert (mask_timestamp(stdout), stderr, rc) == (mask_timestamp(ref_stdout), ref_stderr, ref_rc)
    stamp = TIMESTAMP.search(stdout).group(1).decode()
    age = time.time() - calendar.timegm(time.strptime(stamp[:19], '%Y-%m-%dT%H:%M:%S'))
    assert -5 < age < 60, stamp  # the current time, in UTC


def test_2x_truth_json_matches_reference_without_state(tmp_path):
    stdout, stderr, rc = run(['truth', '--json'], tmp_path)
    ref_stdout, ref_stderr, ref_rc = reference('v2.7.47__truth_json__nostate')
    assert (mask_timestamp(stdout), stderr, rc) == (mask_timestamp(ref_stdout), ref_stderr, ref_rc)


def test_2x_truth_json_is_computed_from_the_state(tmp_path):
    write_state(tmp_path, [
        {'taskId': 'a', 'agentType': 'planner', 'score': 0.5, 'passed': False},
        {'taskId': 'b', 'agentType': 'coder', 'score': 1, 'passed': True},
        {'taskId': 'c', 'agentType': 'planner', 'score': 0.7, 'passed': True},
    ])
    report = json.loads(run(['truth', '--json'], tmp_path)[0])
    assert report['totalVerifications'] == 3
    assert report['passedVerifications'] == 2
    assert report['averageScore'] == (0.5 + 1 + 0.7) / 3
    assert list(report['agentReliability'].items()) == [('planner', 0.6), ('coder', 1)]


def test_2x_report_renders_times_in_the_process_timezone(app_dir):
    stdout = run(['truth', '--report'], app_dir, TZ='EST5')[0].decode()
    assert '\u2705 [12:02:11 AM] task-101 (coder): 0.950' in stdout  # 05:02:11Z at UTC-5


@pytest.mark.parametrize('raw', ['{corrupt', '', 'null', '[1, 2]', '{"scores": [1], "history": [{"score": 1}]}'])
def test_2x_unusable_state_gives_the_nostate_output(tmp_path, raw):
    write_state(tmp_path, raw=raw)
    stdout, stderr, rc = run(['truth', '--json'], tmp_path)
    ref_stdout = reference('v2.7.47__truth_json__nostate')[0]
    assert (mask_timestamp(stdout), stderr, rc) == (mask_timestamp(ref_stdout), b'', 0)


def test_2x_entry_without_score_gives_null_average_and_crashes_text_views(app_dir):
    history = reference_history()
    del history[4]['score']  # task-105, tester
    write_state(app_dir, history)
    report = json.loads(run(['truth', '--json'], app_dir)[0])
    assert report['averageScore'] is None
    assert report['agentReliability'] == {'coder': 0.8416666666666667, 'tester': None, 'reviewer': 0.85,
                                          'backend-dev': 0.85}
    for args in (['truth', '--report'], ['verify', 'status']):
        stdout, stderr, rc = run(args, app_dir)
        assert rc == 0
        text = stdout.decode()
        assert text.count('Error details: TypeError: Cannot read properties of undefined (reading \'toFixed\')') == 1
        assert 'task-104' in text and 'task-105' not in text  # crashed part-way, at the score-less entry
        assert stderr.decode().startswith('\u274c Error loading verification module')
    assert 'Average Score: NaN' in run(['truth', '--report'], app_dir)[0].decode()


def test_2x_null_score_crashes_like_node(app_dir):
    history = reference_history()
    history[4]['score'] = None
    write_state(app_dir, history)
    stdout, stderr, rc = run(['truth', '--report'], app_dir)
    ref_lines = reference('v2.7.47__truth_report__history')[0].decode().split('\n')
    lines = stdout.decode().split('\n')
    assert lines[:4] == ref_lines[:4]  # header as usual
    assert lines[-2].startswith('    at ') and "Error details: TypeError: Cannot read properties of null (reading 'toFixed')" in lines
    assert stderr == "\u274c Error loading verification module: Cannot read properties of null (reading 'toFixed')\n".encode()
    assert rc == 0
    # JS adds null as 0, so the JSON average stays a number (lower than with the real score).
    assert json.loads(run(['truth', '--json'], app_dir)[0])['averageScore'] == pytest.approx((5.725 - 0.65) / 7)


@pytest.mark.parametrize('args, text', [
    (['truth', '--agent', 'nosuch', '--json'], '\n\u26a0\ufe0f No verification history found for agent: nosuch\n'),
    (['truth', '--agent', 'nosuch'], '\n\u26a0\ufe0f No verification history found for agent: nosuch\n'),
    (['truth', '--threshold', '0.5', '--json'], '\n\u2705 All verifications meet or exceed threshold: 0.5\n'),
    (['truth', '--threshold', '0.5'], '\n\u2705 All verifications meet or exceed threshold: 0.5\n'),
])
def test_2x_agent_and_threshold_filters_print_plain_text(app_dir, args, text):
    stdout, stderr, rc = run(args, app_dir)
    assert (stdout.decode(), stderr, rc) == (text, b'', 0)
    with pytest.raises(ValueError):
        json.loads(stdout)


def test_2x_agent_filter_with_matches_reports_that_agent(app_dir):
    report = json.loads(run(['truth', '--agent', 'coder', '--json'], app_dir)[0])
    assert (report['totalVerifications'], report['passedVerifications']) == (3, 2)
    assert report['agentReliability'] == {'coder': 0.8416666666666667}


def test_version_selection_env_file_and_alpha_banner(tmp_path):
    (tmp_path / '.claude-flow-standin-version').write_text('2.0.0-alpha.113\n')
    stdout, stderr, rc = run(['--version'], tmp_path)
    lines = stdout.decode().split('\n')
    assert lines[0] == 'v2.0.0-alpha.113' and len([line for line in lines[1:] if line]) >= 2
    assert (stderr, rc) == (b'', 0)
    assert run(['--version'], tmp_path, CLAUDE_FLOW_STANDIN_VERSION='3.43.0') == reference('v3.43.0__version')


def test_unknown_version_fails_naming_the_fix(tmp_path):
    stdout, stderr, rc = run(['--version'], tmp_path, CLAUDE_FLOW_STANDIN_VERSION='2.8.0')
    assert rc == 2 and stdout == b''
    assert b"'2.8.0'" in stderr and b'2.7.47, 3.43.0, 2.0.0-alpha.113' in stderr


def test_commands_not_reproduced_fail_loudly(app_dir):
    stdout, stderr, rc = run(['verify', 'verify', '--agent', 'coder'], app_dir)
    assert rc == 2 and b'not reproduced' in stderr


def test_runs_with_system_python3(app_dir):
    if not os.path.exists('/usr/bin/python3'):
        pytest.skip('no /usr/bin/python3 on this machine')
    proc = subprocess.run(['/usr/bin/python3', STANDIN, 'verify', 'status'], cwd=str(app_dir), capture_output=True,
                          env=dict(os.environ, TZ='UTC'), timeout=30, check=False)
    assert (proc.stdout, proc.stderr, proc.returncode) == reference('v2.7.47__verify_status__history')


# --------------------------------------------------------------------------------------------
# claude-flow 2.x training: never returns offline unless told otherwise

@pytest.mark.parametrize('behaviour, expected', [
    ('ok', '  \u2022 Final accuracy: 73.5%'),
    ('unavailable', '\u274c ruv-swarm is not available'),
])
def test_2x_training_outcomes(app_dir, behaviour, expected):
    stdout, stderr, rc = run(['training', 'neural-train', '--data', 'recent', '--epochs', '20'], app_dir,
                             CLAUDE_FLOW_STANDIN_TRAIN=behaviour)
    assert rc == 0 and expected in stdout.decode()
    assert '\U0001f504 Training epochs: 20' in stdout.decode()


def test_2x_training_hangs_ignores_sigterm_and_dies_with_its_group(app_dir):
    env = {key: value for key, value in os.environ.items() if key not in OWN_ENV}
    proc = subprocess.Popen([STANDIN, 'training', 'neural-train', '--data', 'recent', '--epochs', '3'],
                            cwd=str(app_dir), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        time.sleep(1.0)
        assert proc.poll() is None, 'training returned instead of hanging'
        assert len(processes_in_group(proc.pid)) == 2  # the CLI and its never-ending `npx ruv-swarm --version`
        os.kill(proc.pid, signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None, 'SIGTERM ended the CLI; the real one ignores it'
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout = proc.communicate(timeout=10)[0]
    deadline = time.time() + 5
    while processes_in_group(proc.pid) and time.time() < deadline:
        time.sleep(0.05)
    assert processes_in_group(proc.pid) == []
    assert stdout.decode().startswith('\U0001f9e0 Starting neural training...\n')


# --------------------------------------------------------------------------------------------
# claude-flow 3.43.0

@pytest.mark.parametrize('args, case', [
    (['truth', '--json'], 'v3.43.0__truth_json'),
    (['verify', 'status'], 'v3.43.0__verify_status__offline_autostart0'),
    (['neural', 'status'], 'v3.43.0__neural_status__trained'),
    (['--version'], 'v3.43.0__version'),
])
def test_3x_outputs_match_reference(tmp_path, args, case):
    assert run(args, tmp_path, CLAUDE_FLOW_STANDIN_VERSION='3.43.0', NO_COLOR='1') == reference(case)


def test_3x_neural_patterns_matches_reference_and_ignores_unknown_flags(tmp_path):
    stdout, stderr, rc = run(['neural', 'patterns', '--rebuild-cache'], tmp_path,
                             CLAUDE_FLOW_STANDIN_VERSION='3.43.0', NO_COLOR='1')
    assert (as_reference_project(stdout, tmp_path), stderr, rc) == reference('v3.43.0__neural_patterns__trained')
    assert str(tmp_path).encode() in stdout


def test_3x_neural_train_matches_reference(tmp_path):
    (tmp_path / '.swarm').mkdir()
    (tmp_path / '.swarm' / 'memory.db').write_bytes(b'')
    stdout, stderr, rc = run(['neural', 'train', '--epochs', '2'], tmp_path, CLAUDE_FLOW_STANDIN_VERSION='3.43.0',
                             NO_COLOR='1', RUFLO_DAEMON_AUTOSTART='0')
    assert (as_reference_project(stdout, tmp_path), stderr, rc) == reference('v3.43.0__dbbuild_06_neural_train')
    assert not (tmp_path / '.claude-flow' / 'daemon.pid').exists()


def test_3x_neural_train_substitutes_epochs(tmp_path):
    stdout = run(['neural', 'train', '--epochs', '17'], tmp_path, CLAUDE_FLOW_STANDIN_VERSION='3.43.0',
                 NO_COLOR='1', RUFLO_DAEMON_AUTOSTART='0')[0].decode()
    assert 'Training complete: 17 epochs in 0.3s\n' in stdout
    assert '| Epochs             | 17                               |\n' in stdout


def test_3x_colour_unless_no_color(tmp_path):
    coloured = run(['neural', 'status'], tmp_path, CLAUDE_FLOW_STANDIN_VERSION='3.43.0')[0]
    plain = reference('v3.43.0__neural_status__trained')[0]
    assert coloured != plain and b'\x1b[' in coloured
    assert ANSI.sub(b'', coloured) == plain


def test_3x_training_is_an_unknown_command(tmp_path):
    stdout, stderr, rc = run(['training', 'neural-train', '--epochs', '2'], tmp_path,
                             CLAUDE_FLOW_STANDIN_VERSION='3.43.0')
    assert (stderr, rc) == (b'[ERROR] Unknown command: training\n', 1)
    assert stdout.startswith(b'  Did you mean one of these?\n')


def test_3x_neural_train_autostarts_a_detached_daemon(tmp_path):
    (tmp_path / '.swarm').mkdir()
    (tmp_path / '.swarm' / 'memory.db').write_bytes(b'')
    stdout, stderr, rc = run(['neural', 'train', '--epochs', '1'], tmp_path, CLAUDE_FLOW_STANDIN_VERSION='3.43.0')
    assert rc == 0
    pid = int((tmp_path / '.claude-flow' / 'daemon.pid').read_text())
    try:
        os.kill(pid, 0)  # alive after the CLI returned
        assert os.getsid(pid) == pid  # detached into its own session
    finally:
        os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 5
    while os.path.exists('/proc/%d' % pid) and time.time() < deadline:
        time.sleep(0.05)
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def test_3x_no_daemon_outside_a_project(tmp_path):
    run(['neural', 'train', '--epochs', '1'], tmp_path, CLAUDE_FLOW_STANDIN_VERSION='3.43.0')
    assert not (tmp_path / '.claude-flow' / 'daemon.pid').exists()


# --------------------------------------------------------------------------------------------
# the production app stand-in

LOG_LINE = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z (INFO|ERROR) [a-z]+ \S.*$')


def make_db(path, wal=False):
    conn = sqlite3.connect(str(path))
    if wal:
        conn.execute('PRAGMA journal_mode=WAL')
    conn.execute('CREATE TABLE patterns (id TEXT PRIMARY KEY, confidence REAL)')
    conn.execute("INSERT INTO patterns VALUES ('p1', 0.9)")
    conn.commit()
    conn.close()


class App(object):
    """app.py as a real process on a free loopback port (port 0, read back from its log)."""

    def __init__(self, tmp_path):
        self.release_dir = tmp_path / 'backups' / 'release-42'
        (self.release_dir / '.swarm').mkdir(parents=True)
        self.app_dir = tmp_path / 'claude-code-production'
        self.app_dir.symlink_to(self.release_dir)
        self.db = self.release_dir / '.swarm' / 'memory.db'
        self.log = tmp_path / 'log' / 'application.log'
        self.proc = None
        self.port = None

    def start(self):
        self.proc = subprocess.Popen([sys.executable, APP, '--app-dir', str(self.app_dir), '--port', '0',
                                      '--bind', '127.0.0.1', '--log', str(self.log)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            match = re.search(r'listening on 127\.0\.0\.1:(\d+)', self.log.read_text() if self.log.exists() else '')
            if match:
                self.port = int(match.group(1))
                return self
            assert self.proc.poll() is None, self.proc.communicate()
            time.sleep(0.05)
        raise AssertionError('app did not log its port')

    def get(self, path='/health'):
        try:
            with urllib.request.urlopen('http://127.0.0.1:%d%s' % (self.port, path), timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def held_files(self):
        fd_dir = '/proc/%d/fd' % self.proc.pid
        links = []
        for fd in os.listdir(fd_dir):
            try:
                links.append(os.readlink(os.path.join(fd_dir, fd)))
            except OSError:
                continue
        return links

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout=10)
        return self.proc.returncode if self.proc else None


@pytest.fixture
def app(tmp_path):
    instance = App(tmp_path)
    yield instance
    if instance.proc and instance.proc.poll() is None:
        instance.proc.kill()
        instance.proc.wait()


def test_app_health_ok_holds_db_open_and_exits_0_on_sigterm(app):
    make_db(app.db)
    app.start()
    status, body = app.get()
    assert status == 200
    health = json.loads(body)
    assert (health['status'], health['db'], health['release'], health['pid']) == ('ok', 'ok', 'release-42', app.proc.pid)
    assert os.path.realpath(str(app.db)) in app.held_files()  # an open reader, as a restore must see
    assert app.get('/metrics')[0] == 200
    started = time.time()
    assert app.stop() == 0
    assert time.time() - started < 5
    lines = app.log.read_text().splitlines()
    assert lines and all(LOG_LINE.match(line) for line in lines), lines
    assert any(' INFO http 127.0.0.1 GET /health 200 ' in line for line in lines)


def test_app_health_ok_on_wal_db(app):
    make_db(app.db, wal=True)
    app.start()
    assert app.get()[0] == 200


@pytest.mark.parametrize('damage', ['garbage', 'truncate', 'remove'])
def test_app_health_503_when_db_is_bad(app, damage):
    make_db(app.db)
    app.start()
    assert app.get()[0] == 200
    if damage == 'garbage':
        with open(str(app.db), 'r+b') as handle:  # same inode: the held connection sees it
            handle.write(b'this is not an SQLite file at all' * 200)
    elif damage == 'truncate':
        with open(str(app.db), 'r+b') as handle:
            handle.truncate(0)
    else:
        app.db.unlink()
    status, body = app.get()
    assert status == 503
    health = json.loads(body)
    assert (health['status'], health['db'], health['release']) == ('error', 'error', 'release-42')
    assert health['error']
    if damage == 'remove':
        assert 'missing' in health['error']
        assert not [link for link in app.held_files() if 'memory.db' in link]  # let go of the deleted file
    errors = [line for line in app.log.read_text().splitlines() if ' ERROR health ' in line]
    assert len(errors) == 1 and LOG_LINE.match(errors[0])


def test_app_reopens_a_replaced_db(app):
    make_db(app.db)
    app.start()
    assert app.get()[0] == 200
    with open(str(app.db), 'wb') as handle:
        handle.write(b'garbage' * 1000)
    assert app.get()[0] == 503
    fresh = app.release_dir / '.swarm' / 'restored.db'
    make_db(fresh)
    os.replace(str(fresh), str(app.db))  # what a restore does (after stopping the service)
    assert app.get()[0] == 200
    held = [link for link in app.held_files() if 'memory.db' in link]
    assert held == [os.path.realpath(str(app.db))]  # the new file, not the replaced one ("(deleted)")


def test_app_missing_db_at_start_is_503_not_a_crash(app):
    app.start()
    status, body = app.get()
    assert status == 503 and 'missing' in json.loads(body)['error']
    assert app.proc.poll() is None


def test_app_port_in_use_fails_with_a_clear_message(app, tmp_path):
    make_db(app.db)
    app.start()
    proc = subprocess.run([sys.executable, APP, '--app-dir', str(app.app_dir), '--port', str(app.port),
                           '--bind', '127.0.0.1', '--log', str(tmp_path / 'other.log')],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 1 and 'cannot listen on 127.0.0.1:%d' % app.port in proc.stderr
