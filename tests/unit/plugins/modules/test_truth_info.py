# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""truth_info as a real module process, against the claude-flow stand-in, real state files and real
SQLite files from the project's generator."""

import json
import os
import shutil
import sqlite3
import sys
import time

import pytest

from conftest import REPO, run_module

import memory_db_gen

STANDIN = os.path.join(REPO, 'tests', 'lab', 'standins', 'claude-flow')
REFERENCE = os.path.join(REPO, 'tests', 'fixtures', 'claude-flow-reference')

# The reference state (state__history.json): per agent type, as the real 2.7.47 `truth --json` printed.
OVERALL = 0.8178571428571428
AGENTS = {'backend-dev': 0.85, 'coder': 0.8416666666666667, 'reviewer': 0.85, 'tester': 0.75}
COUNTS = {'backend-dev': 1, 'coder': 3, 'reviewer': 1, 'tester': 2}


def make_app(base, version='2.7.47', history=None, raw_state=None, reference_state=False):
    app = os.path.join(str(base), 'app')
    os.makedirs(os.path.join(app, 'node_modules', '.bin'))
    shutil.copy2(STANDIN, os.path.join(app, 'node_modules', '.bin', 'claude-flow'))
    with open(os.path.join(app, '.claude-flow-standin-version'), 'w') as handle:
        handle.write(version + '\n')
    state = os.path.join(app, '.swarm', 'verification-memory.json')
    if reference_state:
        os.makedirs(os.path.dirname(state))
        shutil.copy(os.path.join(REFERENCE, 'state__history.json'), state)
    elif history is not None or raw_state is not None:
        os.makedirs(os.path.dirname(state))
        with open(state, 'w') as handle:
            handle.write(raw_state if raw_state is not None else json.dumps({'scores': [], 'history': history}))
    return app


def iso_ago(seconds):
    return time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime(time.time() - seconds))


def entry(task, agent, score, ago=60, passed=None):
    item = {'taskId': task, 'agentType': agent, 'passed': passed if passed is not None else (score or 0) >= 0.85,
            'threshold': 0.85, 'timestamp': iso_ago(ago)}
    if score is not None:
        item['score'] = score
    return item


def agents_of(result):
    return dict((a['agent'], a['score']) for a in result['agents'])


def test_cli_source_reads_truth_json(tmp_path):
    app = make_app(tmp_path, reference_state=True)
    result = run_module('truth_info', {'app_dir': app, 'source': 'cli'})
    assert result['_rc'] == 0 and result['changed'] is False
    assert (result['status'], result['source'], result['cli_version']) == ('ok', 'cli', '2.7.47')
    assert result['cli_command'][1:] == ['truth', '--json']
    assert result['overall'] == pytest.approx(OVERALL)
    assert agents_of(result) == pytest.approx(AGENTS)
    assert all(a['verifications'] is None for a in result['agents'])  # the CLI does not report counts
    assert (result['total_verifications'], result['passed_verifications']) == (7, 5)
    # threshold 0.90 (the runbook's select(.score < 0.90)): all four are below, lowest first
    assert [a['agent'] for a in result['agents_below']] == ['tester', 'coder', 'backend-dev', 'reviewer']


def test_state_file_source_matches_the_cli_and_counts_per_agent(tmp_path):
    app = make_app(tmp_path, reference_state=True)
    result = run_module('truth_info', {'app_dir': app, 'source': 'state_file', 'threshold': 0.85})
    assert (result['status'], result['source']) == ('ok', 'state_file')
    assert result['overall'] == pytest.approx(OVERALL)
    assert agents_of(result) == pytest.approx(AGENTS)
    assert dict((a['agent'], a['verifications']) for a in result['agents']) == COUNTS
    assert [a['agent'] for a in result['agents_below']] == ['tester', 'coder']
    assert result['history'][0]['task_id'] == 'task-107' and len(result['history']) == 7
    assert result['cli_version'] is None  # the CLI was not needed


def test_auto_on_2x_uses_the_cli(tmp_path):
    app = make_app(tmp_path, reference_state=True)
    result = run_module('truth_info', {'app_dir': app})
    assert (result['status'], result['source']) == ('ok', 'cli')
    assert result['overall'] == pytest.approx(OVERALL)
    assert result['attempts'][0]['source'] == 'db' and 'does not exist' in result['attempts'][0]['outcome']


