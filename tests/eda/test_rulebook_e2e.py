"""End to end: Alertmanager payloads over loopback -> real ansible-rulebook -> real playbooks.

The rulebook under test is extensions/eda/rulebooks/incident-response.yml with the
collection's own alertmanager source, started as `ansible-rulebook` would be in
production. What it runs is chosen by two inputs only, the playbook directory
(`claude_flow_playbook_dir`) and the inventory (`-i`):

* test_alerts_...: test playbooks p0..p3_response.yml written below,
  each recording one marker file per run on the host it ran on, plus the real
  playbooks/close_incident.yml; three local-connection hosts host-a/b/c.
* test_real_playbooks_...: the repo's playbooks/ on three real lab hosts (fixture lab_hosts in
  conftest.py: a lab in a state dir of its own, always taken down), asserting on what the real
  playbooks leave on each host (incident files, /health, the DB's sha256). It is the slow one
  (about 1 minute, more on a loaded machine); the stand-in test stays as the fast check.
"""

import json
import os
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKEN = 'e2e-token-not-a-secret'
HOSTS = ('host-a', 'host-b', 'host-c')

# One marker file per playbook run: <marker_dir>/<host>.<level>.<random>.json
STAND_IN_PLAYBOOK = """---
- name: Host guard, as the real playbooks (one alert, one host)
  ansible.builtin.import_playbook: claude_flow.runbook.host_guard

- name: Stand-in {level} response (test only)
  hosts: all
  gather_facts: false
  tasks:
    - name: One marker per run
      ansible.builtin.tempfile:
        path: "{{{{ marker_dir }}}}"
        prefix: "{{{{ inventory_hostname }}}}.{level}."
        suffix: .json
      register: marker
    - name: What this run was given
      ansible.builtin.copy:
        dest: "{{{{ marker.path }}}}"
        content: "{{{{ {{'host': inventory_hostname, 'target_host': target_host, 'incident_id': incident_id,
                       'alert': incident_alert_b64 | b64decode | from_json}} | to_json }}}}"
        mode: "0644"
"""


def e2e_target(tmp_path):
    """(playbook_dir, inventory_path, per-host state dirs). SWITCH HERE for the real playbooks."""
    playbook_dir = tmp_path / 'playbooks'
    playbook_dir.mkdir()
    for level in ('p0', 'p1', 'p2', 'p3'):
        (playbook_dir / ('%s_response.yml' % level)).write_text(STAND_IN_PLAYBOOK.format(level=level))
    # The real one: it only writes a record, so it runs as is on the stand-in hosts.
    shutil.copy(os.path.join(REPO, 'playbooks', 'close_incident.yml'), str(playbook_dir / 'close_incident.yml'))
    markers = tmp_path / 'markers'
    markers.mkdir()
    hosts = {}
    for name in HOSTS:
        incidents = tmp_path / 'hosts' / name / 'incidents'
        hosts[name] = {'claude_flow_incidents_dir': str(incidents)}
    inventory = {'all': {'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                                  'marker_dir': str(markers)},
                         'hosts': hosts}}
    inventory_path = tmp_path / 'inventory.yml'
    inventory_path.write_text(json.dumps(inventory))
    return str(playbook_dir), str(inventory_path), markers, {n: hosts[n]['claude_flow_incidents_dir'] for n in HOSTS}


def runs_of(markers):
    """[(host, level, recorded dict)] for every response playbook run so far."""
    runs = []
    for name in sorted(os.listdir(str(markers))):
        path = os.path.join(str(markers), name)
        try:
            with open(path) as handle:
                data = json.load(handle)
        except ValueError:
            continue  # being written
        host, level = name.split('.')[:2]
        runs.append((host, level, data))
    return runs


def resolved_records(incident_dirs):
    found = {}
    for host, path in incident_dirs.items():
        if os.path.isdir(path):
            for name in os.listdir(path):
                with open(os.path.join(path, name)) as handle:
                    found[(host, name)] = json.load(handle)
    return found


def alert(name, instance, status='firing', severity=None, fingerprint='0000', starts='2024-05-01T12:00:00.5Z'):
    labels = {'alertname': name}
    if instance is not None:
        labels['instance'] = instance
    if severity is not None:
        labels['severity'] = severity
    return {'status': status, 'labels': labels, 'annotations': {'summary': name}, 'startsAt': starts,
            'endsAt': '0001-01-01T00:00:00Z' if status == 'firing' else '2024-05-01T12:30:00Z',
            'generatorURL': 'http://prometheus.example.invalid/graph', 'fingerprint': fingerprint}


