# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault matrix, area 'hostile alert input': what an attacker (or a careless exporter) can put in an alert.

One real ansible-rulebook run (extensions/eda/rulebooks/incident-response.yml, this collection's
alertmanager source, real ansible-playbook runs) takes every hostile alert of the batch below, so the
suite pays its start-up once. Three local-connection hosts host-a/b/c form the group claude_flow.
The response playbooks are stand-ins that start like the real ones (the one-line host guard import)
and record what they were given (the alert decoded from incident_alert_b64); the resolved path runs
the real playbooks/close_incident.yml, the incident record writer for alert text.

Every injected template tries `lookup('pipe', 'touch <side>/<case>-...')` in both {{ }} and {% %}
and carries {{ 7 * 191 }}: a file under <side> or a 1337 in a record is a side effect.
The source is started without its inventory check here, so a group name in the host label reaches
the playbooks and the guard there must stop it (the source check has its own unit tests).
"""

import asyncio
import importlib.util
import json
import os
import shutil
import socket
import sys
import time

import pytest

from conftest import compare_check, crash_in, last_error, record_check

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOKEN = 'hostile-e2e-token-0x5ec12e7'
AREA = 'hostile alert input'


def _eda_helpers():
    spec = importlib.util.spec_from_file_location('claude_flow_eda_helpers', os.path.join(REPO, 'tests', 'eda', 'conftest.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


eda = _eda_helpers()

STAND_IN = """---
- name: Host guard, as the real playbooks
  ansible.builtin.import_playbook: claude_flow.runbook.host_guard

- name: Stand-in {level} response (test only)
  hosts: "{{{{ claude_flow_target | default('all') }}}}"
  gather_facts: false
  tasks:
    - name: One record per run, with the alert as the playbook decoded it
      ansible.builtin.copy:
        dest: "{{{{ marker_dir }}}}/{{{{ inventory_hostname }}}}.{level}.{{{{ incident_id | hash('md5') }}}}.json"
        content: "{{{{ {{'host': inventory_hostname, 'incident_id': incident_id,
                       'alert': incident_alert_b64 | b64decode | from_json}} | to_json }}}}"
        mode: "0644"
