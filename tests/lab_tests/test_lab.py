# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab itself (tests/lab/lab.py): real hosts that Ansible reaches over ssh, isolated from each
other and from the controller, with a real unit, break modes that take effect, and a `down` that
leaves nothing behind. Needs root."""

import json
import os
import sqlite3
import subprocess
import tempfile
import time
import uuid

import pytest

LAB_HOSTS = 2
pytestmark = pytest.mark.lab

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
STATIC_INVENTORY = os.path.join(REPO, 'inventories', 'lab', 'hosts.yml')
SERVICE = 'claude-code-production'
LIVE_DB = '/opt/claude-code-production/.swarm/memory.db'


def ansible(env, pattern, module, args=None, inventory=STATIC_INVENTORY):
    """Run an ad-hoc module; returns (rc, {host: result}) from ansible's own --tree JSON files."""
    with tempfile.TemporaryDirectory() as tree:
        cmd = ['ansible', '-i', inventory, pattern, '-m', module, '--tree', tree]
        if args:
            cmd += ['-a', args]
        proc = subprocess.run(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=180, check=False)
        results = {}
        for name in os.listdir(tree):
            with open(os.path.join(tree, name)) as handle:
                results[name] = json.load(handle)
    assert results, 'ansible produced no result:\n%s' % proc.stdout
    return proc.returncode, results


def inside(lab, host, *argv):
    proc = lab.exec(host, list(argv), capture=True)
    return proc.returncode, proc.stdout


def test_up_starts_provisioned_hosts(lab):
    rows = {row['host']: row for row in lab.status()}
    assert sorted(rows) == ['lab1', 'lab2']
    for name, row in rows.items():
        assert row['running'] and row['sshd'], row
        assert row['service'] == 'active', row
        assert row['health'] == 200, row
    assert lab.netns_names() == ['cflab-host1', 'cflab-host2', 'cflab-hub']
    with open(lab.inventory) as handle:
        generated = handle.read()
    assert 'ansible_host: 198.18.0.11' in generated and 'ansible_host: 198.18.0.12' in generated


def test_host_has_the_production_layout(lab, lab_tools):
    rc, out = inside(lab, 'lab1', 'readlink', '/opt/claude-code-production')
    assert rc == 0 and out.strip() == '/opt/claude-code-backups/release-2026.11.27'
    rc, out = inside(lab, 'lab1', 'ls', '/opt/claude-code-backups')
    assert out.split() == ['release-2026.11.20', 'release-2026.11.25', 'release-2026.11.27']
    for release in out.split():
        app = lab.fs(1, '/opt/claude-code-backups/' + release)
        for path in ('.swarm/memory.db', 'memory.db.backup'):
            conn = sqlite3.connect('file:%s?mode=ro' % os.path.join(app, path), uri=True)
            try:
                assert conn.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
                assert conn.execute('SELECT count(*) FROM patterns').fetchone()[0] > 0
            finally:
                conn.close()
        assert os.access(os.path.join(app, 'node_modules', '.bin', 'claude-flow'), os.X_OK)
        assert release in open(os.path.join(app, 'deployment-log.txt')).read()
    # claude-flow reads the healthy verification history
    rc, out = inside(lab, 'lab1', 'sh', '-c', 'cd /opt/claude-code-production && node_modules/.bin/claude-flow truth --json')
    assert rc == 0 and json.loads(out)['averageScore'] == pytest.approx(0.97, abs=0.005)
    # the host's systemctl is the docker-systemctl-replacement script; the controller's is untouched
    rc, out = inside(lab, 'lab1', 'systemctl', '--version')
    assert 'systemctl.py' in out
    with open(lab.fs(1, '/usr/bin/systemctl'), 'rb') as host_copy, open(lab_tools.labmod.systemctl_script(), 'rb') as package:
        assert host_copy.read() == package.read()
    if os.path.exists('/usr/bin/systemctl'):
        with open('/usr/bin/systemctl', 'rb') as handle:
            assert b'docker-systemctl-replacement' not in handle.read(4096)
    rc, out = inside(lab, 'lab1', 'cat', '/var/log/claude-code/application.log')
    assert ' ERROR ' in out and ' INFO ' in out
    assert inside(lab, 'lab1', 'test', '-d', '/var/log/claude-code/incidents')[0] == 0


def test_ansible_ping_with_the_static_inventory(lab, lab_env):
    rc, results = ansible(lab_env, 'lab1', 'ansible.builtin.ping')
    assert rc == 0 and results['lab1']['ping'] == 'pong'
    # ssh multiplexing sockets live in the state dir, where `down` closes them
    assert os.listdir(os.path.join(lab.state_dir, 'cp'))


def test_systemd_service_stops_and_starts_the_unit(lab, lab_env):
    rc, results = ansible(lab_env, 'lab1', 'ansible.builtin.systemd_service', 'name=%s state=stopped' % SERVICE)
    assert rc == 0 and results['lab1']['changed'] is True
    assert lab.health(1) == 0              # nothing listens on 8080 any more
    assert lab.service_state(1) == 'inactive'
    assert lab.health(2) == 200            # the other host is not affected
    rc, results = ansible(lab_env, 'lab1', 'ansible.builtin.systemd_service', 'name=%s state=stopped' % SERVICE)
    assert rc == 0 and results['lab1']['changed'] is False
    rc, results = ansible(lab_env, 'lab1', 'ansible.builtin.systemd_service', 'name=%s state=started' % SERVICE)
    assert rc == 0 and results['lab1']['changed'] is True
    assert lab.service_state(1) == 'active'
    deadline = time.monotonic() + 10
    while lab.health(1) != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lab.health(1) == 200


