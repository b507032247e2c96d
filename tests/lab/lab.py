# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab: real test hosts for the demo, the lab tests, molecule scenarios and benchmarks.

Each host labN is a Linux network namespace cflab-hostN (address 198.18.0.(10+N)) joined to a bridge
in the lab's own namespace cflab-hub (198.18.0.1). The controller has no address on that network: ssh
goes through `ip netns exec cflab-hub nc %h %p`. A host runs its own process tree (PID namespace,
PID 1 = tests/lab/host/init.py) with a private mount namespace: copy-on-write overlays over
/etc /opt /srv /var /usr /root, tmpfs /run /tmp /dev/shm, its own sshd, and /usr/bin/systemctl =
the docker-systemctl-replacement script, which runs the real unit claude-code-production
(tests/lab/standins/app.py).

Usage (root):
  python3 tests/lab/lab.py up --hosts N [--state-dir DIR] [--profile runbook] [--rows 5000]
                            [--real-cli 2.7.47[,3.43.0...]]   (real releases instead of the stand-in)
  python3 tests/lab/lab.py down | status [--json]
  python3 tests/lab/lab.py exec HOST -- CMD...
  python3 tests/lab/lab.py break HOST MODE        (MODE: one of BREAK_MODES)
  python3 tests/lab/lab.py provision HOST         (re-create the production layout on a host)
HOST is lab1, 1 or 198.18.0.11. The default state dir is .lab at the repository root, which is where
inventories/lab/hosts.yml finds the key; `up` also writes DIR/hosts.yml for a fleet of any size.
A lab in another state dir gets its own namespace names (cflab<id>-hub ...), so labs do not collide.
Importable: Lab(state_dir).up(n), .down(), .status(), .exec(host, argv), .break_host(host, mode),
.provision(host), .health(host), .leftovers().
"""

import argparse
import concurrent.futures
import contextlib
import ctypes
import datetime
import fcntl
import hashlib
import importlib.util
import json
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_STATE_DIR = os.path.join(REPO, '.lab')
DEFAULT_STANDINS = os.path.join(HERE, 'standins')
GENERATOR = os.path.join(HERE, 'memory_db_gen.py')
INIT = os.path.join(HERE, 'host', 'init.py')
REAL_CLAUDE_FLOW = os.path.join(HERE, 'real_claude_flow.py')
LAB_GROUP_VARS = os.path.join(REPO, 'inventories', 'lab', 'group_vars')

NETNS_DIR = '/run/netns'
BRIDGE = 'cflab-br0'
SUBNET = '198.18.0'            # only ever used inside namespaces the lab creates
HUB_ADDR = SUBNET + '.1'
FIRST_HOST_OCTET = 11
MAX_HOSTS = 200
OVERLAID = ('etc', 'opt', 'srv', 'var', 'usr', 'root')
HOST_PRIVATE = ('/run', '/tmp', '/dev/shm')   # tmpfs inside a host: the controller cannot reach them
HOST_PYTHON = '/usr/bin/python3'
HOST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
MARKER_ENV = 'CFLAB_STATE_DIR'   # every process a host starts by itself carries it

# The production layout (DESIGN.md "The managed system"), newest release last.
RELEASES = ('release-2026.11.20', 'release-2026.11.25', 'release-2026.11.27')
BACKUPS_DIR = '/opt/claude-code-backups'
APP_LINK = '/opt/claude-code-production'
SERVICE = 'claude-code-production'
APP_PORT = 8080
APP_INSTALL = '/usr/local/lib/claude-code/app.py'
LOG_DIR = '/var/log/claude-code'
# What the collection keeps on a host (locks, guard history, preserved DBs, timestamped backups): a host
# starts without it, whatever the machine under the overlays holds there.
RUNBOOK_STATE_DIRS = ('/var/lib/claude-flow-runbook', '/var/backups/claude-code')
UNIT_PATH = '/etc/systemd/system/%s.service' % SERVICE
CLAUDE_FLOW_VERSION = '2.7.47'
TRUTH_THRESHOLD = 0.85   # real claude-flow 2.x "moderate" mode passes a verification at >= 0.85
HEALTHY_TRUTH = 0.97
PROFILES = ('runbook', 'reasoningbank', 'v3')
# 2.x `verify verify --agent reviewer` simulates the reviewer's checks (no npm scripts run) and records
# one verification scoring 0.85 (each call starts a new history: the real CLI keeps only its own entry).
REAL_CLI_AGENT = 'reviewer'

# break mode -> generator knobs for a regenerated live DB; None: handled on its own.
BREAK_MODES = {
    'corrupt_db': None,
    'truth_low_p0': {'truth-score': 0.80},
    'truth_low_p1': {'truth-score': 0.88},
    'cache_low': {'cache-hit': 0.40},
    'goap_slow': {'goap-avg-ms': 250},
    'growth_rapid': {'growth-mb-per-hour': 500},
    'service_down': None,
}

READY_TIMEOUT = 20
HEALTH_TIMEOUT = 15
MNT_DETACH = 2
_LIBC = ctypes.CDLL(None, use_errno=True)

UNIT_TEXT = """[Unit]
Description=claude-code production service (lab stand-in)
After=network.target

[Service]
Type=simple
ExecStart={python} {app} --app-dir {link} --port {port} --log {log}
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""

SSHD_CONFIG = """# sshd of lab host {name} (tests/lab/lab.py)
ListenAddress {addr}:22
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
MaxStartups 100:30:200
MaxSessions 50
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
"""


class LabError(Exception):
    """A lab problem, worded with what to do about it."""


def run(cmd, check=True, **kwargs):
    """Run a command, capturing its output; on failure raise LabError with the command and its output."""
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False,
                          **kwargs)
    if check and proc.returncode != 0:
        raise LabError('command failed (rc %d): %s\n%s%s' % (proc.returncode, ' '.join(cmd), proc.stdout, proc.stderr))
    return proc


def mount(source, target, fstype, options):
    """mount(2) directly: a lab of 50 hosts makes 300 mounts, a process for each would be slow."""
    if _LIBC.mount(source.encode(), target.encode(), fstype.encode(), 0, options.encode()) != 0:
        err = ctypes.get_errno()
        raise LabError('cannot mount %s (%s) on %s: %s; the lab needs root and a kernel with %s'
                       % (source, fstype, target, os.strerror(err), fstype))