def notification(*alerts):
    return {'version': '4', 'status': alerts[0]['status'], 'receiver': 'claude-flow-eda', 'groupKey': '{}:{}',
            'truncatedAlerts': 0, 'groupLabels': {}, 'commonLabels': {}, 'commonAnnotations': {},
            'externalURL': 'http://alertmanager.example.invalid', 'alerts': list(alerts)}


def test_alerts_run_the_matching_playbook_once_on_the_alerting_host_only(tmp_path, record_property, eda):
    http, wait_for = eda.http, eda.wait_for
    test_started = time.monotonic()
    playbook_dir, inventory, markers, incident_dirs = e2e_target(tmp_path)
    port = eda.free_port()
    vars_file = tmp_path / 'vars.yml'
    # The source checks alert hosts against the same inventory the playbooks get.
    vars_file.write_text(json.dumps({'claude_flow_playbook_dir': playbook_dir, 'alertmanager_listen_port': port,
                                     'claude_flow_alert_inventory': inventory}))
    url = 'http://127.0.0.1:%d' % port
    auth = {'Authorization': 'Bearer ' + TOKEN}

    rulebook = eda.RulebookProcess(
        ['-r', os.path.join(eda.RULEBOOKS, 'incident-response.yml'), '-i', inventory, '--vars', str(vars_file),
         '--env-vars', 'EDA_ALERTMANAGER_TOKEN', '-vv'],
        eda.tool_env({'EDA_ALERTMANAGER_TOKEN': TOKEN}), str(tmp_path / 'rulebook.log'))
    rulebook.start(url + '/health')
    try:
        # Authentication and bad input are answered, and the rulebook keeps running.
        assert http('POST', url + '/alerts', notification(alert('ClaudeFlowDbCorrupt', 'host-a:9100')))[0] == 401
        status, answer = http('POST', url + '/alerts', b'{"version": "4", "alerts": [', auth)
        assert status == 400 and 'not valid JSON' in answer['error']
        assert rulebook.alive(), rulebook.output()

        # The same P0 alert ten times (Alertmanager repeats, HA pairs): one P0 run on host-a.
        p0 = alert('ClaudeFlowDbCorrupt', 'host-a:9100', fingerprint='a0a0a0a0a0a0a0a0')
        for dummy in range(10):
            assert http('POST', url + '/alerts', notification(p0), auth) == (200, {'accepted': 1})
        # P1 by label on host-b; unknown severity on host-c and an alert without a host: log only.
        assert http('POST', url + '/alerts', notification(
            alert('ClaudeFlowCacheHitRateLow', 'host-b:9100', severity='P1', fingerprint='b1b1b1b1b1b1b1b1'),
            alert('SomethingNobodyMapped', 'host-c:9100', severity='warning', fingerprint='c3c3c3c3c3c3c3c3'),
            alert('ClaudeFlowDbMissing', None, fingerprint='d0d0d0d0d0d0d0d0')), auth) == (200, {'accepted': 3})
        # host-a's alert resolves: its incident is closed with the same incident id.
        assert http('POST', url + '/alerts', notification(
            dict(p0, status='resolved', endsAt='2024-05-01T12:30:00Z')), auth) == (200, {'accepted': 1})
        posted = time.monotonic()

        incident_a = 'a0a0a0a0a0a0a0a0-20240501T120000Z'
        expected_record = ('host-a', incident_a + '.resolved.json')

        def done():
            runs = {run[:2] for run in runs_of(markers)}
            return {('host-a', 'p0'), ('host-b', 'p1')} <= runs and expected_record in resolved_records(incident_dirs)

        assert wait_for(done, timeout=120), 'runs so far: %r\n%s' % (runs_of(markers), rulebook.output()[-5000:])
        handled = time.monotonic()
        # A duplicate that slipped through the throttle would be queued behind host-a's lock:
        # give it longer than one playbook run to show up.
        time.sleep(max(3.0, handled - posted))
        assert rulebook.alive(), rulebook.output()
        log = rulebook.output()

        runs = runs_of(markers)
        assert sorted(run[:2] for run in runs) == [('host-a', 'p0'), ('host-b', 'p1')], runs
        by_host = {run[0]: run[2] for run in runs}
        assert by_host['host-a']['target_host'] == 'host-a'
        assert by_host['host-a']['incident_id'] == incident_a
        assert by_host['host-a']['alert']['labels']['alertname'] == 'ClaudeFlowDbCorrupt'
        assert by_host['host-a']['alert']['status'] == 'firing'
        assert by_host['host-b']['incident_id'] == 'b1b1b1b1b1b1b1b1-20240501T120000Z'

        records = resolved_records(incident_dirs)
        assert list(records) == [expected_record], records
        record = records[expected_record]
        assert record['status'] == 'resolved' and record['host'] == 'host-a'
        assert record['alertname'] == 'ClaudeFlowDbCorrupt' and record['ends_at'] == '2024-05-01T12:30:00Z'

        # Exactly three playbooks were launched, and both log-only rules fired.
        assert log.count('call_action run_playbook') == 3, log[-5000:]
        assert 'No playbook: alert SomethingNobodyMapped (firing) has no severity label' in log
        assert 'No playbook: P0 alert ClaudeFlowDbMissing (firing): alert has none of the host labels' in log
        assert 'inventory check on (3 hosts)' in log
        assert TOKEN not in log
    finally:
        rulebook.stop()
    runtime = time.monotonic() - test_started
    record_property('rulebook_startup_seconds', round(rulebook.startup_seconds, 2))
    record_property('e2e_seconds', round(runtime, 2))
    print('\nansible-rulebook startup %.2fs, handled in %.2fs after the last POST, e2e test %.2fs'
          % (rulebook.startup_seconds, handled - posted, runtime))