"""

# (case, status, host, severity) - every firing case has its own host+severity (the rulebook throttles per pair)
FIELD_CASES = [
    ('label', 'firing', 'host-a', 'P0'), ('annotation', 'firing', 'host-a', 'P1'),
    ('fingerprint', 'firing', 'host-a', 'P2'), ('times', 'firing', 'host-a', 'P3'),
    ('url', 'firing', 'host-b', 'P0'), ('whole', 'firing', 'host-b', 'P1'),
    ('label', 'resolved', 'host-c', 'P3'), ('annotation', 'resolved', 'host-c', 'P3'),
    ('fingerprint', 'resolved', 'host-b', 'P3'), ('times', 'resolved', 'host-b', 'P3'),
    ('url', 'resolved', 'host-a', 'P3'), ('whole', 'resolved', 'host-c', 'P3'),
]
HOST_CASES = {'group': 'claude_flow:9100', 'glob': 'host*', 'all': 'all', 'union': 'host-a:host-b',
              'negation': '!host-a', 'unknown': 'nosuch-host:9100'}


def tpl(side, case):
    return ("{{ lookup('pipe', 'touch %s/%s-expr') }}|{%% set _x = lookup('pipe', 'touch %s/%s-stmt') %%}|{{ 7 * 191 }}"
            % (side, case, side, case))


def hostile_alert(side, case, field, status, host, severity, number):
    name = '%s-%s' % (status, field)
    text = tpl(side, name)
    item = {'status': status,
            'labels': {'alertname': 'ClaudeFlowHostile', 'instance': host + ':9100', 'severity': severity, 'case': name},
            'annotations': {'summary': 'hostile ' + name}, 'startsAt': '2024-05-01T12:00:00Z',
            'endsAt': '2024-05-01T12:30:00Z' if status == 'resolved' else '0001-01-01T00:00:00Z',
            'generatorURL': 'http://prometheus.example.invalid/graph', 'fingerprint': 'feed%012x' % number}
    if field in ('label', 'whole'):
        item['labels']['note'] = text
    if field in ('annotation', 'whole'):
        item['annotations']['description'] = text
        item['annotations'][text] = 'a template as an annotation name'
    if field in ('fingerprint', 'whole'):
        item['fingerprint'] = text
    if field in ('times', 'whole'):
        item['startsAt'] = text
        item['endsAt'] = text
    if field in ('url', 'whole'):
        item['generatorURL'] = 'http://x.invalid/?q=' + text
    return item


def notification(*alerts):
    return {'version': '4', 'status': alerts[0]['status'], 'receiver': 'claude-flow-eda', 'groupKey': '{}:{}',
            'externalURL': 'http://alertmanager.example.invalid', 'alerts': list(alerts)}


def raw_request(port, data, wait=60):
    """(HTTP status or None when the server closed without answering, body) for raw bytes on a fresh socket."""
    with socket.create_connection(('127.0.0.1', port), timeout=wait) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    answer = b''.join(chunks)
    if not answer:
        return None, b''
    head, dummy, body = answer.partition(b'\r\n\r\n')
    return int(head.split(b' ')[1]), body


def post_bytes(body, auth=True, extra=b''):
    head = b'POST /alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
    if auth:
        head += b'Authorization: Bearer ' + TOKEN.encode() + b'\r\n'
    return head + extra + b'Content-Length: %d\r\n\r\n' % len(body) + body


async def _slowloris(port, count):
    """count connections that send half a header and then nothing; how each ended (status or None)."""
    async def one():
        reader, writer = await asyncio.open_connection('127.0.0.1', port)
        writer.write(b'POST /alerts HTTP/1.1\r\nHost: x\r\nX-Slow: ')
        await writer.drain()
        try:
            data = await asyncio.wait_for(reader.read(), 120)
        finally:
            writer.close()
        return int(data.split(b' ')[1]) if data else None
    return await asyncio.gather(*(one() for dummy in range(count)))


async def _flood(port, count):
    """count connections at once, none sending anything; what each got (503 at once over the cap, 408 later)."""
    conns = []
    for dummy in range(count):
        conns.append(await asyncio.open_connection('127.0.0.1', port))

    async def answer(reader, writer):
        try:
            data = await asyncio.wait_for(reader.read(200), 120)
        finally:
            writer.close()
        return int(data.split(b' ')[1]) if data.startswith(b'HTTP/') else None
    return await asyncio.gather(*(answer(reader, writer) for reader, writer in conns))


def fd_count(pid):
    return len(os.listdir('/proc/%d/fd' % pid))


@pytest.fixture(scope='module')
def hostile(tmp_path_factory):
    """Start the rulebook once, send the whole hostile batch and the abuse, wait for every run; the outcome."""
    tmp = tmp_path_factory.mktemp('hostile')
    side, markers, playbooks = tmp / 'side', tmp / 'markers', tmp / 'playbooks'
    for path in (side, markers, playbooks):
        path.mkdir()
    for level in ('p0', 'p1', 'p2', 'p3'):
        (playbooks / ('%s_response.yml' % level)).write_text(STAND_IN.format(level=level))
    shutil.copy(os.path.join(REPO, 'playbooks', 'close_incident.yml'), str(playbooks / 'close_incident.yml'))
    hosts = {name: {'claude_flow_incidents_dir': str(tmp / 'hosts' / name / 'incidents')}
             for name in ('host-a', 'host-b', 'host-c')}
    inventory = tmp / 'inventory.yml'
    inventory.write_text(json.dumps({'all': {
        'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable, 'marker_dir': str(markers)},
        'children': {'claude_flow': {'hosts': hosts}}}}))
    port = eda.free_port()
    vars_file = tmp / 'vars.yml'
    vars_file.write_text(json.dumps({'claude_flow_playbook_dir': str(playbooks), 'alertmanager_listen_port': port}))
    url = 'http://127.0.0.1:%d' % port
    auth = {'Authorization': 'Bearer ' + TOKEN}
    rulebook = eda.RulebookProcess(
        ['-r', os.path.join(eda.RULEBOOKS, 'incident-response.yml'), '-i', str(inventory), '--vars', str(vars_file),
         '--env-vars', 'EDA_ALERTMANAGER_TOKEN', '-vv'],
        eda.tool_env({'EDA_ALERTMANAGER_TOKEN': TOKEN}), str(tmp / 'rulebook.log'))
    rulebook.start(url + '/health')
    out = {'side': side, 'tmp': tmp, 'answers': {}}
    try:
        batch = [hostile_alert(str(side), case, case, status, host, severity, number)
                 for number, (case, status, host, severity) in enumerate(FIELD_CASES)]
        for status in ('firing', 'resolved'):
            out['answers'][status] = eda.http('POST', url + '/alerts',
                                              notification(*[a for a in batch if a['status'] == status]), auth)
        host_alerts = [dict(batch[0], labels={'alertname': 'ClaudeFlowHostile', 'severity': 'P0', 'instance': value,
                                              'case': 'host-' + case}, fingerprint='beef%012x' % number)
                       for number, (case, value) in enumerate(sorted(HOST_CASES.items()))]
        out['answers']['hosts'] = eda.http('POST', url + '/alerts', notification(*host_alerts), auth)
        # The token inside an alert: masked by value before the event exists.
        leak = dict(batch[6], labels=dict(batch[6]['labels'], case='resolved-leak', note='token=' + TOKEN),
                    fingerprint='c0ffee0000000001')
        out['answers']['leak'] = eda.http('POST', url + '/alerts', notification(leak), auth)
        whole = hostile_alert(str(side), 'body', 'whole', 'firing', 'host-c', 'P0', 99)
        out['answers']['body_alert'] = eda.http('POST', url + '/alerts', whole, auth)
        out['answers']['body_template'] = eda.http('POST', url + '/alerts', tpl(str(side), 'body-raw').encode(), auth)

        baseline_fds = fd_count(rulebook.process.proc.pid)
        out['answers']['deep'] = raw_request(port, post_bytes(b'[' * 50000 + b']' * 50000))
        out['answers']['auth_not_utf8'] = raw_request(port, post_bytes(b'{}', auth=False,
                                                                       extra=b'Authorization: Bearer \xff\xfe\xfd\r\n'))
        out['answers']['header_not_utf8'] = raw_request(port, post_bytes(b'{}', extra=b'X-Scope: \xc3\x28\r\n'))
        huge = dict(batch[0], annotations={'description': 'x' * 100000}, fingerprint='abad1dea00000001')
        out['answers']['huge'] = eda.http('POST', url + '/alerts', notification(huge), auth)
        started = time.monotonic()
        loop = asyncio.new_event_loop()
        try:
            slow = loop.create_task(_slowloris(port, 20))
            loop.run_until_complete(asyncio.sleep(1))
            # While 20 slow clients hold connections, Alertmanager is still served.
            out['answers']['during_slowloris'] = eda.http('GET', url + '/health')
            out['fds_during_slowloris'] = fd_count(rulebook.process.proc.pid) - baseline_fds
            out['slowloris'] = loop.run_until_complete(slow)
            out['slowloris_seconds'] = time.monotonic() - started
            out['flood'] = loop.run_until_complete(_flood(port, 150))
        finally:
            loop.close()
        out['answers']['after_flood'] = eda.http('GET', url + '/health')
        time.sleep(2)
        out['fds_after_abuse'] = fd_count(rulebook.process.proc.pid) - baseline_fds

        def done():
            if not rulebook.alive():
                return True
            names = os.listdir(str(markers))
            # the group alert ends either in the guard's refusal or (without the guard) in runs of its own
            group_settled = 'Refusing to start' in rulebook.output() or len(names) > 6
            return len(names) >= 6 and len(_records(tmp)) >= 7 and group_settled

        assert eda.wait_for(done, timeout=420, interval=1), rulebook.output()[-6000:]
        time.sleep(5)   # anything that would run late (a throttle miss, a widened run) has its chance
        out['alive'] = rulebook.alive()
        out['log'] = rulebook.output()
    finally:
        rulebook.stop()
    out['markers'] = [json.loads((markers / name).read_text()) for name in sorted(os.listdir(str(markers)))]
    out['marker_names'] = sorted(os.listdir(str(markers)))
    out['records'] = _records(tmp)
    out['side_files'] = sorted(os.listdir(str(side)))
    return out


def _records(tmp):
    found = []
    base = tmp / 'hosts'
    if base.is_dir():
        for host in sorted(os.listdir(str(base))):
            incidents = base / host / 'incidents'
            for name in sorted(os.listdir(str(incidents))) if incidents.is_dir() else []:
                try:
                    found.append(dict(json.loads((incidents / name).read_text()), _host=host))
                except ValueError:
                    pass  # being written
    return found


def side_effects(out, name):
    """Files the case's templates created, plus every place a rendered {{ 7 * 191 }} shows up."""
    created = [entry for entry in out['side_files'] if entry.startswith(name + '-')]
    stored = [record for record in out['markers'] + out['records']
              if record.get('alert', {}).get('labels', {}).get('case') == name]
    rendered = sum(json.dumps(record).count('1337') for record in stored)
    return len(created) + rendered, stored