def test_window_filters_the_state_file_history(tmp_path):
    app = make_app(tmp_path, history=[entry('old', 'coder', 0.40, ago=7200), entry('new1', 'coder', 0.96, ago=600),
                                      entry('new2', 'tester', 0.92, ago=300)])
    result = run_module('truth_info', {'app_dir': app, 'source': 'state_file', 'window': '1h'})
    assert result['status'] == 'ok'
    assert result['total_verifications'] == 2
    assert result['overall'] == pytest.approx(0.94)
    assert agents_of(result) == pytest.approx({'coder': 0.96, 'tester': 0.92})
    assert result['agents_below'] == []
    everything = run_module('truth_info', {'app_dir': app, 'source': 'state_file'})
    assert everything['overall'] == pytest.approx((0.40 + 0.96 + 0.92) / 3)
    # auto with a window on 2.x reads the state file: the CLI cannot filter by time
    auto = run_module('truth_info', {'app_dir': app, 'window': '1h'})
    assert (auto['source'], auto['total_verifications'], auto['cli_version']) == ('state_file', 2, '2.7.47')


def test_window_with_cli_source_is_refused(tmp_path):
    app = make_app(tmp_path, reference_state=True)
    result = run_module('truth_info', {'app_dir': app, 'source': 'cli', 'window': '1h'})
    assert result['failed'] and 'state_file' in result['msg']


@pytest.mark.parametrize('source', ['cli', 'state_file', 'auto'])
def test_no_state_file_is_no_data_not_zero(tmp_path, source):
    app = make_app(tmp_path)
    result = run_module('truth_info', {'app_dir': app, 'source': source})
    assert result['_rc'] == 0
    assert result['status'] == 'no_data'
    assert result['overall'] is None and result['agents'] == [] and result['agents_below'] == []
    assert 'does not exist' in result['reason']


@pytest.mark.parametrize('source', ['cli', 'state_file'])
def test_corrupted_state_is_no_data_with_the_reason(tmp_path, source):
    app = make_app(tmp_path, raw_state='{"scores": [], "history": [ {"taskId": ')
    result = run_module('truth_info', {'app_dir': app, 'source': source})
    assert result['status'] == 'no_data' and result['overall'] is None
    assert 'corrupted' in result['reason']


def test_empty_history_is_no_data(tmp_path):
    app = make_app(tmp_path, history=[])
    for source in ('cli', 'state_file'):
        result = run_module('truth_info', {'app_dir': app, 'source': source})
        assert (result['status'], result['overall'], result['total_verifications']) == ('no_data', None, 0)


def test_entry_without_score(tmp_path):
    """The CLI prints averageScore null and {"tester": null}: no overall; tester is not 'below'."""
    app = make_app(tmp_path, history=[entry('t1', 'coder', 0.80), entry('t2', 'tester', None, passed=False)])
    cli = run_module('truth_info', {'app_dir': app, 'source': 'cli'})
    assert (cli['status'], cli['overall']) == ('no_data', None)
    assert 'null' in cli['reason']
    assert agents_of(cli) == {'coder': pytest.approx(0.80), 'tester': None}
    assert 'tester' not in [a['agent'] for a in cli['agents_below']]
    state = run_module('truth_info', {'app_dir': app, 'source': 'state_file'})
    assert (state['status'], state['overall']) == ('ok', pytest.approx(0.80))
    assert agents_of(state) == {'coder': pytest.approx(0.80), 'tester': None}
    assert [a['agent'] for a in state['agents_below']] == ['coder']
    assert '1 of 2 verifications have no score' in state['reason']


def test_percentage_scores_are_normalised(tmp_path):
    app = make_app(tmp_path, history=[entry('t1', 'coder', 95), entry('t2', 'tester', 85)])
    result = run_module('truth_info', {'app_dir': app, 'source': 'state_file'})
    assert result['overall'] == pytest.approx(0.90)
    assert agents_of(result) == pytest.approx({'coder': 0.95, 'tester': 0.85})


def test_db_source_from_generated_runbook_db(tmp_path):
    app = make_app(tmp_path)
    os.makedirs(os.path.join(app, '.swarm'))
    db = os.path.join(app, '.swarm', 'memory.db')
    summary = memory_db_gen.generate(db, profile='runbook', rows=400, truth_score=0.9, weak_agent='coder',
                                     weak_agent_score=0.7)
    expected = summary['expected']
    result = run_module('truth_info', {'app_dir': app, 'source': 'db', 'window': '1h'})
    assert (result['status'], result['source']) == ('ok', 'db')
    assert result['total_verifications'] == expected['verifications_last_hour']
    assert result['overall'] == pytest.approx(expected['truth_score'], abs=1e-4)
    assert agents_of(result) == pytest.approx(expected['agent_scores'], abs=1e-4)
    assert [a['agent'] for a in result['agents_below']][0] == 'coder'
    # auto prefers a verification_history with rows
    auto = run_module('truth_info', {'app_dir': app, 'window': '1h'})
    assert auto['source'] == 'db' and auto['overall'] == pytest.approx(result['overall'])
    whole = run_module('truth_info', {'app_dir': app, 'source': 'db'})
    assert whole['total_verifications'] == summary['row_counts']['verification_history']


