# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault matrix, behaviour of the real claude-flow 2.7.47 / 3.43.0 CLIs that earlier stand-ins hid:

- every 2.x call but --version rewrites files under <app>/.claude-flow/metrics/ (the stand-in now does
  too), so check mode must not call it: the app dir is listed with sha256 before and after;
- `neural` that runs nothing must not return an rc Ansible reads as failure (any rc present and not 0,
  null included): checked through a real ansible-playbook run;
- a fresh install has no .swarm/memory.db, and an idle host has no lookups in the window: neither is
  a breach.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

# run_module: each real run preceded by its check-mode twin
from conftest import COLLECTIONS, REPO, PriorState, compare_check, crash_in, gen, make_db, record_check, run_module
from digests import tree_digests

STANDIN = os.path.join(REPO, 'tests', 'lab', 'standins', 'claude-flow')
LAB_OPS = {'ops_per_second': {'P0': 0.05, 'P1': 0.1, 'P2': 0.15}}


def iso(seconds_ago=60):
    return time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime(time.time() - seconds_ago))


@pytest.fixture
def app(tmp_path, fault):
    """A claude-flow 2.7.47 deployment: the stand-in CLI, a healthy truth state, no memory.db yet."""
    fault.scrub(tmp_path)
    app_dir = str(tmp_path / 'app')
    os.makedirs(os.path.join(app_dir, 'node_modules', '.bin'))
    os.makedirs(os.path.join(app_dir, '.swarm'))
    shutil.copy(STANDIN, os.path.join(app_dir, 'node_modules', '.bin', 'claude-flow'))
    with open(os.path.join(app_dir, '.claude-flow-standin-version'), 'w') as handle:
        handle.write('2.7.47\n')
    history = [{'taskId': 't%d' % i, 'agentType': agent, 'score': 0.97, 'passed': True, 'timestamp': iso(60 + i)}
               for i, agent in enumerate(['coder', 'tester', 'reviewer'] * 3)]
    with open(os.path.join(app_dir, '.swarm', 'verification-memory.json'), 'w') as handle:
        json.dump({'scores': [], 'history': history}, handle)
    return app_dir


def changed(before, after):
    return sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))


def triage_args(app, tmp_path, **extra):
    args = {'app_dir': app, 'health_url': '', 'log_path': str(tmp_path / 'none.log'), 'thresholds': LAB_OPS,
            'backup_dir': str(tmp_path / 'backups'), 'preserve_dir': str(tmp_path / 'preserved')}
    args.update(extra)
    return args


def playbook(tmp_path, tasks, check=False):
    """Run tasks on localhost with the real ansible-playbook; {task name: result} from the json callback."""
    book = tmp_path / 'play.yml'
    book.write_text(json.dumps([{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}]))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
               ANSIBLE_STDOUT_CALLBACK='json')
    command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
               '-e', 'ansible_python_interpreter=%s' % sys.executable, str(book)]
    if check:
        record_check(('check-mode case', ''))
    else:
        # the check-mode twin first: no crash, the same outcome (the tasks write nothing here either way)
        twin = subprocess.run(command + ['--check'], env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
                              check=False)
        assert not crash_in(twin.stdout + twin.stderr), crash_in(twin.stdout + twin.stderr)
    proc = subprocess.run(command + (['--check'] if check else []), env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False)
    if not check:
        record_check(compare_check(twin.returncode != 0, twin.stderr, proc.returncode != 0, proc.stderr))
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError('ansible-playbook printed no JSON: %s %s' % (proc.stdout[-2000:], proc.stderr[-2000:]))
    results = {}
    for play in report['plays']:
        for task in play['tasks']:
            results[task['task']['name']] = task['hosts']['localhost']
    return proc.returncode, results


@pytest.mark.fault('real-CLI behaviour', 'truth_info in check mode on 2.x (every 2.x call writes .claude-flow/metrics)')
def test_truth_info_check_mode_writes_nothing(app, fault):
    before = tree_digests(app)
    result = run_module('truth_info', {'app_dir': app}, check_mode=True)
    after = tree_digests(app)
    assert (result['status'], result['source'], result['cli_command']) == ('ok', 'state_file', None), result
    assert changed(before, after) == []
    # The control: outside check mode the same call writes, as the real 2.x CLI does.
    outside = run_module('truth_info', {'app_dir': app})
    written = changed(after, tree_digests(app))
    assert outside['source'] == 'cli' and '.claude-flow/metrics/performance.json' in written
    fault.did('check mode: same score (%.2f) from the state file, app dir identical (full listing + sha256); '
              'outside check mode truth --json wrote %d paths under .claude-flow/' % (result['overall'], len(written)))