FIELD_NAMES = {'times': 'startsAt/endsAt', 'url': 'generatorURL', 'whole': 'every field (the whole alert)'}


@pytest.mark.eda
@pytest.mark.parametrize('case,status,host,severity', [
    pytest.param(*c, id='%s-%s' % (c[1], c[0]),
                 marks=pytest.mark.fault(AREA, 'Jinja in the %s of a %s alert' % (FIELD_NAMES.get(c[0], c[0]), c[1])))
    for c in FIELD_CASES])
def test_template_in_alert_field_is_stored_literally(hostile, fault, case, status, host, severity):
    name = '%s-%s' % (status, case)
    fault.scrub(hostile['tmp'])
    count, stored = side_effects(hostile, name)
    fault.side_effects(count)
    assert hostile['answers'][status] == (200, {'accepted': 6}), hostile['answers'][status]
    where = 'the %s run record' % severity if status == 'firing' else 'the resolved record (close_incident.yml)'
    assert len(stored) == 1, ('expected one record for %s, got %r' % (name, stored), hostile['log'][-4000:])
    (record,) = stored
    assert record['_host' if status == 'resolved' else 'host'] == host
    text = tpl(str(hostile['side']), name)
    alert = record['alert']
    literal = {'label': [alert['labels'].get('note')], 'annotation': [alert['annotations'].get('description')],
               'fingerprint': [alert['fingerprint']], 'times': [alert['startsAt'], alert['endsAt']],
               'url': [alert['generatorURL'].split('?q=', 1)[-1]]}
    checked = literal[case] if case != 'whole' else [value for values in literal.values() for value in values]
    assert checked and all(value == text for value in checked), checked
    if status == 'resolved' and case in ('times', 'whole'):
        assert record['starts_at'] == text and record['ends_at'] == text
    shown = record['incident_id'] if record['incident_id'].startswith('feed') else \
        'the fingerprint cut to 64 letters, digits, _ and -'
    fault.did('stored literally in %s, %d template side effects (incident id: %s)' % (where, count, shown))
    assert count == 0