def test_db_percentages_and_iso_timestamps(tmp_path):
    db = str(tmp_path / 'memory.db')
    conn = sqlite3.connect(db)
    conn.execute('CREATE TABLE verification_history (id INTEGER PRIMARY KEY, timestamp TEXT, agent_name TEXT, '
                 'truth_score REAL, verification_status TEXT)')
    now = time.time()
    rows = [(time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(now - 600)), 'coder', 96.0, 'passed'),
            (time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now - 300)), 'tester', 80.0, 'failed'),
            (time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now - 7200)), 'tester', 10.0, 'failed')]
    conn.executemany('INSERT INTO verification_history (timestamp, agent_name, truth_score, verification_status) '
                     'VALUES (?, ?, ?, ?)', rows)
    conn.commit()
    conn.close()
    result = run_module('truth_info', {'app_dir': str(tmp_path), 'source': 'db', 'path': db, 'window': '1h'})
    assert result['status'] == 'ok'
    assert (result['total_verifications'], result['passed_verifications']) == (2, 1)
    assert result['overall'] == pytest.approx(0.88)
    assert agents_of(result) == pytest.approx({'coder': 0.96, 'tester': 0.80})


def test_db_without_verification_history_is_unsupported(tmp_path):
    app = make_app(tmp_path, reference_state=True)
    db = os.path.join(app, '.swarm', 'memory.db')
    memory_db_gen.generate(db, profile='reasoningbank', rows=200)
    result = run_module('truth_info', {'app_dir': app, 'source': 'db'})
    assert result['status'] == 'unsupported' and result['overall'] is None
    assert 'verification_history' in result['reason'] and 'state_file' in result['reason']
    auto = run_module('truth_info', {'app_dir': app})
    assert auto['source'] == 'cli' and auto['overall'] == pytest.approx(OVERALL)


def test_3x_has_no_truth(tmp_path):
    app = make_app(tmp_path, version='3.43.0')
    auto = run_module('truth_info', {'app_dir': app})
    assert (auto['status'], auto['overall'], auto['cli_version']) == ('unsupported', None, '3.43.0')
    assert 'no truth command' in auto['reason']
    cli = run_module('truth_info', {'app_dir': app, 'source': 'cli'})
    assert cli['status'] == 'unsupported' and cli['cli_command'] is None


def test_3x_with_a_leftover_state_file(tmp_path):
    app = make_app(tmp_path, version='3.43.0', reference_state=True)
    result = run_module('truth_info', {'app_dir': app})
    assert (result['status'], result['source']) == ('ok', 'state_file')
    assert result['overall'] == pytest.approx(OVERALL)
    assert 'earlier 2.x install' in result['reason']


def test_alpha_113_banner_is_2x(tmp_path):
    app = make_app(tmp_path, version='2.0.0-alpha.113', reference_state=True)
    result = run_module('truth_info', {'app_dir': app, 'source': 'cli'})
    assert (result['status'], result['cli_version']) == ('ok', '2.0.0-alpha.113')


@pytest.mark.parametrize('args, words', [
    ({'executable': 'npx claude-flow'}, ['npx', 'claude-flow@latest']),
    ({'threshold': 90}, ['threshold', '0.90']),
    ({'window': 'soon'}, ['window', '1h']),
    ({'timeout': 0}, ['timeout']),
])
def test_bad_options_fail_clearly(tmp_path, args, words):
    app = make_app(tmp_path, reference_state=True)
    result = run_module('truth_info', dict({'app_dir': app}, **args))
    assert result['failed'] is True
    for word in words:
        assert word in result['msg']


def test_missing_cli_is_an_error_status(tmp_path):
    result = run_module('truth_info', {'app_dir': str(tmp_path), 'source': 'cli'})
    assert result['_rc'] == 0 and result['status'] == 'error'
    assert 'node_modules/.bin/claude-flow' in result['reason']


def test_check_mode_reads_the_same(tmp_path):
    app = make_app(tmp_path, reference_state=True)
    result = run_module('truth_info', {'app_dir': app}, check_mode=True)
    assert result['changed'] is False and result['overall'] == pytest.approx(OVERALL)