def umount(target):
    """Unmount, lazily when still busy."""
    if _LIBC.umount2(target.encode(), 0) != 0:
        _LIBC.umount2(target.encode(), MNT_DETACH)


def host_name(index):
    return 'lab%d' % index


def host_addr(index):
    return '%s.%d' % (SUBNET, FIRST_HOST_OCTET - 1 + index)


def parse_host(text):
    """lab3, 3 or 198.18.0.13 -> 3."""
    raw = str(text).strip()
    if raw.startswith('lab') and raw[3:].isdigit():
        return int(raw[3:])
    if raw.startswith(SUBNET + '.') and raw[len(SUBNET) + 1:].isdigit():
        return int(raw[len(SUBNET) + 1:]) - FIRST_HOST_OCTET + 1
    if raw.isdigit():
        return int(raw)
    raise LabError('%r is not a lab host; use a name like lab1, a number, or an address like %s'
                   % (text, host_addr(1)))


def iso_ms(epoch):
    """claude-flow's timestamp format: 2026-11-28T07:03:32.578Z."""
    stamp = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return stamp.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (stamp.microsecond // 1000)


def truth_state(score, now=None):
    """A .swarm/verification-memory.json in the real 2.x format whose entries average `score`."""
    now = time.time() if now is None else now
    agents = ('coder', 'tester', 'reviewer', 'backend-dev')
    offsets = (0.01, -0.01, 0.02, -0.02, 0.0, 0.01, -0.01, 0.0)   # they sum to 0: the average is `score`
    history = []
    for number, offset in enumerate(offsets):
        value = round(min(1.0, score + offset), 4)
        history.append({
            'taskId': 'task-%d' % (101 + number), 'agentType': agents[number % len(agents)],
            'score': value, 'passed': value >= TRUTH_THRESHOLD, 'threshold': TRUTH_THRESHOLD,
            # one every 6 minutes, all inside the last hour
            'timestamp': iso_ms(now - (len(offsets) - number) * 360),
            'results': [{'score': value, 'passed': value >= TRUTH_THRESHOLD}] * 3,
        })
    return {'scores': [], 'history': history, 'timestamp': history[-1]['timestamp']}


def write_file(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + '.lab-tmp'
    with open(tmp, 'w') as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def copy_file(src, dest, mode=None):
    """Copy a file nobody has open (fresh DBs included: the generator closed them) via temp + rename."""
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = dest + '.lab-tmp'
    shutil.copyfile(src, tmp)
    os.chmod(tmp, mode if mode is not None else os.stat(src).st_mode & 0o7777)
    os.replace(tmp, dest)


def load_generator():
    if not os.path.isfile(GENERATOR):
        raise LabError('%s is missing: the lab makes every memory.db with it; restore it from the repository'
                       % GENERATOR)
    spec = importlib.util.spec_from_file_location('cflab_memory_db_gen', GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_real_claude_flow():
    spec = importlib.util.spec_from_file_location('cflab_real_claude_flow', REAL_CLAUDE_FLOW)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def systemctl_script():
    """systemctl3.py of the PyPI package docker-systemctl-replacement (its module is systemctl2)."""
    candidates = []
    spec = importlib.util.find_spec('systemctl2')
    if spec is not None and spec.submodule_search_locations:
        candidates += [os.path.join(path, 'systemctl3.py') for path in spec.submodule_search_locations]
    # lab.py usually runs with the system python3 (as root): look in the project venv too.
    for venv in (os.environ.get('VIRTUAL_ENV'), os.path.join(REPO, '.venv')):
        lib = os.path.join(venv or '', 'lib')
        if venv and os.path.isdir(lib):
            candidates += [os.path.join(lib, name, 'site-packages', 'systemctl2', 'systemctl3.py')
                           for name in sorted(os.listdir(lib))]
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise LabError('cannot find systemctl3.py of the PyPI package docker-systemctl-replacement; install the '
                   'project venv (make venv) or run lab.py with the venv python')


def _proc_ids():
    return [int(name) for name in os.listdir('/proc') if name.isdigit()]


def _ns_inode(pid, kind):
    try:
        return os.stat('/proc/%d/ns/%s' % (pid, kind)).st_ino
    except OSError:
        return None


def _start_time(pid):
    """Start time of a process (clock ticks since boot): tells a PID from a later process with the same PID."""
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return int(handle.read().rsplit(')', 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _read_proc(pid, name):
    try:
        with open('/proc/%s/%s' % (pid, name), 'rb') as handle:
            return handle.read()
    except OSError:
        return b''


def _ancestors(pid):
    """pid and its parents up to PID 1."""
    chain = []
    while pid and pid not in chain:
        chain.append(pid)
        try:
            pid = int(_read_proc(pid, 'stat').rsplit(b')', 1)[1].split()[1])
        except (IndexError, ValueError):
            break
    return chain


def _mount_points(pid='self'):
    return [line.split()[4].replace('\\040', ' ')
            for line in _read_proc(pid, 'mountinfo').decode(errors='replace').splitlines()]


class Lab(object):
    """One lab, identified by its state dir."""

    def __init__(self, state_dir=None, standins=None):
        self.state_dir = os.path.abspath(state_dir or DEFAULT_STATE_DIR)
        self.standins = os.path.abspath(standins or DEFAULT_STANDINS)
        self.state_file = os.path.join(self.state_dir, 'lab.json')
        self.key = os.path.join(self.state_dir, 'id_ed25519')
        self.cp_dir = os.path.join(self.state_dir, 'cp')
        self.hosts_dir = os.path.join(self.state_dir, 'hosts')
        self.cache_dir = os.path.join(self.state_dir, 'cache')
        self.inventory = os.path.join(self.state_dir, 'hosts.yml')
        self.lock_file = os.path.join(self.state_dir, '.in-use')
        # The default lab's names are fixed (inventories/lab uses them); others get an id of their own.
        if os.path.realpath(self.state_dir) == os.path.realpath(DEFAULT_STATE_DIR):
            self.prefix = 'cflab-'
        else:
            self.prefix = 'cflab%s-' % hashlib.sha1(self.state_dir.encode()).hexdigest()[:6]
        self.hub = self.prefix + 'hub'
        self._lock = threading.Lock()
        self.state = self._load()

    # ------------------------------------------------------------------ in use

    @contextlib.contextmanager
    def hold(self, timeout=1800):
        """Hold the lab for this process (a test session): `lab.py up/down/break/provision` from any
        process that is not this one or its child refuse to touch it meanwhile; another hold() waits."""
        os.makedirs(self.state_dir, exist_ok=True)
        with open(self.lock_file, 'a+') as handle:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LabError('the lab in %s stayed in use by process %s for %d s'
                                       % (self.state_dir, self._holder(handle), timeout))
                    time.sleep(1)
            handle.truncate(0)
            handle.write('%d\n' % os.getpid())
            handle.flush()
            try:
                yield self
            finally:
                handle.truncate(0)
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _holder(handle):
        handle.seek(0)
        text = handle.read().strip()
        return int(text) if text.isdigit() else None

    def check_not_held(self):
        """LabError when another process holds the lab (see hold()); its children may go ahead."""
        try:
            handle = open(self.lock_file)
        except OSError:
            return
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
                fcntl.flock(handle, fcntl.LOCK_UN)
                return
            except BlockingIOError:
                holder = self._holder(handle)
        if holder not in _ancestors(os.getpid()):
            raise LabError('the lab in %s is in use by process %s (a test session); wait until it ends, or use '
                           '--state-dir DIR for a lab of your own' % (self.state_dir, holder))

    # ------------------------------------------------------------------ names, state, paths

    def netns(self, index):
        return '%shost%d' % (self.prefix, index)

    def netns_names(self):
        """This lab's network namespaces that exist now."""
        try:
            names = os.listdir(NETNS_DIR)
        except OSError:
            return []
        return sorted(name for name in names if name == self.hub or name.startswith(self.prefix + 'host'))

    def _load(self):
        try:
            with open(self.state_file) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {'hosts': {}}

    def _save(self):
        with self._lock:
            write_file(self.state_file, json.dumps(self.state, indent=2, sort_keys=True) + '\n')

    def _host(self, host):
        index = parse_host(host)
        record = self.state.get('hosts', {}).get(host_name(index))
        if not record:
            raise LabError('%s is not up in the lab at %s (up: %s); start hosts with `lab.py up --hosts N`'
                           % (host_name(index), self.state_dir,
                              ', '.join(sorted(self.state.get('hosts', {}))) or 'none'))
        if _start_time(record['pid1']) != record['pid1_start']:
            raise LabError('%s is not running any more (its PID 1 %d is gone); run `lab.py down`, then `up`'
                           % (record['name'], record['pid1']))
        return record

    def host_dir(self, index):
        return os.path.join(self.hosts_dir, host_name(index))

    def fs(self, host, path):
        """The controller-side path of an absolute path inside a host (no symlinks followed)."""
        index = parse_host(host)
        parts = path.strip('/').split('/')
        if parts[0] in OVERLAID:
            return os.path.join(self.host_dir(index), 'fs', *parts)
        if any(path == private or path.startswith(private + '/') for private in HOST_PRIVATE):
            raise LabError('%s is private to the host (tmpfs); reach it with `lab.py exec`' % path)
        return path   # not overlaid: shared with the controller

    def resolve(self, host, path):
        """Like fs(), following the host's symlinks (an absolute link target starts at the host's /)."""
        todo = [part for part in path.split('/') if part]
        done = []
        links = 0
        while todo:
            part = todo.pop(0)
            if part == '..':
                done = done[:-1]
                continue
            if part == '.':
                continue
            real = self.fs(host, '/' + '/'.join(done + [part]))
            if not os.path.islink(real):
                done.append(part)
                continue
            links += 1
            if links > 40:
                raise LabError('too many levels of symlinks in %s on %s' % (path, host))
            target = os.readlink(real)
            if target.startswith('/'):
                done = []
            todo = [item for item in target.split('/') if item] + todo
        return self.fs(host, '/' + '/'.join(done))

    # ------------------------------------------------------------------ up

    def _preflight(self):
        if os.geteuid() != 0:
            raise LabError('the lab needs root (it makes network, mount and PID namespaces); run it as root')
        missing = [tool for tool in ('ip', 'unshare', 'nsenter', 'mount', 'ssh', 'ssh-keygen', 'nc', 'curl',
                                     'hostname') if shutil.which(tool) is None]
        missing += [path for path in ('/usr/sbin/sshd', HOST_PYTHON) if not os.path.exists(path)]
        if missing:
            raise LabError('missing on this machine: %s; install them with `make deps` (tests/lab/ensure-deps.sh)'
                           % ', '.join(missing))
        if ',' in self.state_dir or ':' in self.state_dir:
            raise LabError('state dir %s contains "," or ":", which overlayfs options cannot carry; '
                           'choose another --state-dir' % self.state_dir)
        if not os.path.isfile(os.path.join(self.standins, 'app.py')):
            raise LabError('%s/app.py (the production service stand-in) is missing; restore it or pass '
                           '--standins DIR' % self.standins)
        load_generator()   # fails with the fix when it is missing or broken

    def up(self, hosts, profile='runbook', rows=5000, workers=None, real_cli=None):
        """Start `hosts` provisioned hosts; returns timings. On failure cleans up and raises LabError.
        real_cli: claude-flow versions (tests/lab/real_claude_flow.py) given to the hosts in turn instead
        of the stand-in: lab1 the first, lab2 the second, ..."""
        started = time.monotonic()
        if not 1 <= hosts <= MAX_HOSTS:
            raise LabError('--hosts must be between 1 and %d (got %d)' % (MAX_HOSTS, hosts))
        if profile not in PROFILES:
            raise LabError('--profile %r is unknown; use one of: %s' % (profile, ', '.join(PROFILES)))
        self._preflight()
        if self.state.get('hosts') or self.netns_names():
            raise LabError('the lab in %s is already up (hosts: %s; namespaces: %s); run `lab.py down` first'
                           % (self.state_dir, ', '.join(sorted(self.state.get('hosts', {}))) or 'none',
                              ', '.join(self.netns_names()) or 'none'))
        self.systemctl = systemctl_script()
        for path in (self.state_dir, self.cp_dir, self.hosts_dir):
            os.makedirs(path, exist_ok=True)
        self.state = {'hosts': {}, 'profile': profile, 'rows': rows, 'hub': self.hub,
                      'real_cli': list(real_cli or [])}
        self._save()
        timings = {}
        try:
            # The hosts' layers share one tmpfs: making and deleting them never waits on the disk, and
            # unmounting it at `down` frees them all at once.
            mount(self.prefix + 'layers', self.hosts_dir, 'tmpfs', 'mode=755')
            if not os.path.exists(self.key):
                run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'cflab-controller', '-f', self.key])
            self._make_hub()
            dbs = self._release_dbs(profile, rows)
            for version in self.state['real_cli']:
                self._real_release(version)
            timings['prepare_s'] = round(time.monotonic() - started, 2)
            with concurrent.futures.ThreadPoolExecutor(max_workers=workers or min(hosts, 16)) as pool:
                timings['hosts_s'] = dict(pool.map(lambda index: self._start_host(index, dbs), range(1, hosts + 1)))
            self._write_inventory()
        except BaseException:
            self.down()
            raise
        timings['total_s'] = round(time.monotonic() - started, 2)
        return timings

    def _make_hub(self):
        run(['ip', 'netns', 'add', self.hub])
        for cmd in (['link', 'add', BRIDGE, 'type', 'bridge'],
                    ['addr', 'add', HUB_ADDR + '/24', 'dev', BRIDGE],
                    ['link', 'set', BRIDGE, 'up'],
                    ['link', 'set', 'lo', 'up']):
            run(['ip', '-n', self.hub] + cmd)

    def _release_dbs(self, profile, rows):
        """A fresh DB per release (the generator dates rows relative to now), copied to every host."""
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        procs = {}
        for seed, release in enumerate(RELEASES, 1):
            os.makedirs(os.path.join(self.cache_dir, release))
            out = os.path.join(self.cache_dir, release, 'memory.db')
            procs[release] = (out, subprocess.Popen(
                [sys.executable, GENERATOR, out, '--profile', profile, '--rows', str(rows), '--preset', 'healthy',
                 '--seed', str(seed)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True))
        dbs = {}
        for release, (out, proc) in procs.items():
            err = proc.communicate()[1]
            if proc.returncode != 0:
                raise LabError('memory_db_gen.py failed for %s: %s' % (release, err.strip()))
            backup = os.path.join(os.path.dirname(out), 'memory.db.backup')
            self._sqlite_backup(out, backup)
            dbs[release] = (out, backup)
        return dbs

    @staticmethod
    def _sqlite_backup(src, dest):
        """memory.db.backup the way an operator makes it (`sqlite3 SRC ".backup DEST"`): the backup API."""
        source = sqlite3.connect(src)
        target = sqlite3.connect(dest)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        for path in (src, dest):
            if os.path.exists(path + '-wal'):
                raise LabError('%s-wal is left after closing %s; another process holds it open' % (path, path))

    def _start_host(self, index, dbs):
        started = time.monotonic()
        self._make_netns(index)
        self._mount_layers(index)
        self._write_access(index)
        record = self._spawn(index)
        with self._lock:
            self.state['hosts'][record['name']] = record
        self._save()
        self._provision(index, dbs)
        return record['name'], round(time.monotonic() - started, 2)

    def _make_netns(self, index):
        netns, veth = self.netns(index), 'vh%d' % index
        run(['ip', 'netns', 'add', netns])
        run(['ip', '-n', self.hub, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns])
        run(['ip', '-n', self.hub, 'link', 'set', veth, 'master', BRIDGE, 'up'])
        run(['ip', '-n', netns, 'addr', 'add', host_addr(index) + '/24', 'dev', 'eth0'])
        run(['ip', '-n', netns, 'link', 'set', 'eth0', 'up'])
        run(['ip', '-n', netns, 'link', 'set', 'lo', 'up'])
        # A default route like a real host's (facts such as ansible_default_ipv4 exist); the hub has no
        # uplink and does not forward, so nothing can leave the lab.
        run(['ip', '-n', netns, 'route', 'add', 'default', 'via', HUB_ADDR])

    def _mount_layers(self, index):
        """Overlays mounted in the controller's namespace, so that lab.py (and SQLite, which resolves
        /proc/PID/root away) reaches the host's files by plain paths; init.py binds them into the host."""
        base = self.host_dir(index)
        for name in OVERLAID:
            upper, work, merged = (os.path.join(base, part, name) for part in ('upper', 'work', 'fs'))
            for path in (upper, work, merged):
                os.makedirs(path)
            mount(self.prefix + name, merged, 'overlay', 'lowerdir=/%s,upperdir=%s,workdir=%s' % (name, upper, work))

    def _write_access(self, index):
        """sshd config and host key, root's authorized key, host name, the systemctl replacement."""
        name, addr = host_name(index), host_addr(index)
        write_file(self.fs(index, '/etc/ssh/sshd_config'), SSHD_CONFIG.format(name=name, addr=addr))
        for suffix in ('', '.pub'):
            if os.path.exists(self.fs(index, '/etc/ssh/ssh_host_ed25519_key' + suffix)):
                os.unlink(self.fs(index, '/etc/ssh/ssh_host_ed25519_key' + suffix))
        run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'root@' + name,
             '-f', self.fs(index, '/etc/ssh/ssh_host_ed25519_key')])
        os.makedirs(self.fs(index, '/root/.ssh'), mode=0o700, exist_ok=True)
        copy_file(self.key + '.pub', self.fs(index, '/root/.ssh/authorized_keys'), mode=0o600)
        write_file(self.fs(index, '/etc/hostname'), name + '\n')
        write_file(self.fs(index, '/etc/hosts'), '127.0.0.1\tlocalhost\n%s\t%s\n' % (addr, name))
        copy_file(self.systemctl, self.fs(index, '/usr/bin/systemctl'), mode=0o755)

    def _host_env(self):
        return {'PATH': HOST_PATH, 'HOME': '/root', 'LANG': 'C.UTF-8', MARKER_ENV: self.state_dir}

    def _spawn(self, index):
        name, base = host_name(index), self.host_dir(index)
        read_end, write_end = os.pipe()
        # nsenter joins the host's network namespace without the mount-namespace copy that
        # `ip netns exec` keeps alive next to every host; init.py mounts that namespace's /sys itself.
        cmd = ['nsenter', '--net=%s/%s' % (NETNS_DIR, self.netns(index)),
               'unshare', '--pid', '--fork', '--mount-proc', '--mount', '--uts', '--propagation', 'private', '--',
               HOST_PYTHON, INIT, '--name', name, '--addr', host_addr(index), '--layers', os.path.join(base, 'fs'),
               '--ready-fd', str(write_end)]
        with open(os.path.join(base, 'init.log'), 'ab') as log:
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(write_end,),
                                        start_new_session=True, env=self._host_env())
            finally:
                os.close(write_end)
        line = b''
        deadline = time.monotonic() + READY_TIMEOUT
        with os.fdopen(read_end, 'rb') as ready:
            while not line.endswith(b'\n') and select.select([ready], [], [], max(0, deadline - time.monotonic()))[0]:
                chunk = os.read(ready.fileno(), 256)
                if not chunk:
                    break
                line += chunk
        if line.strip() != b'READY':
            reason = line.decode(errors='replace').strip() or 'no answer within %d s' % READY_TIMEOUT
            raise LabError('%s did not start: %s\n--- %s/init.log ---\n%s' % (name, reason, base, self._tail(index)))
        children = _read_proc(proc.pid, 'task/%d/children' % proc.pid).split()
        if len(children) != 1:
            raise LabError('%s: expected one child (PID 1) under unshare %d, found %r' % (name, proc.pid, children))
        pid1 = int(children[0])
        return {'name': name, 'index': index, 'addr': host_addr(index), 'netns': self.netns(index),
                'pid1': pid1, 'pid1_start': _start_time(pid1), 'pidns': _ns_inode(pid1, 'pid'), 'knobs': {}}

    def _tail(self, index, lines=20):
        try:
            with open(os.path.join(self.host_dir(index), 'init.log'), errors='replace') as handle:
                return ''.join(handle.readlines()[-lines:])
        except OSError:
            return '(no log)'

    # ------------------------------------------------------------------ provisioning

    def _provision(self, index, dbs):
        """The production layout of DESIGN.md written into this host's overlays; then the unit started."""
        now = time.time()
        claude_flow = os.path.join(self.standins, 'claude-flow')
        real = self._real_release(self.real_cli_version(index))
        healthy = json.dumps(truth_state(HEALTHY_TRUTH, now), indent=2) + '\n'
        for path in RUNBOOK_STATE_DIRS:
            shutil.rmtree(self.fs(index, path), ignore_errors=True)
        for number, release in enumerate(RELEASES):
            app = self.fs(index, '%s/%s' % (BACKUPS_DIR, release))
            db, backup = dbs[release]
            copy_file(db, os.path.join(app, '.swarm', 'memory.db'))
            copy_file(backup, os.path.join(app, 'memory.db.backup'))
            write_file(os.path.join(app, '.swarm', 'verification-memory.json'), healthy)
            if real is not None:
                self._place_real_release(real, app)
            elif os.path.isfile(claude_flow):
                copy_file(claude_flow, os.path.join(app, 'node_modules', '.bin', 'claude-flow'), mode=0o755)
            write_file(os.path.join(app, 'package.json'), json.dumps(
                {'name': 'claude-code-production', 'version': release.split('-', 1)[1], 'private': True,
                 'dependencies': {'claude-flow': real['version'] if real else CLAUDE_FLOW_VERSION}}, indent=2) + '\n')
            day = release.split('-', 1)[1].replace('.', '-')
            write_file(os.path.join(app, 'deployment-log.txt'), ''.join('%sT%s %s\n' % (day, clock, text) for clock, text in (
                ('09:00:00Z', 'deploy %s started by deploy-bot (pipeline #%d)' % (release, 4100 + number)),
                ('09:02:41Z', 'deploy %s: npm ci done, claude-flow@%s' % (release, CLAUDE_FLOW_VERSION)),
                ('09:03:05Z', 'deploy %s: memory.db.backup written with sqlite3 .backup' % release),
                ('09:03:12Z', 'deploy %s finished: %s -> %s/%s' % (release, APP_LINK, BACKUPS_DIR, release)))))
        link = self.fs(index, APP_LINK)
        os.symlink('%s/%s' % (BACKUPS_DIR, RELEASES[-1]), link + '.lab-tmp')
        os.replace(link + '.lab-tmp', link)
        copy_file(os.path.join(self.standins, 'app.py'), self.fs(index, APP_INSTALL), mode=0o755)
        write_file(self.fs(index, UNIT_PATH), UNIT_TEXT.format(
            python=HOST_PYTHON, app=APP_INSTALL, link=APP_LINK, port=APP_PORT, log=LOG_DIR + '/application.log'))
        os.makedirs(self.fs(index, LOG_DIR + '/incidents'), exist_ok=True)
        day = time.strftime('%Y-%m-%dT', time.gmtime(now - 86400))
        write_file(self.fs(index, LOG_DIR + '/application.log'), ''.join('%s%s\n' % (day, line) for line in (
            '06:00:01Z INFO app started release %s on port %d' % (RELEASES[-2], APP_PORT),
            '06:10:12Z INFO http 127.0.0.1 GET /health 200 1.9ms',
            '07:41:55Z ERROR memory SQLITE_BUSY: database is locked (retry 1/3)',
            '07:41:56Z INFO memory retry succeeded',
            '09:03:20Z INFO app stopping for deploy of %s' % RELEASES[-1],
            '09:03:22Z INFO app started release %s on port %d' % (RELEASES[-1], APP_PORT),
            '11:27:03Z ERROR verification truth check timed out after 30s (agent tester)',
            '11:27:40Z INFO verification truth check recovered')))
        self._systemctl(index, 'enable', SERVICE)
        started = self._systemctl(index, 'start', SERVICE, check=False)
        if started.returncode != 0:
            # the systemctl replacement keeps the service's own output in its journal file
            journal = self.fs(index, '/var/log/journal/%s.service.log' % SERVICE)
            tail = open(journal, errors='replace').read()[-2000:] if os.path.exists(journal) else '(no output)'
            raise LabError('%s: `systemctl start %s` failed (rc %d): %s\n--- service output ---\n%s'
                           % (host_name(index), SERVICE, started.returncode, started.stdout + started.stderr, tail))
        self._wait_health(index, 200)

    # ------------------------------------------------------------------ real claude-flow releases

    def real_cli_version(self, host):
        """The real claude-flow release of a host (up --real-cli), or None for the stand-in."""
        versions = self.state.get('real_cli') or []
        return versions[(parse_host(host) - 1) % len(versions)] if versions else None

    def _real_release(self, version):
        """Files of a real release for the hosts, made once per lab in the cache dir: the cached install
        (tests/lab/real_claude_flow.py), a .swarm/memory.db the real CLI created (2.x `memory store`,
        3.x `memory init` + `memory store`) with its backup, and on 2.x the verification state the real
        CLI wrote (`verify verify` of an agent type whose checks it simulates: one entry, 0.85, which the
        severity table puts in P1)."""
        if version is None:
            return None
        cached = getattr(self, '_real', {}).get(version)
        if cached and os.path.exists(cached['db']):   # provision() empties the cache dir
            return cached
        real_cli = load_real_claude_flow()
        try:
            install = os.path.join(real_cli.cache_root(), real_cli.install(version)['key'])
            work = os.path.join(self.cache_dir, 'real-' + version)
            shutil.rmtree(work, ignore_errors=True)
            app = real_cli.link_app(install, os.path.join(work, 'app'))
            real_cli.make_memory_db(app, version)
            state = None
            if real_cli.major_of(version) == 2:
                out, err, rc, _seconds = real_cli.run_cli(app, ['verify', 'verify', 'task-1', '--agent', REAL_CLI_AGENT])
                if rc != 0:
                    raise LabError('claude-flow %s verify verify failed (rc %s): %s'
                                   % (version, rc, (out + err).decode('utf-8', 'replace')[-800:]))
                state = os.path.join(app, '.swarm', 'verification-memory.json')
        except real_cli.RealCliError as exc:
            raise LabError(str(exc))
        db = os.path.join(app, '.swarm', 'memory.db')
        backup = os.path.join(work, 'memory.db.backup')
        self._sqlite_backup(db, backup)
        self._real = dict(getattr(self, '_real', {}), **{version: {
            'version': version, 'node_modules': os.path.join(install, 'node_modules'), 'db': db, 'backup': backup,
            'state': state}})
        return self._real[version]

    @staticmethod
    def _place_real_release(real, app):
        """A release dir running the real CLI: node_modules is the cached install (a symlink: the tree is
        ~1 GB, shared by every host; the lab's paths outside the overlaid dirs are the controller's)."""
        link = os.path.join(app, 'node_modules')
        if os.path.lexists(link):
            shutil.rmtree(link) if os.path.isdir(link) and not os.path.islink(link) else os.unlink(link)
        os.symlink(real['node_modules'], link)
        copy_file(real['db'], os.path.join(app, '.swarm', 'memory.db'))
        copy_file(real['backup'], os.path.join(app, 'memory.db.backup'))
        state = os.path.join(app, '.swarm', 'verification-memory.json')
        if real['state']:
            copy_file(real['state'], state)
        elif os.path.exists(state):
            os.unlink(state)   # 3.x keeps no verification state

    def provision(self, host):
        """Re-create the production layout on a running host: fresh healthy DBs, newest release live."""
        record = self._host(host)
        index = record['index']
        self.systemctl = systemctl_script()
        self._systemctl(index, 'stop', SERVICE, check=False)
        for path in (BACKUPS_DIR, LOG_DIR):
            shutil.rmtree(self.fs(index, path), ignore_errors=True)
        if os.path.lexists(self.fs(index, APP_LINK)):
            os.unlink(self.fs(index, APP_LINK))
        self._provision(index, self._release_dbs(self.state['profile'], self.state['rows']))
        self._set_knobs(record, {})
        return {'host': record['name'], 'provisioned': True, 'health': self.health(index)}

    # ------------------------------------------------------------------ inside a host

    def exec(self, host, argv, capture=False, check=False, timeout=None, input=None):
        """Run argv inside a host (its mount, PID, network and UTS namespaces) with a clean environment."""
        record = self._host(host)
        env = ['%s=%s' % item for item in sorted(self._host_env().items())]
        cmd = ['nsenter', '--target', str(record['pid1']), '--mount', '--uts', '--pid', '--net', '--',
               'env', '-i'] + env + list(argv)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.PIPE if capture else None, universal_newlines=True,
                              timeout=timeout, input=input, check=False)
        if check and proc.returncode != 0:
            raise LabError('on %s, `%s` failed (rc %d): %s%s' % (record['name'], ' '.join(argv), proc.returncode,
                                                                 proc.stdout or '', proc.stderr or ''))
        return proc

    def _systemctl(self, host, *args, check=True):
        return self.exec(host, ['systemctl'] + list(args), capture=True, check=check)

    def service_state(self, host):
        return self._systemctl(host, 'is-active', SERVICE, check=False).stdout.strip()

    def health(self, host):
        """HTTP status of the app's /health, asked from inside the host's network; 0 when nothing answers."""
        index = parse_host(host)
        proc = run(['nsenter', '--net=%s/%s' % (NETNS_DIR, self.netns(index)), 'curl', '-s', '-o', '/dev/null',
                    '-w', '%{http_code}', '--max-time', '3', 'http://127.0.0.1:%d/health' % APP_PORT], check=False)
        try:
            return int(proc.stdout.strip() or 0)
        except ValueError:
            return 0

    def _wait_health(self, host, want, timeout=HEALTH_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            code = self.health(host)
            if code == want:
                return code
            if time.monotonic() > deadline:
                name = host_name(parse_host(host))
                raise LabError('%s: /health answered %s, expected %s within %d s; see %s/application.log on the '
                               'host and `lab.py exec %s -- systemctl status %s`'
                               % (name, code or 'nothing', want, timeout, LOG_DIR, name, SERVICE))
            time.sleep(0.1)

    # ------------------------------------------------------------------ break

    def _set_knobs(self, record, knobs):
        with self._lock:
            record['knobs'] = knobs
        self._save()

    def break_host(self, host, mode):
        """Put a host into one of the runbook's failure states (BREAK_MODES).

        DB modes combine: the live DB is regenerated with every knob set so far (a later one wins for the
        same knob), which also replaces a corrupt DB. `provision` makes the host healthy again."""
        if mode not in BREAK_MODES:
            raise LabError('break mode %r is unknown; use one of: %s' % (mode, ', '.join(sorted(BREAK_MODES))))
        record = self._host(host)
        index = record['index']
        live = self.resolve(index, APP_LINK + '/.swarm/memory.db')
        result = {'host': record['name'], 'mode': mode, 'db': live}
        if mode == 'service_down':
            self._systemctl(index, 'stop', SERVICE)
            result['health'] = self.health(index)
            return result
        if mode == 'corrupt_db':
            # Damage the live file under the running service, as a failing disk or a bad copy would.
            result['damage'] = load_generator().corrupt(live, 'overwritten_pages')
            result['health'] = self.health(index)
            return result
        knobs = dict(record.get('knobs', {}), **BREAK_MODES[mode])
        work = os.path.join(self.host_dir(index), 'regen')
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        fresh = os.path.join(work, 'memory.db')
        cmd = [sys.executable, GENERATOR, fresh, '--profile', self.state['profile'], '--rows', str(self.state['rows']),
               '--preset', 'healthy']
        for flag, value in sorted(knobs.items()):
            cmd += ['--' + flag, str(value)]
        result['generator'] = json.loads(run(cmd).stdout)
        # A live DB is never replaced under its service: stop it, swap the whole set, start it again
        # (unless it was already down: a service_down break stays in force).
        was_active = self.service_state(index) == 'active'
        if was_active:
            self._systemctl(index, 'stop', SERVICE)
        for suffix in ('-wal', '-shm', '-journal', '.growth.json'):
            if os.path.exists(live + suffix):
                os.unlink(live + suffix)
        copy_file(fresh, live)
        if os.path.exists(fresh + '.growth.json'):
            copy_file(fresh + '.growth.json', live + '.growth.json')
        write_file(os.path.join(os.path.dirname(live), 'verification-memory.json'),
                   json.dumps(truth_state(knobs.get('truth-score', HEALTHY_TRUTH)), indent=2) + '\n')
        shutil.rmtree(work, ignore_errors=True)
        self._set_knobs(record, knobs)
        result['knobs'] = knobs
        if was_active:
            self._systemctl(index, 'start', SERVICE)
            result['health'] = self._wait_health(index, 200)
        else:
            result['health'] = self.health(index)
        return result

    # ------------------------------------------------------------------ status

    def status(self):
        def one(record):
            alive = _start_time(record['pid1']) == record['pid1_start']
            row = {'host': record['name'], 'addr': record['addr'], 'netns': record['netns'], 'pid1': record['pid1'],
                   'running': alive, 'sshd': False, 'service': 'unknown', 'health': 0, 'knobs': record.get('knobs')}
            if alive:
                port = '%s:0016' % ''.join('%02X' % int(part) for part in reversed(record['addr'].split('.')))
                row['sshd'] = port.encode() in _read_proc(record['pid1'], 'net/tcp')
                row['service'] = self.service_state(record['index'])
                row['health'] = self.health(record['index'])
            return row
        records = sorted(self.state.get('hosts', {}).values(), key=lambda record: record['index'])
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(one, records))

    # ------------------------------------------------------------------ inventory

    def _write_inventory(self):
        """DIR/hosts.yml for this fleet; DIR/group_vars links to inventories/lab/group_vars, so the same
        connection settings, paths and thresholds apply, with this lab's state dir and hub set per host."""
        records = sorted(self.state['hosts'].values(), key=lambda record: record['index'])
        lines = ['# Written by tests/lab/lab.py up: the running lab in this directory.',
                 'all:', '  children:', '    lab:', '      hosts:']
        for record in records:
            lines += ['        %s:' % record['name'],
                      '          ansible_host: %s' % record['addr'],
                      '          lab_state_dir: %s' % json.dumps(self.state_dir),
                      '          lab_hub_netns: %s' % self.hub]
        lines += ['    claude_flow:', '      hosts:'] + ['        %s:' % record['name'] for record in records]
        write_file(self.inventory, '\n'.join(lines) + '\n')
        link = os.path.join(self.state_dir, 'group_vars')
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(LAB_GROUP_VARS, link)

    # ------------------------------------------------------------------ down

    def _marked_processes(self, netns_inodes=(), pidns_inodes=()):
        """Processes of this lab: started by a host (marker in the environment), inside its namespaces,
        or an ssh master whose control socket is in the state dir."""
        marker = ('%s=%s' % (MARKER_ENV, self.state_dir)).encode()
        socket_dir = (self.cp_dir + '/').encode()
        found = []
        for pid in _proc_ids():
            if pid == os.getpid():
                continue
            if _ns_inode(pid, 'net') in netns_inodes or _ns_inode(pid, 'pid') in pidns_inodes \
                    or marker in _read_proc(pid, 'environ').split(b'\0') or socket_dir in _read_proc(pid, 'cmdline'):
                found.append(pid)
        return found

    def _mounts(self, pid='self'):
        prefix = self.state_dir + '/'
        return [point for point in _mount_points(pid) if point.startswith(prefix)]

    def _sockets(self):
        try:
            return sorted(os.path.join(self.cp_dir, name) for name in os.listdir(self.cp_dir))
        except OSError:
            return []

    def down(self):
        """Stop and remove everything this lab started. Idempotent; also cleans up after a failed up."""
        started = time.monotonic()
        for sock in self._sockets():
            run(['ssh', '-O', 'exit', '-o', 'ControlPath=' + sock, 'cflab'], check=False, timeout=10)
        records = list(self.state.get('hosts', {}).values())
        for record in records:
            if _start_time(record['pid1']) == record['pid1_start']:
                os.kill(record['pid1'], signal.SIGKILL)   # the kernel then kills its whole PID namespace
        netns_inodes = set()
        for name in self.netns_names():
            try:
                netns_inodes.add(os.stat(os.path.join(NETNS_DIR, name)).st_ino)
            except OSError:
                pass
        pidns_inodes = set(record['pidns'] for record in records if record.get('pidns'))
        deadline = time.monotonic() + 15
        while True:
            # also catches a host whose PID 1 was never recorded (interrupted up) and ProxyCommand nc's
            left = self._marked_processes(netns_inodes, pidns_inodes)
            if not left:
                break
            if time.monotonic() > deadline:
                raise LabError('lab processes survive SIGKILL after 15 s: %s' % ', '.join(map(str, left)))
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.05)
        for point in sorted(self._mounts(), key=len, reverse=True):
            if point != self.hosts_dir:
                umount(point)
        # Empty the layers' tmpfs before unmounting it, so that a copy of it in someone else's
        # mount namespace holds no data; then take this lab's mounts out of such namespaces too.
        if os.path.ismount(self.hosts_dir):
            for name in os.listdir(self.hosts_dir):
                shutil.rmtree(os.path.join(self.hosts_dir, name), ignore_errors=True)
            umount(self.hosts_dir)
        names = self.netns_names()
        self._umount_elsewhere([os.path.join(NETNS_DIR, name) for name in names])
        for name in names:
            run(['ip', 'netns', 'del', name], check=False)
        for sock in self._sockets():
            os.unlink(sock)
        for path in (self.hosts_dir, self.cache_dir):
            shutil.rmtree(path, ignore_errors=True)
        for path in (self.state_file, self.inventory, os.path.join(self.state_dir, 'group_vars')):
            if os.path.lexists(path):
                os.unlink(path)
        self.state = {'hosts': {}}
        leftovers = self.leftovers()
        if any(leftovers.values()):
            raise LabError('lab down left things behind: %s' % json.dumps(leftovers))
        return {'down': True, 'hosts': len(records), 'seconds': round(time.monotonic() - started, 2)}

    def _umount_elsewhere(self, netns_handles):
        """A process that made a mount namespace while the lab was up (an `ip netns exec`, a container)
        has copies of the lab's mounts, and of /run/netns handles that would keep the lab's network
        namespaces alive: unmount them there, once per namespace."""
        done = {_ns_inode(os.getpid(), 'mnt')}
        for pid in _proc_ids():
            namespace = _ns_inode(pid, 'mnt')
            if namespace in done:
                continue
            points = self._mounts(pid) + [point for point in _mount_points(pid) if point in netns_handles]
            if points:
                done.add(namespace)
                run(['nsenter', '--target', str(pid), '--mount', '--', 'umount', '-l']
                    + sorted(points, key=len, reverse=True), check=False)

    def leftovers(self):
        """What of this lab exists now: namespaces, processes, mounts (in any process's view), ssh sockets."""
        mounts = set(self._mounts())
        for pid in _proc_ids():
            mounts.update(self._mounts(pid))
        return {'netns': self.netns_names(), 'processes': self._marked_processes(), 'mounts': sorted(mounts),
                'sockets': self._sockets()}