@pytest.mark.eda
@pytest.mark.fault(AREA, 'Group name in the host label (claude_flow, a group of 3 hosts)')
def test_group_name_in_host_label_runs_nothing(hostile, fault):
    runs = [m for m in hostile['markers'] if m['alert']['labels']['case'].startswith('host-')]
    fault.side_effects(len(runs))
    fault.hosts = 0 if not runs else len(runs)
    assert runs == []
    assert 'target_host claude_flow is an inventory group (3 hosts), not one host' in hostile['log']
    fault.did('the P0 rule fired for host "claude_flow"; the host guard refused before any task: "target_host '
              'claude_flow is an inventory group (3 hosts), not one host" - 0 hosts touched')


@pytest.mark.eda
@pytest.mark.parametrize('case', [
    pytest.param(c, id=c, marks=pytest.mark.fault(AREA, 'Host pattern %r in the host label' % HOST_CASES[c]))
    for c in ('glob', 'all', 'union', 'negation')])
def test_host_pattern_in_host_label_runs_nothing(hostile, fault, case):
    runs = [m for m in hostile['markers'] if m['alert']['labels']['case'] == 'host-' + case]
    fault.side_effects(len(runs))
    assert runs == []
    expected = 'No playbook: P0 alert ClaudeFlowHostile (firing): label instance=%r is not a single inventory host name' \
        % HOST_CASES[case]
    assert expected in hostile['log'], hostile['log'][-4000:]
    fault.did('logged "%s", nothing ran' % expected)


