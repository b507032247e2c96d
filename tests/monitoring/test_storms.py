"""Alert storms through the real Alertmanager and the real ansible-rulebook (incident-response.yml).

Alerts are posted to Alertmanager's own API (as Prometheus does), Alertmanager delivers them to the
rulebook's alertmanager source with the bearer token from a file. The response playbooks are cheap
stand-ins (the rulebook's claude_flow_playbook_dir points at them) that record when each run started
and ended on which host, so the storm's shape is measured, not the remediation (the real responses
are exercised by test_loop.py).
"""

import datetime
import json
import os
import shutil
import sys
import time

import pytest

from loop import load_eda_helpers
from stack import Process, binary, free_port, get_json

from ansible_collections.claude_flow.runbook.plugins.module_utils.prometheus_rules import alertmanager_config

EDA = load_eda_helpers()
REPO = EDA.REPO
TOKEN = 'storm-token-not-a-secret'

STAND_IN = """---
- name: Stand-in {level} response (records its start and end, then takes a while)
  hosts: all
  gather_facts: false
  tasks:
    - name: Start marker
      ansible.builtin.copy:
        dest: "{{{{ marker_dir }}}}/{{{{ inventory_hostname }}}}.{level}.{{{{ incident_id }}}}.start"
        content: "{{{{ lookup('pipe', 'date +%s.%N') }}}}"
        mode: "0644"
    - name: Work
      ansible.builtin.command: sleep {{{{ response_seconds }}}}
      changed_when: false
    - name: End marker
      ansible.builtin.copy:
        dest: "{{{{ marker_dir }}}}/{{{{ inventory_hostname }}}}.{level}.{{{{ incident_id }}}}.end"
        content: "{{{{ lookup('pipe', 'date +%s.%N') }}}}"
        mode: "0644"
"""


class Storm:
    def __init__(self, tmp_path, hosts, response_seconds, max_concurrent=None):
        self.tmp = tmp_path
        self.markers = tmp_path / 'markers'
        self.markers.mkdir()
        playbooks = tmp_path / 'playbooks'
        playbooks.mkdir()
        for level in ('p0', 'p1', 'p2', 'p3'):
            (playbooks / ('%s_response.yml' % level)).write_text(STAND_IN.format(level=level))
        shutil.copy(os.path.join(REPO, 'playbooks', 'close_incident.yml'), str(playbooks / 'close_incident.yml'))
        inventory = {'all': {'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                                      'marker_dir': str(self.markers), 'response_seconds': response_seconds},
                             'hosts': {h: {'claude_flow_incidents_dir': str(tmp_path / 'incidents' / h)}
                                       for h in hosts}}}
        (tmp_path / 'inventory.yml').write_text(json.dumps(inventory))
        self.port = free_port()
        (tmp_path / 'vars.yml').write_text(json.dumps({'claude_flow_playbook_dir': str(playbooks),
                                                       'alertmanager_listen_port': self.port}))
        args = ['-r', os.path.join(EDA.RULEBOOKS, 'incident-response.yml'), '-i', str(tmp_path / 'inventory.yml'),
                '--vars', str(tmp_path / 'vars.yml'), '--env-vars', 'EDA_ALERTMANAGER_TOKEN', '-vv']
        if max_concurrent:
            args += ['-m', str(max_concurrent)]
        self.rulebook = EDA.RulebookProcess(args, EDA.tool_env({'EDA_ALERTMANAGER_TOKEN': TOKEN}),
                                            str(tmp_path / 'rulebook.log'))
        token_file = tmp_path / 'token'
        token_file.write_text(TOKEN)
        self.am_port = free_port()
        self.am_url = 'http://127.0.0.1:%d' % self.am_port
        config = alertmanager_config('http://127.0.0.1:%d/alerts' % self.port, str(token_file), group_wait='1s',
                                     group_interval='1s', repeat_interval='2s', resolve_timeout='1m')
        (tmp_path / 'alertmanager.yml').write_text(json.dumps(config))
        self.am = None

    def start(self):
        self.rulebook.start('http://127.0.0.1:%d/health' % self.port)
        self.am = Process([binary('prometheus-alertmanager'), '--config.file=' + str(self.tmp / 'alertmanager.yml'),
                           '--storage.path=' + str(self.tmp / 'am-data'),
                           '--web.listen-address=127.0.0.1:%d' % self.am_port, '--cluster.listen-address='],
                          str(self.tmp / 'alertmanager.log'))
        deadline = time.monotonic() + 60
        while not get_json(self.am_url + '/api/v2/status') and time.monotonic() < deadline:
            time.sleep(0.2)
        return self

    def stop(self):
        if self.am:
            self.am.stop()
        self.rulebook.stop()

    def post(self, alerts):
        status, body = EDA.http('POST', self.am_url + '/api/v2/alerts', alerts)
        assert status == 200, (status, body)

    def runs(self):
        """[(host, level, incident_id, start, end or None)]"""
        found = {}
        for name in os.listdir(str(self.markers)):
            base, kind = name.rsplit('.', 1)
            with open(str(self.markers / name)) as handle:
                stamp = float(handle.read().strip() or 0)
            found.setdefault(base, {})[kind] = stamp
        out = []
        for base, stamps in sorted(found.items()):
            host, level, incident = base.split('.', 2)
            out.append((host, level, incident, stamps.get('start'), stamps.get('end')))
        return out