def test_close_incident_refuses_a_path_as_incident_id_and_check_mode_writes_nothing(tmp_path, eda):
    incidents = tmp_path / 'incidents'
    inventory = tmp_path / 'inventory.yml'
    inventory.write_text(json.dumps({'all': {'hosts': {'host-a': {
        'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
        'claude_flow_incidents_dir': str(incidents)}}}}))
    playbook = os.path.join(REPO, 'playbooks', 'close_incident.yml')

    def close(incident_id, *extra):
        return subprocess.run([eda.tool('ansible-playbook'), '-i', str(inventory), playbook, '-l', 'host-a',
                               '-e', json.dumps({'target_host': 'host-a', 'incident_id': incident_id})] + list(extra),
                              env=eda.tool_env(), capture_output=True, text=True, timeout=120, check=False)

    bad = close('../../etc/cron.d/x')
    assert bad.returncode != 0 and 'incident_id must be letters, digits' in bad.stdout, bad.stdout
    checked = close('abc-20240501T120000Z', '--check')
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert 'changed=2' in checked.stdout  # it reports the directory and the record it would write
    assert not incidents.exists()


DB = '/opt/claude-code-production/.swarm/memory.db'
INCIDENTS = '/var/log/claude-code/incidents'   # claude_flow_incidents_dir in inventories/lab/group_vars


def lab_incidents(lab, host):
    """{file name: parsed JSON or None} in the incidents dir of a lab host ({} when it does not exist)."""
    out = lab.sh(host, 'ls -1A %s 2>/dev/null || true' % INCIDENTS)
    found = {}
    for name in out.split():
        found[name] = json.loads(lab.sh(host, 'cat %s/%s' % (INCIDENTS, name))) if name.endswith('.json') else None
    return found


def db_sha256(lab, host):
    return lab.sh(host, 'sha256sum %s' % DB).split()[0]