def test_hosts_are_isolated(lab):
    name = 'cflab-isolation-%s' % uuid.uuid4().hex
    for path in ('/opt/' + name, '/etc/' + name, '/root/' + name):
        assert inside(lab, 'lab1', 'sh', '-c', 'echo lab1 > %s' % path)[0] == 0
        assert inside(lab, 'lab1', 'cat', path) == (0, 'lab1\n')
        assert inside(lab, 'lab2', 'test', '-e', path)[0] == 1
        assert not os.path.exists(path), 'a host write reached the controller: %s' % path
    # each host answers on its own address and has its own name
    assert inside(lab, 'lab2', 'hostname')[1].strip() == 'lab2'
    assert '198.18.0.12/24' in inside(lab, 'lab2', 'ip', '-4', '-o', 'addr', 'show', 'eth0')[1]


def test_each_host_has_its_own_pid_namespace(lab):
    rc, out = inside(lab, 'lab1', 'ps', '-e', '-o', 'pid=,comm=')
    processes = [line.split(None, 1) for line in out.strip().splitlines()]
    assert rc == 0 and processes[0] == ['1', 'init']
    commands = [fields[1] for fields in processes]
    assert 'sshd' in commands and 'python3' in commands   # sshd and the service
    assert len(processes) < 15, processes                   # not the controller's processes
    pid1 = lab.state['hosts']['lab1']['pid1']
    assert os.stat('/proc/%d/ns/pid' % pid1).st_ino != os.stat('/proc/self/ns/pid').st_ino


def test_break_service_down_refuses_health(lab):
    result = lab.break_host('lab2', 'service_down')
    assert result['health'] == 0
    assert lab.service_state(2) == 'inactive'
    lab.provision('lab2')
    assert lab.health(2) == 200


def test_break_corrupt_db_gives_503(lab):
    lab.break_host('lab2', 'corrupt_db')
    assert lab.health(2) == 503
    conn = sqlite3.connect('file:%s?mode=ro' % lab.resolve(2, LIVE_DB), uri=True)
    try:
        assert conn.execute('PRAGMA quick_check').fetchone()[0] != 'ok'
    except sqlite3.DatabaseError:
        pass   # so damaged that SQLite refuses it outright: corrupt as well
    finally:
        conn.close()
    assert lab.health(1) == 200
    lab.provision('lab2')
    assert lab.health(2) == 200


def test_break_truth_low_then_cache_low_combine(lab):
    result = lab.break_host('lab2', 'truth_low_p0')
    assert result['health'] == 200          # the service was restarted on the new DB
    rc, out = inside(lab, 'lab2', 'sh', '-c', 'cd /opt/claude-code-production && node_modules/.bin/claude-flow truth --json')
    assert json.loads(out)['averageScore'] == pytest.approx(0.80, abs=0.005)
    conn = sqlite3.connect('file:%s?mode=ro' % lab.resolve(2, LIVE_DB), uri=True)
    try:
        recent = conn.execute("SELECT avg(truth_score) FROM verification_history "
                              "WHERE timestamp >= datetime('now', '-1 hour')").fetchone()[0]
    finally:
        conn.close()
    assert recent == pytest.approx(0.80, abs=0.01)
    result = lab.break_host('lab2', 'cache_low')
    assert result['knobs'] == {'truth-score': 0.80, 'cache-hit': 0.40}
    assert result['generator']['expected']['cache_hit_rate'] == pytest.approx(40.0, abs=0.5)
    assert result['generator']['expected']['truth_score'] == pytest.approx(0.80, abs=0.005)
    lab.provision('lab2')
    assert lab.status()[1]['knobs'] == {}


def test_down_leaves_nothing_behind(lab, lab_tools, tmp_path):
    """A second lab in its own state dir (own namespace names, beside the module's lab): up, an ssh
    master via its generated inventory, down, down again."""
    state = str(tmp_path / 'state')
    lab_tools.cli('up', '--hosts', '1', '--state-dir', state)
    try:
        other = lab_tools.labmod.Lab(state)
        assert other.prefix != 'cflab-'
        assert other.netns_names() == [other.prefix + 'host1', other.prefix + 'hub']
        rc, results = ansible(lab_tools.environment(state), 'lab1', 'ansible.builtin.ping', inventory=other.inventory)
        assert rc == 0 and results['lab1']['ping'] == 'pong'
        assert os.listdir(os.path.join(state, 'cp')), 'no ssh ControlPersist socket was made in the state dir'
        pid1 = other.state['hosts']['lab1']['pid1']
    finally:
        lab_tools.cli('down', '--state-dir', state)
    lab_tools.cli('down', '--state-dir', state)   # idempotent

    names = subprocess.run(['ip', 'netns', 'list'], stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    assert other.prefix not in names
    assert not os.path.exists('/proc/%d' % pid1)
    marker = ('CFLAB_STATE_DIR=%s' % state).encode()
    for pid in [name for name in os.listdir('/proc') if name.isdigit()]:
        try:
            with open('/proc/%s/environ' % pid, 'rb') as handle:
                environ = handle.read().split(b'\0')
            with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                cmdline = handle.read()
            with open('/proc/%s/mountinfo' % pid) as handle:
                mountinfo = handle.read()
        except OSError:
            continue   # gone meanwhile, or a kernel thread
        assert marker not in environ, 'process %s of the lab survived down' % pid
        assert state.encode() not in cmdline, 'process %s (%r) survived down' % (pid, cmdline)
        assert state + '/' not in mountinfo, 'a mount under the state dir survived in process %s' % pid
    assert os.listdir(os.path.join(state, 'cp')) == []
    assert not os.path.exists(os.path.join(state, 'hosts'))
    assert other.leftovers() == {'netns': [], 'processes': [], 'mounts': [], 'sockets': []}
    # the module's own lab was not touched
    assert lab.health(1) == 200
