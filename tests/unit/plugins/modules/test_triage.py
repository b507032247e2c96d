"""triage: one module call reaches the right severity for the right reason, and unknown never breaches."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import REPO
from dbfactory import corrupt_db
from test_truth_info import entry, make_app

import memory_db_gen
from digests import tree_digests

from ansible_collections.claude_flow.runbook.plugins.filter.remediation_plan import remediation_plan as plan_filter
from ansible_collections.claude_flow.runbook.plugins.filter.severity import severity as severity_filter

APP = os.path.join(REPO, 'tests', 'lab', 'standins', 'app.py')
# The lab's scale: the runbook's 50k/100k/150k neural ops/sec cannot be observed in memory.db.
LAB_OPS = {'ops_per_second': {'P0': 0.05, 'P1': 0.1, 'P2': 0.15}}


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def host(tmp_path):
    """An app dir like production: generated DB, stand-in CLI with healthy history, log, running service."""
    history = [entry('t%d' % i, agent, 0.97, ago=60 + i) for i, agent in enumerate(['coder', 'tester', 'reviewer'] * 3)]
    app = make_app(tmp_path, history=history)
    db = os.path.join(app, '.swarm', 'memory.db')
    log = os.path.join(str(tmp_path), 'application.log')
    with open(log, 'w') as handle:
        handle.write('2026-11-28T07:00:00Z INFO api started\n' * 50 + '2026-11-28T07:01:00Z ERROR db slow\n')
    port = free_port()
    state = {'app': app, 'db': db, 'log': log, 'port': port, 'proc': None}

    def build(profile='runbook', **knobs):
        knobs.setdefault('ops_per_second', 0.3)
        for suffix in ('', '-wal', '-shm', '.growth.json'):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        memory_db_gen.generate(db, profile=profile, rows=4000, **knobs)

    def start():
        state['proc'] = subprocess.Popen([sys.executable, APP, '--app-dir', app, '--port', str(port), '--bind',
                                          '127.0.0.1', '--log', os.path.join(str(tmp_path), 'app.log')])
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                urllib.request.urlopen('http://127.0.0.1:%d/health' % port, timeout=1)
                return
            except Exception:
                time.sleep(0.1)

    state['build'], state['start'] = build, start
    yield state
    if state['proc']:
        state['proc'].kill()
        state['proc'].wait()


def triage(module, host, **extra):
    args = {'app_dir': host['app'], 'health_url': 'http://127.0.0.1:%d/health' % host['port'],
            'log_path': host['log'], 'thresholds': dict(LAB_OPS, **extra.pop('thresholds', {}))}
    args.update(extra)
    result = module('triage', args)
    assert not result.get('failed'), result
    return result


def metrics_of(result, severity):
    return sorted(r['metric'] for r in result['reasons'] if r['severity'] == severity)


def test_healthy_host_is_none(module, host):
    host['build']()
    host['start']()
    r = triage(module, host)
    assert r['severity'] == 'none', r['reasons']
    assert r['conditions'] == {'db_corrupt': False, 'service_down': False}
    assert r['metrics']['truth_score'] == pytest.approx(0.97, abs=0.01)
    assert r['details']['log']['counts']['error'] == 1
    assert r['recommended_playbook'] is None
    assert severity_filter(r, thresholds=LAB_OPS)['severity'] == 'none'


@pytest.mark.parametrize('knobs,expected,metric', [
    ({'truth_score': 0.80}, 'P0', 'truth_score'),
    ({'truth_score': 0.88}, 'P1', 'truth_score'),
    ({'truth_score': 0.93}, 'P2', 'truth_score'),
    ({'cache_hit': 0.40}, 'P1', 'cache_hit_rate'),
    ({'growth_mb_per_hour': 500}, 'P1', 'growth_mb_per_hour'),
    ({'goap_avg_ms': 250}, 'P2', 'goap_planning_ms'),
    ({'ops_per_second': 0.03}, 'P0', 'ops_per_second'),
])
def test_each_severity_is_reached_for_the_right_reason(module, host, knobs, expected, metric):
    host['build'](**knobs)
    host['start']()
    r = triage(module, host)
    assert r['severity'] == expected, r['reasons']
    assert metric in metrics_of(r, expected), r['reasons']
    reason = [x for x in r['reasons'] if x['metric'] == metric][0]
    assert reason['runbook'] and reason['action'] and reason['threshold'] is not None
    assert r['recommended_playbook'] == 'playbooks/%s_response.yml' % expected.lower()
    # The controller-side filters reach the same verdict and the same plan from the same facts.
    assert r['plan'] == plan_filter(r) and (r['plan'] != []) == (expected != 'none')
    again = severity_filter(r, thresholds=LAB_OPS)
    assert (again['severity'], again['reasons']) == (r['severity'], r['reasons'])


def test_p3_when_the_db_approaches_its_size_threshold(module, host):
    host['build']()
    host['start']()
    r = triage(module, host, thresholds={'db_size_bytes': {'P3': 1000}})
    assert r['severity'] == 'P3' and metrics_of(r, 'P3') == ['db_size_bytes']


def test_corrupt_db_and_service_down_are_p0(module, host):
    host['build']()
    corrupt_db(host['db'], 'overwritten_pages')
    r = triage(module, host)
    assert r['severity'] == 'P0'
    assert {'db_corrupt', 'service_down'} <= set(metrics_of(r, 'P0'))
    assert 'ops_per_second' in r['unknown'], 'metrics of a corrupt DB are unknown, not zero'
    # Recover the DB; the restart is part of the recovery, not a second action.
    assert [step['action'] for step in r['plan']] == ['recover_db'] and r['plan'] == plan_filter(r)


def test_unknown_metrics_never_raise_severity(module, host):
    # claude-flow 3.x: no truth command, no state file, DB without task_type: lots unknown, nothing bad.
    os.unlink(os.path.join(host['app'], '.swarm', 'verification-memory.json'))
    with open(os.path.join(host['app'], '.claude-flow-standin-version'), 'w') as handle:
        handle.write('3.43.0\n')
    host['build'](profile='v3')
    host['start']()
    r = triage(module, host, known_agents=None)
    assert r['severity'] == 'none', r['reasons']
    for metric in ('truth_score', 'goap_planning_ms', 'growth_mb_per_hour'):
        assert metric in r['unknown'] and r['metrics'].get(metric) is None


def test_check_mode_and_bad_thresholds(module, host):
    host['build']()
    r = module('triage', {'app_dir': host['app'], 'health_url': '', 'log_path': host['log'],
                          'thresholds': {'truth_score': {'P7': 1}}})
    assert r['failed'] and 'unknown severity' in r['msg']
    r = module('triage', {'app_dir': host['app'], 'health_url': '', 'log_path': host['log'],
                          'executable': 'npx claude-flow'})
    assert r['failed'] and 'npx' in r['msg']
    r = module('triage', {'app_dir': host['app'], 'health_url': '', 'log_path': host['log'],
                          'thresholds': LAB_OPS}, check_mode=True)
    assert r['changed'] is False and 'service_down' in r['unknown']
    assert not os.path.exists(host['db'] + '.growth.json')


# ------------------------------------------------------------------ unknown is not a breach

def quiet(host, tmp_path, **extra):
    """triage without the health probe, with empty backup/preserve dirs of its own."""
    args = {'backup_dir': str(tmp_path / 'backups'), 'preserve_dir': str(tmp_path / 'preserved'), 'health_url': ''}
    args.update(extra)
    return args


def test_fresh_install_without_a_db_is_not_data_loss(module, host, tmp_path):
    # A real fresh install: .swarm/ holds the truth state but no memory.db until the first `memory store`.
    r = triage(module, host, **quiet(host, tmp_path))
    assert r['severity'] != 'P0' and 'db_missing' not in metrics_of(r, 'P0'), r['reasons']
    assert r['details']['db_state'] == 'not_created'
    assert r['conditions'].get('db_missing') is None
    assert 'not created yet' in r['unknown']['db_missing'] and 'memory store' in r['unknown']['db_missing']
    again = severity_filter(r, thresholds=LAB_OPS)
    assert (again['severity'], again['reasons']) == (r['severity'], r['reasons'])


def test_a_path_typo_is_a_configuration_problem(module, host, tmp_path):
    typo = os.path.join(host['app'], '.swram', 'memory.db')
    r = triage(module, host, path=typo, **quiet(host, tmp_path))
    assert r['severity'] != 'P0', r['reasons']
    assert r['details']['db_state'] == 'config'
    assert 'configuration problem' in r['unknown']['db_missing'] and '.swram' in r['unknown']['db_missing']
    assert severity_filter(r, thresholds=LAB_OPS)['severity'] == r['severity']


@pytest.mark.parametrize('evidence', ['backup', 'preserved', 'growth', 'wal'])
def test_a_db_that_existed_and_is_gone_is_still_p0(module, host, tmp_path, evidence):
    host['build']()
    args = quiet(host, tmp_path)
    if evidence == 'backup':
        os.makedirs(os.path.join(args['backup_dir'], '20261128T050000Z'))
        open(os.path.join(args['backup_dir'], '20261128T050000Z', 'memory.db.backup'), 'w').close()
    elif evidence == 'preserved':
        os.makedirs(os.path.join(args['preserve_dir'], 'memory.db-20261128T050000Z-1'))
        open(os.path.join(args['preserve_dir'], 'memory.db-20261128T050000Z-1', 'MANIFEST.json'), 'w').close()
    elif evidence == 'growth':
        open(host['db'] + '.growth.json', 'w').close()
    else:
        open(host['db'] + '-wal', 'w').close()
    os.unlink(host['db'])
    r = triage(module, host, **args)
    assert r['severity'] == 'P0' and 'db_missing' in metrics_of(r, 'P0'), r['reasons']
    assert r['details']['db_state'] == 'missing'
    assert severity_filter(r, thresholds=LAB_OPS)['severity'] == 'P0'


def test_a_production_symlink_to_a_deleted_release_is_still_p0(module, host, tmp_path):
    # p0_response repoints such a link at a release with a verified backup: it must see db_missing.
    link = str(tmp_path / 'current')
    os.symlink(str(tmp_path / 'release-deleted'), link)
    r = triage(module, host, app_dir=link, path=os.path.join(link, '.swarm', 'memory.db'), **quiet(host, tmp_path))
    assert r['severity'] == 'P0' and 'db_missing' in metrics_of(r, 'P0'), r['reasons']
    assert r['details']['db_state'] == 'missing'


def test_a_db_path_that_is_a_fifo_is_a_configuration_problem(module, host, tmp_path):
    os.mkfifo(host['db'])
    started = time.monotonic()
    r = triage(module, host, **quiet(host, tmp_path))
    assert time.monotonic() - started < 30
    assert r['severity'] != 'P0' and r['details']['db_state'] == 'config', r['reasons']
    assert 'FIFO' in r['unknown']['db_missing']


def test_idle_db_has_no_cache_hit_rate_and_no_ops_rate(module, host, tmp_path):
    host['build']()
    memory_db_gen.make_idle(host['db'])  # nothing used a pattern in the window, one trajectory is all there is
    r = triage(module, host, **quiet(host, tmp_path))
    assert r['severity'] == 'none', r['reasons']
    assert r['metrics']['cache_hit_rate'] is None and r['unknown']['cache_hit_rate'].startswith('idle: no pattern lookup')
    assert r['metrics']['ops_per_second'] is None and r['unknown']['ops_per_second'].startswith('idle: 1 trajectory')
    assert r['unknown']['goap_planning_ms'].startswith('idle:')


# ------------------------------------------------------------------ operator input

def test_fifo_log_and_registry_are_unknown_without_blocking(module, host, tmp_path):
    host['build']()
    fifo_log = str(tmp_path / 'fifo.log')
    os.mkfifo(fifo_log)
    registry = str(tmp_path / 'quarantine.json')
    os.mkfifo(registry)
    started = time.monotonic()
    r = triage(module, host, log_path=fifo_log, registry=registry, **quiet(host, tmp_path))
    assert time.monotonic() - started < 30
    assert 'FIFO' in r['unknown']['log_size_bytes'] and r['metrics']['log_size_bytes'] is None
    assert 'FIFO' in r['unknown']['quarantined_ratio']
    assert r['severity'] == 'none', r['reasons']


def test_huge_log_is_read_only_at_its_tail(module, host, tmp_path):
    host['build']()
    log = str(tmp_path / 'huge.log')
    with open(log, 'wb') as handle:
        handle.truncate(2 * 1024 ** 3)                 # 2 GiB, sparse: one endless line of NUL bytes
        handle.seek(0, os.SEEK_END)
        handle.write(b'\nINFO ok\n' * 3 + b'FATAL \xff\xfe disk gone\n')
    r = triage(module, host, log_path=log, **quiet(host, tmp_path))
    assert r['metrics']['log_size_bytes'] == os.path.getsize(log)
    assert r['details']['log']['bytes_read'] <= 4 * 1024 * 1024
    assert r['details']['log']['counts'] == {'critical': 0, 'error': 0, 'fatal': 1}
    assert r['severity'] == 'P3' and metrics_of(r, 'P3') == ['log_size_bytes']


@pytest.mark.parametrize('args, words', [
    ({'window': '1e400h'}, ['window', '1s to 3650d']),
    ({'window': 'inf'}, ['window', '1s to 3650d']),
    ({'window': 'nan'}, ['window', '1s to 3650d']),
    ({'window': '-1h'}, ['window', '1s to 3650d']),
    ({'window': '0'}, ['window', '1s to 3650d']),
    ({'log_lines': 0}, ['log_lines must be between 1 and 100000 lines']),
    ({'log_lines': 10 ** 12}, ['log_lines must be between 1 and 100000 lines']),
    ({'health_timeout': 0}, ['health_timeout must be between 1 and 300 seconds']),
    ({'busy_timeout': -1}, ['busy_timeout must be between 0 and 600000 milliseconds']),
    ({'integrity_check_max_bytes': -1}, ['integrity_check_max_bytes must be between 0 and']),
    ({'timeout': 10 ** 9}, ['timeout must be between 1 and 86400 seconds']),
])
def test_out_of_range_options_name_the_range(module, host, tmp_path, args, words):
    r = module('triage', dict(quiet(host, tmp_path, app_dir=host['app'], log_path=host['log']), **args))
    assert r['failed'] and r['_rc'] == 1, r
    for word in words:
        assert word in r['msg'], r['msg']


def test_check_mode_on_2x_writes_nothing_under_the_app_dir(module, host, tmp_path):
    host['build'](profile='reasoningbank')  # claude-flow 2.7's schema: truth scores only in the state file
    before = tree_digests(host['app'])
    r = module('triage', quiet(host, tmp_path, app_dir=host['app'], log_path=host['log'], thresholds=LAB_OPS),
               check_mode=True)
    assert not r.get('failed') and r['changed'] is False, r
    assert r['metrics']['truth_score'] == pytest.approx(0.97, abs=0.01)
    assert r['details']['truth']['source'] == 'state_file'
    assert tree_digests(host['app']) == before