def test_real_playbooks_on_lab_hosts_p0_once_p1_once_healthy_host_untouched(
        tmp_path, record_property, eda, lab_hosts):
    """The same rulebook, now with the repo's playbooks/ on three real lab hosts."""
    http, wait_for, lab = eda.http, eda.wait_for, lab_hosts
    test_started = time.monotonic()
    lab.lab('break', 'lab1', 'corrupt_db')     # P0: the live memory.db is damaged
    lab.lab('break', 'lab2', 'truth_low_p1')   # P1: truth score 0.88
    lab3_db = db_sha256(lab, 'lab3')
    assert all(lab_incidents(lab, host) == {} for host in ('lab1', 'lab2', 'lab3'))

    port = eda.free_port()
    vars_file = tmp_path / 'vars.yml'
    vars_file.write_text(json.dumps({'claude_flow_playbook_dir': os.path.join(REPO, 'playbooks'),
                                     'alertmanager_listen_port': port}))
    url = 'http://127.0.0.1:%d' % port
    auth = {'Authorization': 'Bearer ' + TOKEN}
    home = tmp_path / 'home'   # the controller's copies of the reports go to $HOME/claude-flow-incident-reports
    home.mkdir()
    env = dict(lab.env(), EDA_ALERTMANAGER_TOKEN=TOKEN, HOME=str(home))
    rulebook = eda.RulebookProcess(
        ['-r', os.path.join(eda.RULEBOOKS, 'incident-response.yml'),
         '-i', lab.inventory_dir(str(tmp_path / 'inventory')), '--vars', str(vars_file),
         '--env-vars', 'EDA_ALERTMANAGER_TOKEN', '-vv'],
        eda.tool_env(env), str(tmp_path / 'rulebook.log'))
    rulebook.start(url + '/health')
    handled = posted = None
    try:
        p0 = alert('ClaudeFlowDbCorrupt', 'lab1:9100', fingerprint='e0e0e0e0e0e0e0e0')
        assert http('POST', url + '/alerts', notification(p0), auth) == (200, {'accepted': 1})
        for dummy in range(10):
            assert http('POST', url + '/alerts', notification(p0), auth) == (200, {'accepted': 1})
        assert http('POST', url + '/alerts', notification(
            alert('ClaudeFlowTruthScoreLow', 'lab2:9100', severity='P1', fingerprint='e1e1e1e1e1e1e1e1')),
            auth) == (200, {'accepted': 1})
        assert http('POST', url + '/alerts', notification(
            dict(p0, status='resolved', endsAt='2024-05-01T12:30:00Z')), auth) == (200, {'accepted': 1})
        status, answer = http('POST', url + '/alerts', b'{"version": "4", "alerts": [', auth)
        assert status == 400 and 'not valid JSON' in answer['error'], (status, answer)
        posted = time.monotonic()
        resolved_name = 'e0e0e0e0e0e0e0e0-20240501T120000Z.resolved.json'

        def done():
            if not rulebook.alive():
                return True   # fail below with its output
            lab1, lab2 = lab_incidents(lab, 'lab1'), lab_incidents(lab, 'lab2')
            reports = [name for name in list(lab1) + list(lab2) if name.endswith('.md')]
            return resolved_name in lab1 and len(reports) >= 2

        # generous: a P0 and a P1 run in parallel on a loaded 2-core machine took up to ~200 s here
        assert wait_for(done, timeout=480, interval=2), rulebook.output()[-8000:]
        handled = time.monotonic()
        # lab1's jobs share one lock, taken in the order they were queued: the close (posted after every
        # duplicate) has run, so a duplicate P0 that slipped through the throttle would have run before it.
        time.sleep(3)
        assert rulebook.alive(), rulebook.output()[-8000:]
        log = rulebook.output()
    finally:
        rulebook.stop()

    # lab1: remediated exactly once by the P0 playbook, healthy again, its alert's resolution recorded.
    lab1 = lab_incidents(lab, 'lab1')
    reports = sorted(name for name in lab1 if name.startswith('incident-') and name.endswith('.md'))
    assert len(reports) == 1, lab1
    record = lab1[reports[0][:-len('.md')] + '.json'] if reports[0][:-3] + '.json' in lab1 \
        else lab1['open-incident.json']
    assert record['severity'] == 'P0' and record['status'] == 'Resolved', record
    assert lab1[resolved_name]['status'] == 'resolved' and lab1[resolved_name]['host'] == 'lab1'
    # The alert and the response are linked both ways: the record names the alert, the close names the record.
    assert record['alert_ids'] == ['e0e0e0e0e0e0e0e0-20240501T120000Z'], record
    assert lab1[resolved_name]['response_incidents'] == [record['id']], lab1[resolved_name]
    assert lab.sh('lab1', 'curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:8080/health') == '200'
    assert lab.sh('lab1', 'python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1])'
                          '.execute(\'PRAGMA integrity_check\').fetchone()[0])" ' + DB).strip() == 'ok'

    # lab2: the P1 playbook, once. Its fix cannot raise a truth score made of past verifications, so it
    # ends Unresolved (incident left open for a human, the playbook fails); either way the record says P1.
    lab2 = lab_incidents(lab, 'lab2')
    reports2 = sorted(name for name in lab2 if name.startswith('incident-') and name.endswith('.md'))
    assert len(reports2) == 1, lab2
    record2 = lab2[reports2[0][:-3] + '.json'] if reports2[0][:-3] + '.json' in lab2 else lab2['open-incident.json']
    assert record2['severity'] == 'P1', record2
    assert record2['alert_ids'] == ['e1e1e1e1e1e1e1e1-20240501T120000Z'], record2
    assert sorted(os.listdir(str(home / 'claude-flow-incident-reports'))) == ['lab1', 'lab2']

    # lab3: nothing ran there.
    assert lab_incidents(lab, 'lab3') == {}
    assert db_sha256(lab, 'lab3') == lab3_db

    # Three playbooks launched (P0 lab1, P1 lab2, close lab1), the ten duplicates throttled.
    assert log.count('call_action run_playbook') == 3, log[-8000:]
    assert 'p0_response.yml' in log and 'p1_response.yml' in log
    assert TOKEN not in log
    runtime = time.monotonic() - test_started
    record_property('real_e2e_seconds', round(runtime, 2))
    print('\nreal playbooks: rulebook startup %.2fs, all handled %.2fs after the last POST, test %.2fs'
          % (rulebook.startup_seconds, handled - posted, runtime))