def iso(offset=0.0):
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)).isoformat()


def am_alert(host, severity, starts, ends=None, name='ClaudeFlowTruthScore'):
    alert = {'labels': {'alertname': name, 'instance': host, 'host': host, 'severity': severity,
                        'metric': 'truth_score'},
             'annotations': {'summary': 'Truth verification score < 0.9'}, 'startsAt': starts}
    if ends:
        alert['endsAt'] = ends
    return alert


@pytest.fixture
def storm_factory(tmp_path):
    storms = []

    def make(hosts, response_seconds, max_concurrent=None):
        storm = Storm(tmp_path, hosts, response_seconds, max_concurrent).start()
        storms.append(storm)
        return storm
    yield make
    for storm in storms:
        storm.stop()


def test_flapping_host_gets_one_response_per_throttle_window(storm_factory):
    """lab-f's truth score crosses the P1 threshold six times in a minute: six alert episodes
    (each with its own startsAt, so its own incident id), one P1 response."""
    storm = storm_factory(['lab-f'], response_seconds=1)
    for dummy in range(6):
        starts = iso()
        storm.post([am_alert('lab-f', 'P1', starts)])
        time.sleep(2.5)   # Alertmanager notifies (group_wait 1s), the rulebook sees a firing
        storm.post([am_alert('lab-f', 'P1', starts, ends=iso())])
        time.sleep(2.5)   # and the resolution: the next firing is a new episode
    time.sleep(8)
    runs = [r for r in storm.runs() if r[1] == 'p1']
    log = storm.rulebook.output()
    assert len(runs) == 1, (runs, log[-4000:])
    assert runs[0][4] is not None, 'the one response did not finish'
    # The rulebook saw every episode (more than one firing reached it) and throttled the rest.
    assert log.count('"status": "firing"') + log.count("'status': 'firing'") >= 2, log[-4000:]


def test_twenty_hosts_at_once_run_no_faster_than_the_concurrency(storm_factory):
    hosts = ['lab%02d' % n for n in range(1, 21)]
    concurrency = 4
    storm = storm_factory(hosts, response_seconds=3, max_concurrent=concurrency)
    starts = iso()
    storm.post([am_alert(host, 'P1', starts) for host in hosts])
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        runs = storm.runs()
        if len([r for r in runs if r[4] is not None]) >= 20:
            break
        time.sleep(1)
    runs = [r for r in storm.runs() if r[1] == 'p1']
    assert sorted(r[0] for r in runs) == hosts, runs
    assert all(r[4] is not None for r in runs), runs
    # Most runs in flight at any moment (from the recorded start/end of each run).
    events = sorted([(r[3], 1) for r in runs] + [(r[4], -1) for r in runs])
    active = peak = 0
    for dummy, delta in events:
        active += delta
        peak = max(peak, active)
    print('\n20 hosts, -m %d: peak %d responses at once, all done in %.1f s'
          % (concurrency, peak, max(r[4] for r in runs) - min(r[3] for r in runs)))
    assert 1 < peak <= concurrency, peak


def test_alertmanager_repeats_during_a_running_response_start_nothing_new(storm_factory):
    storm = storm_factory(['lab-r'], response_seconds=10)
    starts = iso()
    storm.post([am_alert('lab-r', 'P0', starts, name='ClaudeFlowDbCorrupt')])
    # repeat_interval 2s: Alertmanager re-sends the still-firing alert while the response runs; Prometheus
    # would also re-post it every evaluation, so do that too.
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline:
        storm.post([am_alert('lab-r', 'P0', starts, name='ClaudeFlowDbCorrupt')])
        time.sleep(1)
    # The run ends; anything a repeat had queued behind the host's lock would start right after it.
    deadline = time.monotonic() + 180
    while not any(r[4] for r in storm.runs()) and time.monotonic() < deadline:
        time.sleep(1)
    time.sleep(5)
    runs = [r for r in storm.runs() if r[1] == 'p0']
    log = storm.rulebook.output()
    deliveries = log.count('ClaudeFlowDbCorrupt')
    assert len(runs) == 1 and runs[0][4] is not None, (runs, log[-4000:])
    assert deliveries >= 3, 'Alertmanager did not repeat the alert (%d mentions)' % deliveries
