# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""neural as a real module process against the claude-flow stand-in (2.7.47 and 3.43.0)."""

import json
import os
import time
import uuid

import pytest

from process_scan import processes_with
from test_truth_info import make_app

from conftest import run_module


def test_status_on_3x_parses_the_component_table(tmp_path):
    app = make_app(tmp_path, '3.43.0')
    result = run_module('neural', {'app_dir': app, 'command': 'status'})
    assert (result['_rc'], result['changed'], result['status'], result['cli_version']) == (0, False, 'ok', '3.43.0')
    assert result['cli_command'][1:] == ['neural', 'status']
    components = result['components']
    assert len(components) == 12
    assert components['SONA Coordinator'] == {'status': 'Active', 'details': u'Adaptation: 2.15\u03bcs avg'}
    assert components['Embedding Model']['status'] == 'Loaded'
    assert components['ruvllm Coordinator']['details'] == 'SonaCoordinator | 0 trajectories'
    assert result['summary'] == {'Active': 4, 'Not loaded': 2, 'Available': 5, 'Loaded': 1}


def test_patterns_on_3x(tmp_path):
    app = make_app(tmp_path, '3.43.0')
    result = run_module('neural', {'app_dir': app, 'command': 'patterns'})
    assert result['status'] == 'ok' and result['changed'] is False
    assert result['patterns'] == [{'id': 'step_1795849448722', 'type': 'action', 'confidence': 1.0, 'usage': 9}] * 2
    assert (result['total_patterns'], result['trajectories']) == (2, 3)


@pytest.mark.parametrize('command', ['status', 'patterns'])
def test_status_and_patterns_are_unsupported_on_2x(tmp_path, command):
    app = make_app(tmp_path, '2.7.47')
    result = run_module('neural', {'app_dir': app, 'command': command})
    assert (result['_rc'], result['changed'], result['status']) == (0, False, 'unsupported')
    assert 'Unknown neural subcommand' in result['reason'] and '2.7.47' in result['reason']
    assert result['cli_command'] is None  # nothing was run
    # Ansible fails any result whose rc is present and not 0, null included: nothing ran, so no rc.
    assert 'rc' not in result


def test_train_on_3x_has_no_data_option(tmp_path):
    app = make_app(tmp_path, '3.43.0')
    os.makedirs(os.path.join(app, '.swarm'))
    open(os.path.join(app, '.swarm', 'memory.db'), 'w').close()  # a project, where 3.x would start a daemon
    result = run_module('neural', {'app_dir': app, 'command': 'train', 'epochs': 7, 'data': 'recent'})
    assert (result['changed'], result['status']) == (True, 'ok')
    assert result['cli_command'][1:] == ['neural', 'train', '--epochs', '7']
    assert result['metrics']['Epochs'] == '7' and result['metrics']['Final Loss'] == '1.616e-3'
    assert 'data is ignored' in json.dumps(result.get('warnings'))  # a list of str or of structured warnings
    assert not os.path.exists(os.path.join(app, '.claude-flow', 'daemon.pid'))  # RUFLO_DAEMON_AUTOSTART=0


def test_train_on_2x_success(tmp_path):
    app = make_app(tmp_path)
    result = run_module('neural', {'app_dir': app, 'command': 'train', 'epochs': 20},
                        env={'CLAUDE_FLOW_STANDIN_TRAIN': 'ok'})
    assert (result['changed'], result['status'], result['rc']) == (True, 'ok', 0)
    assert result['cli_command'][1:] == ['training', 'neural-train', '--data', 'recent', '--epochs', '20']
    assert result['metrics']['Epochs completed'] == '20'
    assert 'Final accuracy' in result['metrics']


def test_train_unavailable_on_2x_fails_despite_rc_0(tmp_path):
    app = make_app(tmp_path)
    result = run_module('neural', {'app_dir': app, 'command': 'train', 'data': 'goap_heuristics'},
                        env={'CLAUDE_FLOW_STANDIN_TRAIN': 'unavailable'})
    assert (result['failed'], result['rc'], result['status']) == (True, 0, 'error')
    assert u'\u274c ruv-swarm is not available' in result['msg']
    assert result['cli_command'][3:5] == ['--data', 'goap_heuristics']


def test_train_hang_is_killed_within_the_timeout(tmp_path):
    app = make_app(tmp_path)
    marker = 'CF_TEST_%s' % uuid.uuid4().hex
    started = time.monotonic()
    result = run_module('neural', {'app_dir': app, 'command': 'train', 'timeout': 3}, env={marker: '1'})
    elapsed = time.monotonic() - started
    assert (result['failed'], result['changed'], result['status']) == (True, True, 'error')
    assert 'timed out after 3 s; process group killed' in result['msg']
    assert (result['timed_out'], result['orphans']) == (True, 0)
    assert elapsed < 3 + 6, elapsed  # timeout + SIGTERM grace + module start-up
    assert processes_with(marker) == []


def test_check_mode_train_runs_nothing(tmp_path):
    app = make_app(tmp_path)
    started = time.monotonic()
    # Without CLAUDE_FLOW_STANDIN_TRAIN the stand-in would hang: check mode must not start it.
    result = run_module('neural', {'app_dir': app, 'command': 'train', 'epochs': 5}, check_mode=True)
    assert time.monotonic() - started < 5
    assert (result['changed'], result['cli_command']) == (True, None)
    assert result['would_run'] == [os.path.join(app, 'node_modules', '.bin', 'claude-flow'),
                                   'training', 'neural-train', '--data', 'recent', '--epochs', '5']
    assert 'rc' not in result
    # ... and nothing under the app dir changed: 2.x writes .claude-flow/metrics on every call but --version.
    assert not os.path.exists(os.path.join(app, '.claude-flow'))


@pytest.mark.parametrize('epochs', [0, -1, 10001, 10 ** 18])
def test_epochs_range_is_named(tmp_path, epochs):
    app = make_app(tmp_path)
    result = run_module('neural', {'app_dir': app, 'command': 'train', 'epochs': epochs}, check_mode=True)
    assert result['failed'] and 'epochs must be between 1 and 10000' in result['msg']


def test_status_on_3x_in_check_mode_runs_nothing(tmp_path):
    # 3.x `neural status` downloads an embedding model on first use and caches it: not a read.
    app = make_app(tmp_path, '3.43.0')
    result = run_module('neural', {'app_dir': app}, check_mode=True)
    assert (result['changed'], result['status'], result['cli_command']) == (False, 'not_run', None)
    assert result['would_run'] == [os.path.join(app, 'node_modules', '.bin', 'claude-flow'), 'neural', 'status']
    assert 'downloads an embedding model' in result['reason'] and 'rc' not in result


@pytest.mark.parametrize('args, words', [
    ({'executable': 'npx'}, ['npx', 'claude-flow@latest']),
    ({'command': 'train', 'data': '--epochs'}, ['data', 'recent']),
    ({'command': 'train', 'data': 'x; reboot'}, ['data']),
    ({'command': 'train', 'epochs': 0}, ['epochs']),
    ({'timeout': -1}, ['timeout']),
])
def test_bad_options_fail_clearly(tmp_path, args, words):
    app = make_app(tmp_path)
    result = run_module('neural', dict({'app_dir': app}, **args))
    assert result['failed'] is True
    for word in words:
        assert word in result['msg']


def test_missing_install_names_the_fix(tmp_path):
    result = run_module('neural', {'app_dir': str(tmp_path)})
    assert result['failed'] and 'node_modules/.bin/claude-flow' in result['msg'] and 'never npx' in result['msg']