@pytest.mark.eda
@pytest.mark.fault(AREA, 'Unknown host name in the host label')
def test_unknown_host_in_host_label_runs_nothing(hostile, fault):
    runs = [m for m in hostile['markers'] if m['alert']['labels']['case'] == 'host-unknown']
    fault.side_effects(len(runs))
    assert runs == []
    assert 'nosuch-host' in hostile['log']
    fault.did('the P0 playbook was started with --limit nosuch-host, which matches no inventory host: nothing ran')


@pytest.mark.eda
@pytest.mark.fault(AREA, 'Alert object (with templates) as the whole body, and a Jinja template as the body')
def test_alert_or_template_as_body_is_400(hostile, fault):
    count = len([name for name in hostile['side_files'] if name.startswith('body')])
    fault.side_effects(count)
    alert_status, alert_answer = hostile['answers']['body_alert']
    raw_status, raw_answer = hostile['answers']['body_template']
    assert alert_status == 400 and "payload has no 'alerts' list" in alert_answer['error']
    assert raw_status == 400 and 'not valid JSON' in raw_answer['error']
    assert count == 0
    fault.did('400 "%s"; 400 "%s"' % (alert_answer['error'], raw_answer['error'][:60]))


@pytest.mark.eda
@pytest.mark.fault(AREA, 'Slowloris: 20 clients send half a header, then nothing')
def test_slowloris_is_cut_by_the_header_timeout(hostile, fault):
    fault.side_effects(0)
    assert hostile['answers']['during_slowloris'][0] == 200
    assert all(status == 408 for status in hostile['slowloris']), hostile['slowloris']
    assert hostile['alive']
    fault.did('all 20 got 408 (header_timeout=10s) after %.0fs; /health answered 200 meanwhile; open fds '
              'grew by %d while they hung' % (hostile['slowloris_seconds'], hostile['fds_during_slowloris']))


@pytest.mark.eda
@pytest.mark.fault(AREA, 'Connection flood: 150 connections at once (max_connections 64)')
def test_connection_flood_is_capped_and_the_source_recovers(hostile, fault):
    fault.side_effects(0)
    refused, timed_out = hostile['flood'].count(503), hostile['flood'].count(408)
    assert refused >= 150 - 64 and refused + timed_out == 150, hostile['flood']
    assert hostile['answers']['after_flood'][0] == 200 and hostile['alive']
    assert hostile['fds_after_abuse'] <= 5, hostile['fds_after_abuse']
    fault.did('%d of 150 answered 503 at once (over max_connections=64), the %d others 408 after header_timeout; '
              '/health 200 right after; open fds back to baseline %+d' % (refused, timed_out, hostile['fds_after_abuse']))