def test_check_mode_on_2x_runs_no_cli_call_that_writes(tmp_path):
    app = make_app(tmp_path, reference_state=True)
    metrics = os.path.join(app, '.claude-flow', 'metrics')
    result = run_module('truth_info', {'app_dir': app}, check_mode=True)
    # The same scores, read from the state file `truth --json` reads, and nothing written under the app dir.
    assert (result['status'], result['source'], result['cli_command']) == ('ok', 'state_file', None)
    assert result['overall'] == pytest.approx(OVERALL) and not os.path.exists(metrics)
    assert 'check mode' in result['attempts'][-1]['outcome'] and '.claude-flow/metrics' in result['attempts'][-1]['outcome']
    cli = run_module('truth_info', {'app_dir': app, 'source': 'cli'}, check_mode=True)
    assert (cli['status'], cli['overall'], cli['cli_command']) == ('no_data', None, None)
    assert 'check mode' in cli['reason'] and 'source state_file' in cli['reason'] and not os.path.exists(metrics)
    # Outside check mode the (stand-in) CLI writes there, as the real 2.x does: the test above can fail.
    assert run_module('truth_info', {'app_dir': app, 'source': 'cli'})['status'] == 'ok'
    assert sorted(os.listdir(metrics)) == ['performance.json', 'system-metrics.json', 'task-metrics.json']


def test_check_mode_on_3x_may_still_ask_the_version(tmp_path):
    app = make_app(tmp_path, '3.43.0', reference_state=True)
    result = run_module('truth_info', {'app_dir': app}, check_mode=True)
    assert (result['status'], result['source'], result['cli_version']) == ('ok', 'state_file', '3.43.0')


@pytest.mark.parametrize('special', ['fifo', '/dev/zero'])
def test_special_state_file_is_an_error_status_without_blocking(tmp_path, special):
    app = make_app(tmp_path)
    state = os.path.join(app, '.swarm', 'verification-memory.json')
    os.makedirs(os.path.dirname(state))
    if special == 'fifo':
        os.mkfifo(state)
    else:
        os.symlink(special, state)
    started = time.monotonic()
    result = run_module('truth_info', {'app_dir': app, 'source': 'state_file'}, timeout=20)
    assert time.monotonic() - started < 15
    assert (result['_rc'], result['status'], result['overall']) == (0, 'error', None)
    assert ('FIFO' if special == 'fifo' else 'character device') in result['reason']


def test_oversized_state_file_is_refused_by_size(tmp_path):
    app = make_app(tmp_path)
    state = os.path.join(app, '.swarm', 'verification-memory.json')
    os.makedirs(os.path.dirname(state))
    with open(state, 'wb') as handle:
        handle.truncate(64 * 1024 * 1024)  # sparse: 64 MiB of zero bytes, no disk used
    result = run_module('truth_info', {'app_dir': app, 'source': 'state_file'})
    assert result['status'] == 'error' and 'more than the 16777216 bytes' in result['reason']


def test_non_utf8_state_file_reads_like_the_cli(tmp_path):
    app = make_app(tmp_path, raw_state="{}")
    with open(os.path.join(app, '.swarm', 'verification-memory.json'), 'wb') as handle:
        handle.write(b'{"history": [{"agentType": "\xff\xfe", "score": 0.5, "timestamp": "2026-11-28T05:00:00Z"}]}')
    from_file = run_module('truth_info', {'app_dir': app, 'source': 'state_file'})
    from_cli = run_module('truth_info', {'app_dir': app, 'source': 'cli'})
    for result in (from_file, from_cli):
        assert (result['status'], result['overall']) == ('ok', 0.5), result
        assert [a['agent'] for a in result['agents']] == [u'\ufffd\ufffd']


@pytest.mark.parametrize('window', ['1e400h', 'inf', 'nan', '-1h', '0', '3651d'])
def test_absurd_windows_fail_naming_the_range(tmp_path, window):
    app = make_app(tmp_path, reference_state=True)
    result = run_module('truth_info', {'app_dir': app, 'source': 'state_file', 'window': window})
    assert result['failed'] and '1s to 3650d' in result['msg']


FAKE_CLI = '''#!%s
import sys, time
if sys.argv[1:] == ['--version']:
    print('v2.7.47')
elif %r == 'text':
    print('\\n\\u26a0\\ufe0f No verification history found for agent: coder')
else:
    time.sleep(60)
'''


@pytest.mark.parametrize('behaviour, words', [
    ('text', ['printed no truth JSON', 'No verification history found']),
    ('hang', ['timed out after 1 s; process group killed (orphans: 0)']),
])
def test_cli_that_prints_text_or_hangs_is_an_error_status(tmp_path, behaviour, words):
    app = make_app(tmp_path, reference_state=True)
    fake = os.path.join(app, 'fake-claude-flow')
    with open(fake, 'w') as handle:
        handle.write(FAKE_CLI % (sys.executable, behaviour))
    os.chmod(fake, 0o755)
    started = time.monotonic()
    result = run_module('truth_info', {'app_dir': app, 'source': 'cli', 'executable': 'fake-claude-flow',
                                       'timeout': 1})
    assert time.monotonic() - started < 8
    assert (result['_rc'], result['status'], result['overall']) == (0, 'error', None)
    for word in words:
        assert word in result['reason']