# ---------------------------------------------------------------------- CLI

def main(argv=None):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--state-dir', default=DEFAULT_STATE_DIR,
                        help='keys, layers, sockets and hosts.yml (default: .lab at the repository root)')
    common.add_argument('--standins', default=DEFAULT_STANDINS, help='dir with app.py and claude-flow')
    parser = argparse.ArgumentParser(description='Lab of real test hosts (network, PID and mount namespaces).')
    sub = parser.add_subparsers(dest='command', required=True)
    up = sub.add_parser('up', parents=[common], help='start N provisioned hosts')
    up.add_argument('--hosts', type=int, default=2)
    up.add_argument('--profile', default='runbook', choices=PROFILES, help='schema profile of every memory.db')
    up.add_argument('--rows', type=int, default=5000, help='rows per generated memory.db')
    up.add_argument('--real-cli', default='', metavar='VERSION[,VERSION...]',
                    help='real claude-flow releases (tests/lab/real_claude_flow.py install) instead of the stand-in, '
                         'given to the hosts in turn: lab1 the first, lab2 the second, ...')
    sub.add_parser('down', parents=[common], help='stop and remove everything the lab started')
    status = sub.add_parser('status', parents=[common], help='state of every host')
    status.add_argument('--json', action='store_true')
    execute = sub.add_parser('exec', parents=[common], help='run a command inside a host: exec HOST -- CMD...')
    execute.add_argument('host')
    execute.add_argument('argv', nargs=argparse.REMAINDER)
    breaker = sub.add_parser('break', parents=[common], help='put a host into a failure state')
    breaker.add_argument('host')
    breaker.add_argument('mode', choices=sorted(BREAK_MODES))
    provision = sub.add_parser('provision', parents=[common], help='re-create the production layout on a host')
    provision.add_argument('host')
    args = parser.parse_args(argv)
    lab = Lab(args.state_dir, args.standins)
    try:
        if args.command in ('up', 'down', 'break', 'provision'):
            lab.check_not_held()
        if args.command == 'up':
            timings = lab.up(args.hosts, profile=args.profile, rows=args.rows,
                             real_cli=[item for item in args.real_cli.split(',') if item])
            print('lab up: %d hosts in %.2f s; inventory %s' % (args.hosts, timings['total_s'], lab.inventory))
        elif args.command == 'down':
            result = lab.down()
            print('lab down: %d hosts stopped in %.2f s' % (result['hosts'], result['seconds']))
        elif args.command == 'status':
            rows = lab.status()
            if args.json:
                print(json.dumps(rows, indent=2))
            elif not rows:
                print('lab is down (%s)' % lab.state_dir)
            else:
                for row in rows:
                    print('%-6s %-13s pid1=%-7s running=%-5s sshd=%-5s service=%-9s health=%-3s knobs=%s' % (
                        row['host'], row['addr'], row['pid1'], row['running'], row['sshd'], row['service'],
                        row['health'], json.dumps(row['knobs'])))
        elif args.command == 'exec':
            command = args.argv[1:] if args.argv[:1] == ['--'] else args.argv
            if not command:
                parser.error('exec needs a command: lab.py exec HOST -- CMD...')
            return lab.exec(args.host, command).returncode
        elif args.command == 'break':
            print(json.dumps(lab.break_host(args.host, args.mode), indent=2, default=str))
        elif args.command == 'provision':
            print(json.dumps(lab.provision(args.host)))
    except LabError as exc:
        sys.stderr.write('lab: error: %s\n' % exc)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