@pytest.mark.eda
@pytest.mark.fault(AREA, '50 000-deep JSON body')
def test_deep_json_is_400(hostile, fault):
    fault.side_effects(0)
    status, body = hostile['answers']['deep']
    assert status == 400 and b'over max_json_depth=16' in body, (status, body)
    assert hostile['alive']
    fault.did('400 %s' % json.loads(body)['error'])


@pytest.mark.eda
@pytest.mark.fault(AREA, 'Non-UTF-8 bytes in the Authorization header and in another header')
def test_non_utf8_headers_are_400(hostile, fault):
    fault.side_effects(0)
    auth_status, auth_body = hostile['answers']['auth_not_utf8']
    other_status, other_body = hostile['answers']['header_not_utf8']
    assert (auth_status, other_status) == (400, 400), (auth_body, other_body)
    assert b'Authorization is not valid UTF-8' in auth_body and b'X-Scope is not valid UTF-8' in other_body
    fault.did('400 %s; 400 %s' % (json.loads(auth_body)['error'], json.loads(other_body)['error']))


@pytest.mark.eda
@pytest.mark.fault(AREA, 'Huge field: a 100 000-character annotation')
def test_huge_field_is_400_naming_the_field(hostile, fault):
    fault.side_effects(0)
    status, answer = hostile['answers']['huge']
    assert status == 400 and 'alerts[0].annotations.description is 100000 characters' in answer['error'], answer
    fault.did('400 %s' % answer['error'])


@pytest.mark.eda
@pytest.mark.fault(AREA, 'Bearer token sent inside an alert label; token in the rulebook log')
def test_token_never_in_logs_or_records(hostile, fault):
    leak = [record for record in hostile['records'] if record['alert']['labels']['case'] == 'resolved-leak']
    places = hostile['log'].count(TOKEN) + sum(json.dumps(record).count(TOKEN)
                                               for record in hostile['records'] + hostile['markers'])
    fault.secrets(places)
    fault.side_effects(0)
    assert hostile['answers']['leak'] == (200, {'accepted': 1})
    assert len(leak) == 1 and leak[0]['alert']['labels']['note'] == 'token=********'
    assert places == 0
    fault.did('the label was stored as "token=********"; 0 occurrences of the token in the rulebook log (-vv) and '
              'the records')


# ------------------------------------------------------------- the host guard of the real playbooks

GUARDED = ('p0_response', 'p1_response', 'p2_response', 'p3_response', 'triage', 'maintenance', 'backup',
           'close_incident')