@pytest.mark.fault('real-CLI behaviour', 'triage in check mode on 2.x writes nothing under the app dir')
def test_triage_check_mode_writes_nothing(app, fault, tmp_path):
    make_db(os.path.join(app, '.swarm', 'memory.db'), profile='reasoningbank')
    prior = PriorState(os.path.join(app, '.swarm', 'memory.db'))
    before = tree_digests(app)
    result = run_module('triage', triage_args(app, tmp_path), check_mode=True)
    assert not result.get('failed') and result['changed'] is False, result
    assert result['details']['truth']['source'] == 'state_file' and result['metrics']['truth_score'] > 0.9
    assert changed(before, tree_digests(app)) == []  # no .claude-flow/metrics, no growth sample, no -wal/-shm
    fault.lost(prior.lost())
    fault.did('severity %s; truth score read from the state file; app dir identical (no .claude-flow/metrics, no '
              'growth sample, no -wal/-shm)' % result['severity'])


@pytest.mark.fault('real-CLI behaviour', 'neural status and patterns on 2.x (nothing to run): no rc, task ok')
def test_neural_unsupported_is_not_a_failed_task(app, fault, tmp_path):
    rc, results = playbook(tmp_path, [
        {'name': 'status', 'claude_flow.runbook.neural': {'app_dir': app, 'command': 'status'}},
        {'name': 'patterns', 'claude_flow.runbook.neural': {'app_dir': app, 'command': 'patterns'}}])
    for name in ('status', 'patterns'):
        result = results[name]
        assert not result.get('failed') and 'rc' not in result, result
        assert result['status'] == 'unsupported' and 'Unknown neural subcommand' in result['reason']
    assert rc == 0
    fault.did('ansible-playbook rc 0, both tasks ok with status unsupported and no rc (an rc of null read as '
              '"failed: Unknown error"): "%s"' % fault.clip(results['status']['reason'], 160))


@pytest.mark.fault('real-CLI behaviour', 'neural train in check mode on 2.x: runs nothing, no rc, writes nothing')
def test_neural_train_check_mode(app, fault, tmp_path):
    before = tree_digests(app)
    rc, results = playbook(tmp_path, [
        {'name': 'train', 'claude_flow.runbook.neural': {'app_dir': app, 'command': 'train', 'epochs': 5}}],
        check=True)
    result = results['train']
    assert rc == 0 and not result.get('failed') and 'rc' not in result, result
    assert result['would_run'][1:] == ['training', 'neural-train', '--data', 'recent', '--epochs', '5']
    assert changed(before, tree_digests(app)) == []
    fault.did('ansible-playbook --check rc 0; would_run %s; no rc; app dir identical'
              % ' '.join(result['would_run'][1:]))


@pytest.mark.fault('real-CLI behaviour', 'Fresh install: no .swarm/memory.db until the first memory store')
def test_fresh_install_is_not_data_loss(app, fault, tmp_path):
    result = run_module('triage', triage_args(app, tmp_path))
    assert not result.get('failed'), result
    assert result['severity'] != 'P0' and result['details']['db_state'] == 'not_created', result['reasons']
    assert 'not created yet' in result['unknown']['db_missing']
    fault.did('severity %s, db_missing unknown (p0_response does not stop the service): "%s"'
              % (result['severity'], fault.clip(result['unknown']['db_missing'], 200)))


@pytest.mark.fault('real-CLI behaviour', 'Idle host: no pattern lookup and one trajectory in the window')
def test_idle_host_is_not_p1(app, fault, tmp_path):
    gen.make_idle(make_db(os.path.join(app, '.swarm', 'memory.db'), profile='reasoningbank'))
    result = run_module('triage', triage_args(app, tmp_path))
    assert result['severity'] == 'none', result['reasons']
    assert result['unknown']['cache_hit_rate'].startswith('idle:')
    assert result['unknown']['ops_per_second'].startswith('idle:')
    fault.did('severity none; cache_hit_rate "%s"; ops_per_second "%s"'
              % (result['unknown']['cache_hit_rate'], result['unknown']['ops_per_second']))


@pytest.mark.fault('real-CLI behaviour', 'Installed version from package.json: no node start-up for --version')
def test_version_from_package_json(app, fault, tmp_path):
    calls = str(tmp_path / 'calls')
    wrapper = os.path.join(app, 'node_modules', '.bin', 'claude-flow')
    os.rename(wrapper, wrapper + '.real')
    with open(wrapper, 'w') as handle:
        handle.write('#!/bin/sh\necho "$*" >> %s\nexec "$0.real" "$@"\n' % calls)
    os.chmod(wrapper, 0o755)
    os.makedirs(os.path.join(app, 'node_modules', 'claude-flow'))
    with open(os.path.join(app, 'node_modules', 'claude-flow', 'package.json'), 'w') as handle:
        json.dump({'name': 'claude-flow', 'version': '2.7.47'}, handle)
    result = run_module('truth_info', {'app_dir': app, 'source': 'cli'})
    with open(calls) as handle:
        started = handle.read().split('\n')
    assert result['status'] == 'ok' and result['cli_version'] == '2.7.47'
    assert [line for line in started if line] == ['truth --json']
    fault.did('one CLI start (truth --json) instead of two: the version came from node_modules/claude-flow/package.json')
