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
    assert r['recommended_playbook'] == 'playbooks/%s-response.yml' % expected.lower()
    # The controller-side filter reaches the same verdict from the same facts.
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
