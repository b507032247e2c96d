# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PID 1 of one lab host, started by tests/lab/lab.py as `nsenter --net=<host netns> unshare --pid --mount --uts`.

It gives the host its own file system view, starts sshd and then only reaps children: services that
the systemctl replacement starts are re-parented here, and a dead child must not stay a zombie
(a zombie still "exists" for `kill -0`, so `systemctl stop` would wait on it).

    init.py --name lab1 --addr 198.18.0.11 --layers DIR --ready-fd N

DIR/<name> for each overlaid directory is that host's copy-on-write overlay, already mounted by lab.py
in the controller's mount namespace (so the controller can reach the host's files with real paths);
here it is bind-mounted over /<name>. Writes `READY` or `FAILED: reason` to fd N once sshd listens.
"""

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time

OVERLAID = ('etc', 'opt', 'srv', 'var', 'usr', 'root')
SSHD_PORT_HEX = '0016'
MNT_DETACH = 2
LAB_SOURCE_PREFIX = 'cflab'
PRIVATE = ('/run', '/tmp', '/dev/shm')
PR_SET_NAME = 15
LISTEN_STATE = '0A'


def run(*cmd):
    subprocess.run(cmd, check=True)


def umount_lazy(path):
    if libc().umount2(path.encode(), MNT_DETACH) != 0:
        raise OSError(ctypes.get_errno(), 'umount %s: %s' % (path, os.strerror(ctypes.get_errno())))


def inherited_mounts():
    """Mounts this namespace copied from the controller that a host must not keep: every lab's layers
    (lab.py names their sources cflab...), whose copies would let this host see other hosts' files
    and keep them alive after their lab is gone, and whatever is under the dirs this host gets
    fresh (/run/netns holds the handle of every network namespace)."""
    points = []
    with open('/proc/self/mountinfo') as handle:
        for line in handle:
            fields = line.split()
            point, source = fields[4], fields[fields.index('-') + 2]
            if source.startswith(LAB_SOURCE_PREFIX) and point not in ['/' + name for name in OVERLAID] \
                    or any(point == private or point.startswith(private + '/') for private in PRIVATE):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def mount_layers(layers):
    for name in OVERLAID:
        run('mount', '--bind', os.path.join(layers, name), '/' + name)
    for point in inherited_mounts():
        try:
            umount_lazy(point)
        except OSError:
            pass   # went with a parent unmounted before it
    # /sys as this network namespace shows it (what `ip netns exec` does): /sys/class/net is eth0 and lo.
    umount_lazy('/sys')
    run('mount', '-t', 'sysfs', 'cflab-sys', '/sys')
    # Private tmpfs where a real host has its own: runtime state (the systemctl replacement's too).
    run('mount', '-t', 'tmpfs', '-o', 'mode=755,size=64m', 'cflab-run', '/run')
    run('mount', '-t', 'tmpfs', '-o', 'mode=1777,size=256m', 'cflab-tmp', '/tmp')
    run('mount', '-t', 'tmpfs', '-o', 'mode=1777,size=64m', 'cflab-shm', '/dev/shm')
    # sshd's privilege separation dir; the canary makes Ansible's service_mgr fact say systemd.
    for path in ('/run/sshd', '/run/systemd/system', '/run/lock'):
        os.makedirs(path, exist_ok=True)
    os.chmod('/run/lock', 0o1777)
    # What the systemctl replacement's own init mode records once the system is up: without it every
    # systemctl start/stop first waits for a "booting" system (`systemctl is-system-running` -> running).
    with open('/run/sysinit.target.status', 'w') as handle:
        handle.write('ActiveState=active\nSubState=running\n')


def sshd_listening(addr):
    want = '%s:%s' % (''.join('%02X' % int(part) for part in reversed(addr.split('.'))), SSHD_PORT_HEX)
    with open('/proc/net/tcp') as handle:
        for line in handle.readlines()[1:]:
            fields = line.split()
            if fields[1] == want and fields[3] == LISTEN_STATE:
                return True
    return False


def libc():
    return ctypes.CDLL(None, use_errno=True)


def name_process_init():
    """/proc/1/comm = init: Ansible's service_mgr fact then trusts the systemd canary in /run (as on a
    systemd host) instead of reporting 'python3'."""
    libc().prctl(PR_SET_NAME, b'init', 0, 0, 0)


def start(args):
    name_process_init()
    mount_layers(args.layers)
    run('hostname', args.name)
    os.chdir('/')
    sshd = subprocess.Popen(['/usr/sbin/sshd', '-D', '-e', '-f', '/etc/ssh/sshd_config'], stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not sshd_listening(args.addr):
        if sshd.poll() is not None:
            raise RuntimeError('sshd exited with status %s (its messages are in the host log)' % sshd.returncode)
        if time.monotonic() > deadline:
            raise RuntimeError('sshd did not listen on %s:22 within 10 s' % args.addr)
        time.sleep(0.01)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--name', required=True)
    parser.add_argument('--addr', required=True)
    parser.add_argument('--layers', required=True)
    parser.add_argument('--ready-fd', type=int, required=True)
    args = parser.parse_args()
    ready = os.fdopen(args.ready_fd, 'w')
    try:
        start(args)
    except Exception as exc:  # any setup failure goes to lab.py; exiting ends the whole namespace
        ready.write('FAILED: %s\n' % exc)
        ready.close()
        sys.exit(1)
    ready.write('READY\n')
    ready.close()
    # Like systemd, PID 1 ignores SIGTERM from inside the host; lab.py ends the host with SIGKILL.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            time.sleep(0.2)


if __name__ == '__main__':
    main()