def _guard_runs(tmp, runs):
    """Run the repo's real playbooks at once on 3 local hosts (group claude_flow): {name: (rc, output)}.

    Every state path points into tmp/hosts, which must stay absent: the guard stops before any task."""
    import subprocess
    hosts = {}
    for name in ('host-a', 'host-b', 'host-c'):
        base = tmp / 'hosts' / name
        hosts[name] = {'claude_flow_incidents_dir': str(base / 'incidents'), 'claude_flow_app_dir': str(base / 'app'),
                       'claude_flow_db_path': str(base / 'app' / '.swarm' / 'memory.db')}
    inventory = tmp / 'guard-inventory.yml'
    inventory.write_text(json.dumps({'all': {
        'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable},
        'children': {'claude_flow': {'hosts': hosts}}}}))
    env = eda.tool_env({'HOME': str(tmp / 'home')})
    # every run with its check-mode twin (at the same time: the guard stops both before any task)
    twins = {name + ' [check]': (playbook, list(args) + ['--check']) for name, (playbook, args) in runs.items()
             if '--check' not in args}
    procs = {}
    for name, (playbook, args) in dict(runs, **twins).items():
        procs[name] = subprocess.Popen(
            [eda.tool('ansible-playbook'), '-i', str(inventory), os.path.join(REPO, 'playbooks', playbook + '.yml')]
            + list(args), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    raw = {name: (proc.wait(timeout=300), proc.stdout.read()) for name, proc in procs.items()}
    for proc in procs.values():
        proc.stdout.close()
    for name in runs:
        twin = raw.get(name + ' [check]')
        if twin:
            assert not crash_in(twin[1]), crash_in(twin[1])
            record_check(compare_check(twin[0] != 0, last_error(twin[1]), raw[name][0] != 0, last_error(raw[name][1])))
    # whitespace folded: the yaml result callback wraps long messages
    results = {name: (raw[name][0], ' '.join(raw[name][1].split())) for name in runs}
    # (ansible itself creates $HOME/.ansible; the reports would go to $HOME/claude-flow-incident-reports)
    return results, (tmp / 'hosts').exists() or (tmp / 'home' / 'claude-flow-incident-reports').exists()


@pytest.mark.fault('operator input', 'Playbook started by hand without -l (implicit all), also with --check')
def test_implicit_all_by_hand_is_refused_by_every_playbook(tmp_path, fault):
    runs = {name: (name, []) for name in GUARDED}
    runs['p0_response --check'] = ('p0_response', ['--check'])
    runs['p0_response --tags escalate'] = ('p0_response', ['--tags', 'escalate'])
    results, touched = _guard_runs(tmp_path, runs)
    refused = [name for name, (rc, out) in results.items()
               if rc != 0 and 'no hosts named: this would run on every inventory host (3)' in out]
    fault.side_effects(0)
    fault.hosts = 0
    assert sorted(refused) == sorted(runs), {name: out[-1500:] for name, (rc, out) in results.items()
                                             if name not in refused}
    assert not touched
    fault.did('all %d runs (%s) refused before any task: "no hosts named: this would run on every inventory host (3). '
              'Name them with -l <host> (or -l all on purpose ...)"; nothing written' % (len(runs), ', '.join(sorted(runs))))


@pytest.mark.fault(AREA, 'Alert-started run whose limit covers more than the alert host (or names a group)')
def test_alert_run_on_more_than_its_host_is_refused(tmp_path, fault):
    alert_vars = ['-e', 'incident_id=feed0001-20240501T120000Z', '-e', 'incident_alert_b64=e30=']
    runs = {
        'wider limit': ('p0_response', ['-l', 'host-a,host-b', '-e', 'target_host=host-a',
                                        '-e', 'claude_flow_target=host-a,host-b'] + alert_vars),
        'group target': ('p1_response', ['-l', 'claude_flow', '-e', 'target_host=claude_flow',
                                         '-e', 'claude_flow_target=claude_flow'] + alert_vars),
        'max_hosts raised': ('p3_response', ['-e', 'target_host=host-a', '-e', 'claude_flow_target=claude_flow',
                                             '-e', 'claude_flow_max_hosts=2'] + alert_vars),
        'no target_host': ('p2_response', ['-l', 'host-a'] + alert_vars),
    }
    results, touched = _guard_runs(tmp_path, runs)
    expected = {
        'wider limit': 'the alert names host-a but this run would also touch host-b',
        'group target': 'target_host claude_flow is an inventory group (3 hosts), not one host',
        'max_hosts raised': 'an alert-started run may touch at most claude_flow_max_hosts=2 hosts, this one would touch 3',
        'no target_host': 'an alert-started run must name its host in target_host',
    }
    missing = {name: results[name][1][-1500:] for name, text in expected.items()
               if results[name][0] == 0 or text not in results[name][1]}
    fault.side_effects(0)
    fault.hosts = 0
    assert not missing, missing
    assert not touched
    fault.did('all 4 refused before any task: ' + '; '.join('"%s"' % text for text in expected.values()))
