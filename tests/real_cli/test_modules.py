# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""truth_info, neural, agent_quarantine and triage as real module processes against the real claude-flow
2.7.47 and 3.43.0, each answer compared with what the real CLI and sqlite3 print for the same state."""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import REPO, truth_json

TABLE_ROW = re.compile(r'^\| *([^|]+?) *\| *([^|]+?) *\|', re.M)


def agents_of(result):
    return dict((item['agent'], item['score']) for item in result['agents'])


def tables(app):
    return app.sqlite3("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").split()


# ------------------------------------------------------------------------------------------ truth_info

@pytest.mark.parametrize('source', ['cli', 'state_file', 'auto'])
def test_truth_info_2x_matches_truth_json(app, source):
    release = app('2.7.47', 'history')
    printed = truth_json(release)
    result = release.module('truth_info', source=source, threshold=0.85)
    assert result['status'] == 'ok', result
    assert result['overall'] == pytest.approx(printed['averageScore'])
    assert agents_of(result) == pytest.approx(printed['agentReliability'])
    assert (result['total_verifications'], result['passed_verifications']) == \
        (printed['totalVerifications'], printed['passedVerifications'])
    assert result['source'] == ('cli' if source == 'auto' else source)


def test_truth_info_2x_state_the_real_cli_wrote(app):
    """A state file the real CLI wrote itself (`verify verify`), read by the CLI and by the state_file source."""
    release = app('2.7.47', 'cli')
    printed = truth_json(release)
    for source in ('cli', 'state_file'):
        result = release.module('truth_info', source=source)
        assert (result['status'], result['overall']) == ('ok', pytest.approx(printed['averageScore'])), result
        assert agents_of(result) == pytest.approx(printed['agentReliability'])


def test_truth_info_2x_no_state_is_no_data_where_the_cli_prints_zero(app):
    release = app('2.7.47')
    printed = truth_json(release)
    assert (printed['totalVerifications'], printed['averageScore']) == (0, 0)
    result = release.module('truth_info', source='cli')
    assert (result['status'], result['overall']) == ('no_data', None), result


def test_truth_info_db_source_on_real_databases(app):
    """No release has verification_history: the db source says so, as sqlite3 shows."""
    for version in ('2.7.47', '3.43.0'):
        release = app(version, 'cli')
        assert 'verification_history' not in tables(release)
        result = release.module('truth_info', source='db')
        assert result['status'] == 'unsupported' and result['overall'] is None, result
        assert 'verification_history' in result['reason']


def test_truth_info_3x_has_no_truth_command(app):
    release = app('3.43.0', 'cli')
    stdout, stderr, rc = release.cli('truth', '--json')
    assert (rc, stderr.strip()) == (1, '[ERROR] Unknown command: truth')
    auto = release.module('truth_info', source='auto')
    assert (auto['status'], auto['overall'], auto['cli_version']) == ('unsupported', None, '3.43.0'), auto
    cli = release.module('truth_info', source='cli')
    assert cli['status'] == 'unsupported' and 'no truth command' in cli['reason'], cli


@pytest.mark.parametrize('module, args', [
    ('truth_info', {'source': 'cli'}),
    ('truth_info', {'source': 'auto'}),
    ('truth_info', {'source': 'state_file'}),
    ('triage', {'health_url': 'http://127.0.0.1:9/health', 'log_path': '/nonexistent/app.log'}),
])
def test_check_mode_writes_nothing_under_the_app_dir_2x(app, module, args):
    release = app('2.7.47', 'history')
    release.cli('--version')   # --version is the one 2.x call that writes nothing
    before = release.snapshot()
    result = release.module(module, check_mode=True, **args)
    assert not result.get('failed'), result
    after = release.snapshot()
    assert sorted(set(after) - set(before)) == [] and \
        [path for path in before if before[path] != after.get(path)] == []


def test_a_real_2x_call_rewrites_metrics_files(app):
    """Why check mode must not call it: even `truth --json` writes under .claude-flow/metrics/."""
    release = app('2.7.47', 'history')
    before = release.snapshot()
    release.cli('truth', '--json')
    changed = sorted(path for path, value in release.snapshot().items() if before.get(path) != value)
    assert [path for path in changed if path.startswith('.claude-flow/metrics/')], changed


# ------------------------------------------------------------------------------------------ neural

def neural_rows(text):
    """Component -> status of the real `neural status` table, read independently of the module."""
    rows = dict(TABLE_ROW.findall(text))
    rows.pop('Component', None)
    return rows


def test_neural_3x_status_matches_the_printed_table(app):
    release = app('3.43.0', 'cli')
    stdout, _stderr, rc = release.cli('neural', 'status')
    assert rc == 0
    result = release.module('neural', command='status')
    assert (result['status'], result['cli_version'], result['changed']) == ('ok', '3.43.0', False), result
    assert dict((name, row['status']) for name, row in result['components'].items()) == neural_rows(stdout)


def test_neural_3x_patterns_and_train(app):
    release = app('3.43.0', 'cli')
    trained = release.module('neural', command='train', epochs=2)
    assert (trained['status'], trained['changed'], trained['timed_out']) == ('ok', True, False), trained
    assert trained['metrics'].get('Epochs') == '2', trained['metrics']
    stdout, _stderr, rc = release.cli('neural', 'patterns')
    assert rc == 0
    total = re.search(r'Total: (\d+) patterns .*\| Trajectories: (\d+)', stdout)
    result = release.module('neural', command='patterns')
    assert result['status'] == 'ok', result
    assert (result['total_patterns'], result['trajectories']) == (int(total.group(1)), int(total.group(2)))
    assert len(result['patterns']) == len([row for row in TABLE_ROW.findall(stdout) if row[0] != 'ID'])
    # RUFLO_DAEMON_AUTOSTART=0: training in a project with a memory.db left no background daemon
    assert not daemons_for(release.path)


def daemons_for(path):
    found = []
    for pid in os.listdir('/proc'):
        if pid.isdigit():
            try:
                with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                    argv = handle.read().split(b'\0')
            except OSError:
                continue
            if b'daemon' in argv and path.encode() in b' '.join(argv):
                found.append(int(pid))
    return found


def test_neural_2x_status_is_unsupported_where_the_cli_fails(app):
    release = app('2.7.47', 'history')
    _stdout, stderr, rc = release.cli('neural', 'status')
    assert (rc, stderr) == (1, 'Unknown neural subcommand: status\n')
    result = release.module('neural', command='status')
    assert (result['status'], result['cli_version']) == ('unsupported', '2.7.47'), result
    assert result['cli_command'] is None   # not called: the module knows 2.x has no neural status


@pytest.mark.parametrize('command', ['status', 'patterns'])
def test_neural_2x_unsupported_is_not_a_failed_task_in_ansible(app, command):
    release = app('2.7.47', 'history')
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), 'ansible'), 'localhost', '-c', 'local', '-i', 'localhost,',
         '-e', 'ansible_python_interpreter=%s' % sys.executable, '-m', 'claude_flow.runbook.neural',
         '-a', json.dumps({'app_dir': release.path, 'command': command})],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False, timeout=300,
        env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1'))
    assert proc.returncode == 0 and 'FAILED' not in proc.stdout, proc.stdout


def _with_arg(marker):
    """Processes whose working directory is under marker (the CLI runs with cwd = app dir, and so do the
    npx / ruv-swarm children it starts)."""
    found = []
    for pid in os.listdir('/proc'):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                if os.readlink('/proc/%s/cwd' % pid).startswith(marker):
                    found.append(int(pid))
            except OSError:
                continue
    return found


def test_neural_2x_train_hangs_for_real_and_the_group_is_killed(app):
    """2.x training calls `npx ruv-swarm --version`, which never exits: the module kills the whole group."""
    release = app('2.7.47', 'history')
    started = time.monotonic()
    result = release.module('neural', command='train', data='recent', epochs=1, timeout=15)
    took = time.monotonic() - started
    assert result.get('failed') and (result['status'], result['timed_out']) == ('error', True), result
    assert 'timed out after 15 s; process group killed' in result['msg']
    assert result['orphans'] == 0 and result['changed'] is True
    assert 'Starting neural training' in result['stdout']
    assert took < 15 + 60
    assert _with_arg(release.path) == []   # nothing of the CLI's group runs in the app dir any more


# ------------------------------------------------------------------------------------------ agent_quarantine

@pytest.mark.parametrize('version, state', [('2.7.47', 'history'), ('2.7.47', 'cli')])
def test_agent_quarantine_counts_the_agents_the_cli_reports(app, version, state):
    release = app(version, state)
    agents = truth_json(release)['agentReliability']
    victim = sorted(agents)[0]
    before = release.snapshot()
    preview = release.module('agent_quarantine', check_mode=True, agent=victim, reason='truth below 0.90')
    assert preview['changed'] is True and release.snapshot() == before, preview
    result = release.module('agent_quarantine', agent=victim, reason='truth below 0.90')
    assert result['changed'] is True, result
    assert result['quarantined_ratio'] == pytest.approx(1.0 / len(agents))
    assert sorted(result['known_agents']) == sorted(agents)
    again = release.module('agent_quarantine', agent=victim, reason='truth below 0.90')
    assert again['changed'] is False


def test_agent_quarantine_3x_without_verification_state(app):
    release = app('3.43.0', 'cli')
    result = release.module('agent_quarantine', agent='coder', reason='manual')
    assert result['changed'] is True and result['quarantined_ratio'] is None, result
    given = release.module('agent_quarantine', state='query', known_agents=['coder', 'tester'])
    assert given['quarantined_ratio'] == pytest.approx(0.5), given


# ------------------------------------------------------------------------------------------ triage

@pytest.mark.parametrize('version, profile', [('2.7.47', 'reasoningbank'), ('3.43.0', 'v3')])
def test_triage_on_a_database_the_real_cli_made(app, version, profile):
    release = app(version, 'cli')
    result = release.module('triage', health_url='http://127.0.0.1:9/health', log_path='/nonexistent/app.log')
    assert not result.get('failed'), result
    details = result['details']
    assert details['schema_profile'] == profile
    assert details['integrity']['ok'] is (release.sqlite3('PRAGMA integrity_check').strip() == 'ok') is True
    assert details['integrity']['journal_mode'] == release.sqlite3('PRAGMA journal_mode').strip() == 'wal'
    # every pattern there is was created just now by the CLI (3.x leaves the table empty: unavailable)
    assert details['db']['patterns_created_24h'] == (int(release.sqlite3('SELECT count(*) FROM patterns')) or None)
    assert details['db']['db_size_bytes'] == os.path.getsize(release.db)
    # an idle feature is unknown, never a breach
    assert {'ops_per_second', 'cache_hit_rate'} <= set(result['unknown'])
    if version.startswith('2.'):
        printed = truth_json(release)
        assert result['metrics']['truth_score'] == pytest.approx(printed['averageScore'])
        assert result['metrics']['agent_score'] == pytest.approx(printed['agentReliability'])
    else:
        assert details['truth']['status'] == 'unsupported', details['truth']
        assert result['metrics'].get('truth_score') is None and 'truth_score' in result['unknown']
