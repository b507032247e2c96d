# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/claude_flow.py against the captured outputs of the real CLIs and against real
processes: the lab stand-in of claude-flow, and small scripts that misbehave on purpose."""

import json
import os
import shutil
import signal
import sys
import textwrap
import time
import uuid

import pytest

from process_scan import processes_in_group, processes_with
from reference_outputs import read_bytes

from ansible_collections.claude_flow.runbook.plugins.module_utils import claude_flow as cf

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
STANDIN = os.path.join(REPO, 'tests', 'lab', 'standins', 'claude-flow')
REFERENCE = os.path.join(REPO, 'tests', 'fixtures', 'claude-flow-reference')


def ref(name, stream='stdout'):
    return read_bytes(name, stream).decode('utf-8')


def make_app(base, version='2.7.47', history=None, raw_state=None, executable=None):
    """An app dir with the stand-in installed as node_modules/.bin/claude-flow (or a given script)."""
    app = os.path.join(str(base), 'app')
    os.makedirs(os.path.join(app, 'node_modules', '.bin'))
    target = os.path.join(app, 'node_modules', '.bin', 'claude-flow')
    if executable is None:
        shutil.copy2(STANDIN, target)
    else:
        with open(target, 'w') as handle:
            handle.write(executable)
        os.chmod(target, 0o755)
    with open(os.path.join(app, '.claude-flow-standin-version'), 'w') as handle:
        handle.write(version + '\n')
    if history is not None or raw_state is not None:
        os.makedirs(os.path.join(app, '.swarm'))
        with open(os.path.join(app, '.swarm', 'verification-memory.json'), 'w') as handle:
            handle.write(raw_state if raw_state is not None else json.dumps({'scores': [], 'history': history}))
    return app


# ------------------------------------------------------------------ version, options, parsers

@pytest.mark.parametrize('text, version, major, product', [
    (ref('v2.7.47__version'), '2.7.47', 2, 'claude-flow'),
    (ref('v3.43.0__version'), '3.43.0', 3, 'ruflo'),
    ('v2.0.0-alpha.113\n\n\U0001f30a Claude-Flow v2.0.0-alpha.113: banner\n', '2.0.0-alpha.113', 2, 'claude-flow'),
    ('\x1b[1mruflo v3.43.0\x1b[22m\n', '3.43.0', 3, 'ruflo'),
])
def test_parse_version(text, version, major, product):
    info = cf.parse_version(text)
    assert (info['version'], info['major'], info['product']) == (version, major, product)


@pytest.mark.parametrize('text', ['', 'command not found', 'Usage: claude-flow <command>', 'version 2'])
def test_parse_version_rejects_other_text(text):
    assert cf.parse_version(text) is None


@pytest.mark.parametrize('value', ['npx', 'npx claude-flow', 'npx claude-flow@alpha', '/usr/bin/npx',
                                   '/usr/local/bin/npx claude-flow', 'npx --no-install claude-flow'])
def test_npx_is_rejected_with_the_reason(value, tmp_path):
    with pytest.raises(cf.ClaudeFlowError) as err:
        cf.resolve_executable(str(tmp_path), value)
    text = str(err.value)
    assert 'npx' in text and 'claude-flow@latest' in text and 'node_modules/.bin/claude-flow' in text


def test_missing_executable_names_path_and_fix(tmp_path):
    with pytest.raises(cf.ClaudeFlowError) as err:
        cf.resolve_executable(str(tmp_path))
    assert os.path.join(str(tmp_path), 'node_modules', '.bin', 'claude-flow') in str(err.value)
    assert 'npm install' in str(err.value)


def test_relative_executable_is_taken_from_app_dir(tmp_path):
    app = make_app(tmp_path)
    assert cf.resolve_executable(app, 'node_modules/.bin/claude-flow') == os.path.join(
        app, 'node_modules', '.bin', 'claude-flow')


def test_app_dir_must_exist(tmp_path):
    with pytest.raises(cf.ClaudeFlowError) as err:
        cf.ClaudeFlow(str(tmp_path / 'nope'))
    assert 'app_dir' in str(err.value)


def test_strip_ansi_removes_colours_and_cursor_moves():
    text = '\x1b[90m+---+\x1b[39m\n\x1b[2K\x1b[1G\x1b[1mTitle\x1b[22m\x1b]0;x\x07'
    assert cf.strip_ansi(text) == '+---+\nTitle'


def test_parse_truth_json_reference_outputs():
    data = cf.parse_truth_json(ref('v2.7.47__truth_json__history'))
    assert data['averageScore'] == pytest.approx(0.8178571428571428)
    assert data['agentReliability'] == {'coder': pytest.approx(0.8416666666666667), 'tester': 0.75,
                                        'reviewer': 0.85, 'backend-dev': 0.85}
    empty = cf.parse_truth_json(ref('v2.7.47__truth_json__nostate'))
    assert (empty['totalVerifications'], empty['averageScore']) == (0, 0)


def test_parse_json_object_tolerates_text_around_it():
    assert cf.parse_json_object('spinner...\n{"a": {"b": 1}}\ndone') == {'a': {'b': 1}}
    assert cf.parse_json_object('no json here') is None
    assert cf.parse_json_object('{broken') is None
    assert cf.parse_truth_json('{"other": 1}') is None


def test_known_failure_texts_are_found_on_either_stream():
    assert cf.find_failures(ref('v2.7.47__neural_status', 'stdout'), ref('v2.7.47__neural_status', 'stderr')) == [
        'Unknown neural subcommand: status']
    assert cf.find_failures(ref('v3.43.0__truth_json'), ref('v3.43.0__truth_json', 'stderr')) == [
        '[ERROR] Unknown command: truth']
    assert cf.find_failures(u'\u274c ruv-swarm is not available. Please install it') == [
        u'\u274c ruv-swarm is not available. Please install it']
    assert cf.find_failures(ref('v2.7.47__truth_json__history'), ref('v2.7.47__verify_status__history')) == []


def test_parse_verify_status_reference():
    status = cf.parse_verify_status(ref('v2.7.47__verify_status__history'))
    assert status['mode'] == 'moderate'
    assert status['verifications'] == 7
    assert [r['task_id'] for r in status['recent']] == ['task-103', 'task-104', 'task-105', 'task-106', 'task-107']
    assert status['recent'][0] == {'task_id': 'task-103', 'agent': 'coder', 'score': 0.68, 'passed': False}
    assert status['recent'][3] == {'task_id': 'task-106', 'agent': 'backend-dev', 'score': 0.85, 'passed': True}


def test_truth_report_lines_parse_too():
    status = cf.parse_verify_status(ref('v2.7.47__truth_report__history'))
    assert len(status['recent']) == 7
    assert status['recent'][2] == {'task_id': 'task-103', 'agent': 'coder', 'score': 0.675, 'passed': False}


def test_neural_status_table_reference():
    parsed = cf.parse_neural_status(ref('v3.43.0__neural_status__trained'))
    components = parsed['components']
    assert len(components) == 12
    assert components['ReasoningBank'] == {'status': 'Active', 'details': '2 patterns stored'}
    assert components['RuVector Training']['status'] == 'Not loaded'
    # A cell with a pipe in it stays one cell.
    assert components['ruvllm Coordinator'] == {'status': 'Active', 'details': 'SonaCoordinator | 0 trajectories'}
    assert parsed['summary'] == {'Active': 4, 'Not loaded': 2, 'Available': 5, 'Loaded': 1}


def test_neural_patterns_table_reference():
    parsed = cf.parse_neural_patterns(ref('v3.43.0__neural_patterns__trained'))
    assert parsed['patterns'] == [{'id': 'step_1795849448722', 'type': 'action', 'confidence': 1.0, 'usage': 9}] * 2
    assert (parsed['total_patterns'], parsed['trajectories'], parsed['storage']) == (2, 3, 'persisted')


def test_train_metrics_table_reference():
    metrics = cf.parse_train_output(ref('v3.43.0__dbbuild_06_neural_train'))
    assert metrics['Epochs'] == '2'
    assert metrics['Final Loss'] == '1.616e-3'
    assert 'Metric' not in metrics


def test_parse_tables_keys_and_multiple_tables():
    text = '| A b | C |\n|---|---|\n| 1 | 2 |\n\nfree text\n+--+\n| X |\n+--+\n| y |\n+--+\n'
    tables = cf.parse_tables(text)
    assert [t['keys'] for t in tables] == [['a_b', 'c'], ['x']]
    assert tables[0]['rows'] == [{'a_b': '1', 'c': '2'}]
    assert tables[1]['rows'] == [{'x': 'y'}]


def test_train_args_per_product_line():
    assert cf.neural_train_args(2, None, 50) == ['training', 'neural-train', '--data', 'recent', '--epochs', '50']
    assert cf.neural_train_args(2, 'goap_heuristics', 7)[3] == 'goap_heuristics'
    assert cf.neural_train_args(3, 'recent', 5) == ['neural', 'train', '--epochs', '5']


# ------------------------------------------------------------------ real processes

def test_version_from_the_standin(tmp_path):
    for version, major in (('2.7.47', 2), ('3.43.0', 3), ('2.0.0-alpha.113', 2)):
        app = make_app(tmp_path / version, version)
        info = cf.ClaudeFlow(app).version()
        assert (info['version'], info['major']) == (version, major)


def write_package_json(app, raw):
    package = os.path.join(app, 'node_modules', 'claude-flow')
    os.makedirs(package, exist_ok=True)
    with open(os.path.join(package, 'package.json'), 'w' if isinstance(raw, str) else 'wb') as handle:
        handle.write(raw)


def test_version_comes_from_package_json_without_starting_the_cli(tmp_path):
    # The executable would fail if started: the version can only have come from package.json.
    app = make_app(tmp_path, executable='#!/bin/sh\necho started >> "$0.calls"\nexit 3\n')
    write_package_json(app, json.dumps({'name': 'claude-flow', 'version': '2.7.47', 'bin': {}}))
    info = cf.ClaudeFlow(app).version()
    assert (info['version'], info['major'], info['product'], info['source']) == ('2.7.47', 2, 'claude-flow',
                                                                                 'package.json')
    assert not os.path.exists(os.path.join(app, 'node_modules', '.bin', 'claude-flow.calls'))
    assert cf.installed_version(app)['version'] == '2.7.47'
    write_package_json(app, json.dumps({'version': '3.43.0'}))
    assert cf.ClaudeFlow(app).version()['product'] == 'ruflo'


@pytest.mark.parametrize('raw', [None, '{"version": 7}', 'not json', '{"name": "claude-flow"}', b'{"version": "\xff"}'])
def test_version_falls_back_to_the_cli_without_a_usable_package_json(tmp_path, raw):
    app = make_app(tmp_path, '3.43.0')
    if raw is not None:
        write_package_json(app, raw)
    info = cf.ClaudeFlow(app).version()
    assert (info['version'], info['source']) == ('3.43.0', '--version')


def test_package_json_read_is_capped_and_never_blocks(tmp_path):
    app = make_app(tmp_path, '3.43.0')
    package = os.path.join(app, 'node_modules', 'claude-flow')
    os.makedirs(package)
    os.mkfifo(os.path.join(package, 'package.json'))  # opened for reading, it would block
    assert cf.installed_version(app) is None
    os.unlink(os.path.join(package, 'package.json'))
    write_package_json(app, '{"version": "2.7.47", "pad": "%s"}' % ('x' * (2 * 1024 * 1024)))
    assert cf.installed_version(app) is None and cf.ClaudeFlow(app).version()['version'] == '3.43.0'


def test_an_explicit_executable_is_asked_itself(tmp_path):
    app = make_app(tmp_path, '3.43.0')
    write_package_json(app, json.dumps({'version': '2.7.47'}))
    cli = cf.ClaudeFlow(app, executable=os.path.join(app, 'node_modules', '.bin', 'claude-flow'))
    assert cli.version()['version'] == '3.43.0'


@pytest.mark.parametrize('value', [0, -5, 86401, 10 ** 20])
def test_timeout_range_is_named(value):
    with pytest.raises(cf.ClaudeFlowError, match='timeout must be between 1 and 86400 seconds'):
        cf.check_timeout(value)


def test_plain_text_agent_output_is_not_taken_for_truth_json(tmp_path):
    """`truth --json --agent nosuch` prints plain text: the parser must say 'no truth JSON'."""
    app = make_app(tmp_path, history=[{'taskId': 't1', 'agentType': 'coder', 'score': 0.9, 'passed': True,
                                       'timestamp': '2026-11-28T05:00:00.000Z'}])
    run = cf.ClaudeFlow(app).run(['truth', '--json', '--agent', 'nosuch'])
    assert run['rc'] == 0 and 'No verification history found for agent: nosuch' in run['stdout']
    assert cf.parse_truth_json(run['stdout']) is None


def test_crash_texts_are_failures_despite_rc_0(tmp_path):
    """An entry without a score makes 2.x `verify status` crash part-way and still exit 0."""
    app = make_app(tmp_path, history=[{'taskId': 't1', 'agentType': 'tester', 'passed': False,
                                       'timestamp': '2026-11-28T05:00:00.000Z'}])
    run = cf.ClaudeFlow(app).run(cf.VERIFY_STATUS_ARGS)
    assert run['rc'] == 0
    assert any(line.startswith(u'\u274c Error loading verification module') for line in run['failures'])
    assert any(line.startswith('Error details:') for line in run['failures'])
    assert 'failed' in cf.describe_failure(run, 'status')


def test_environment_and_cwd_of_the_cli(tmp_path, monkeypatch):
    script = textwrap.dedent('''\
        #!%s
        import json, os
        print(json.dumps({"cwd": os.getcwd(), "NO_COLOR": os.environ.get("NO_COLOR"),
                          "RUFLO_DAEMON_AUTOSTART": os.environ.get("RUFLO_DAEMON_AUTOSTART"),
                          "FORCE_COLOR": os.environ.get("FORCE_COLOR"), "pgid": os.getpgid(0), "pid": os.getpid()}))
        ''' % sys.executable)
    app = make_app(tmp_path, executable=script)
    monkeypatch.setenv('FORCE_COLOR', '3')
    monkeypatch.setenv('RUFLO_DAEMON_AUTOSTART', '1')
    run = cf.ClaudeFlow(app).run(['anything'])
    seen = json.loads(run['stdout'])
    assert seen['cwd'] == os.path.realpath(app)
    assert (seen['NO_COLOR'], seen['RUFLO_DAEMON_AUTOSTART'], seen['FORCE_COLOR']) == ('1', '0', None)
    assert seen['pgid'] == seen['pid'] == run['pgid'] != os.getpgid(0)
    assert run['command'] == [os.path.join(app, 'node_modules', '.bin', 'claude-flow'), 'anything']


def test_colour_output_is_stripped(tmp_path):
    app = make_app(tmp_path, version='3.43.0')
    coloured = cf.ClaudeFlow(app, extra_env={'NO_COLOR': ''}).run(cf.NEURAL_STATUS_ARGS)
    assert '\x1b' not in coloured['stdout']
    assert len(cf.parse_neural_status(coloured['stdout'])['components']) == 12


def test_no_daemon_is_left_by_3x_train(tmp_path):
    app = make_app(tmp_path, version='3.43.0')
    os.makedirs(os.path.join(app, '.swarm'))
    open(os.path.join(app, '.swarm', 'memory.db'), 'w').close()  # a project: 3.x would autostart here
    marker = 'CF_TEST_%s' % uuid.uuid4().hex
    run = cf.ClaudeFlow(app, extra_env={marker: '1'}).run(cf.neural_train_args(3, None, 2))
    assert run['rc'] == 0 and run['failures'] == []
    assert not os.path.exists(os.path.join(app, '.claude-flow', 'daemon.pid'))
    assert processes_with(marker) == []


def test_hanging_training_is_killed_with_its_whole_group(tmp_path):
    """2.x training offline: parent and child ignore SIGTERM; the timeout must take both down."""
    app = make_app(tmp_path)
    marker = 'CF_TEST_%s' % uuid.uuid4().hex
    cli = cf.ClaudeFlow(app, timeout=2, extra_env={marker: '1'})
    started = time.monotonic()
    run = cli.run(cf.neural_train_args(2, 'recent', 5))
    elapsed = time.monotonic() - started
    assert run['timed_out'] is True
    assert run['rc'] == -signal.SIGKILL  # SIGTERM was ignored: only SIGKILL ended it
    assert elapsed < 2 + cf.TERM_GRACE_SECONDS + 3
    assert run['processes_killed'] >= 2 and run['orphans'] == 0
    assert processes_in_group(run['pgid']) == []
    assert processes_with(marker) == []
    assert 'Starting neural training' in run['stdout']  # output before the hang is kept
    assert cf.describe_failure(run, 'training').endswith('timed out after 2 s; process group killed (orphans: 0)')


def test_child_holding_the_pipes_after_the_cli_exits_is_killed(tmp_path):
    script = textwrap.dedent('''\
        #!%s
        import os, signal, time
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            time.sleep(600)
        print("parent done", flush=True)
        ''' % sys.executable)
    app = make_app(tmp_path, executable=script)
    marker = 'CF_TEST_%s' % uuid.uuid4().hex
    started = time.monotonic()
    run = cf.ClaudeFlow(app, timeout=60, extra_env={marker: '1'}).run(['x'])
    assert time.monotonic() - started < cf.LINGER_SECONDS + cf.TERM_GRACE_SECONDS + 3
    assert (run['rc'], run['timed_out'], run['stdout']) == (0, False, 'parent done\n')
    assert run['processes_killed'] == 1 and run['orphans'] == 0
    assert processes_with(marker) == []


def test_quick_command_is_not_slowed_down(tmp_path):
    app = make_app(tmp_path)
    run = cf.ClaudeFlow(app).run(['--version'])
    assert (run['rc'], run['timed_out'], run['processes_killed'], run['orphans']) == (0, False, 0, 0)
    assert run['duration_ms'] < 2000
