# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the scenarios' testinfra verifiers share: the records create.yml and prepare.yml left in the
scenario's ephemeral directory, checks run inside a lab host, and the secret grep.

The secret grep reads files on the controller, never on a host through a command: the token would
otherwise sit in a host's process table as an argument. A host's own writes are the upper layers of
its overlays (tests/lab/README.md "What a host is"), so those are searched, whole.
"""

import json
import os
import sys

EPHEMERAL = os.environ.get('MOLECULE_EPHEMERAL_DIRECTORY', '')
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB_DIR = os.path.join(EPHEMERAL, 'lab')
sys.path.insert(0, os.path.join(REPO, 'tests', 'lab'))

import lab as labmod  # noqa: E402  (tests/lab is not a package)

APP_LINK = '/opt/claude-code-production'
LIVE_DB = APP_LINK + '/.swarm/memory.db'
PRESERVE_DIR = '/var/lib/claude-flow-runbook/preserved'
GUARD_LOCK = '/var/lib/claude-flow-runbook/guard/lock.json'
INCIDENTS = '/var/log/claude-code/incidents'
SERVICE = 'claude-code-production'
# Files of the ephemeral dir that hold the secret by design: where it is configured and where the
# receiver recorded the requests it was sent to.
SECRET_HOLDERS = ('notify.json', 'payloads.jsonl')


def lab():
    return labmod.Lab(LAB_DIR)


def notify():
    with open(os.path.join(EPHEMERAL, 'notify.json')) as handle:
        return json.load(handle)


def before(name):
    with open(os.path.join(EPHEMERAL, 'before', name + '.json')) as handle:
        return json.load(handle)


def payloads(prefix=''):
    try:
        with open(os.path.join(EPHEMERAL, 'payloads.jsonl')) as handle:
            records = [json.loads(line) for line in handle if line.strip()]
    except OSError:
        return []
    return [record for record in records if record['path'].startswith(prefix)]


def name_of(host):
    """testinfra host -> inventory name (lab1 ...)."""
    return host.backend.get_hostname()


def health(host):
    out = host.run('curl -s -o /dev/null -w %s --max-time 5 http://localhost:8080/health', '%{http_code}').stdout
    return int(out.strip() or 0)


def integrity(host, path=LIVE_DB):
    """PRAGMA integrity_check of a DB inside the host, read-only (immutable: no -wal/-shm made)."""
    code = ("import sqlite3, sys, os; p = os.path.realpath(sys.argv[1]); "
            "c = sqlite3.connect('file:' + p + '?mode=ro', uri=True); "
            "print(';'.join(r[0] for r in c.execute('PRAGMA integrity_check')))")
    result = host.run('python3 -c %s %s', code, path)
    return result.stdout.strip() if result.rc == 0 else 'error: ' + result.stderr.strip()[-300:]


def service_identity(host):
    """(main PID, its start time in clock ticks): a restart changes both."""
    pid = host.run('systemctl show %s -p MainPID', SERVICE).stdout.strip().partition('=')[2]
    start = ''
    if pid and pid != '0':
        start = host.run("awk '{print $22}' /proc/%s/stat", pid).stdout.strip()
    return pid, start


def release_files(host):
    """sha256 of the release files, as record-state.yml records them."""
    out = host.run("find /opt/claude-code-backups -type f ! -name '*-shm' ! -name '*.growth.json' "
                   "-exec sha256sum {} + | sort -k2").stdout
    return dict(reversed(line.split(None, 1)) for line in out.splitlines() if line.strip())


def preserved_sha256(host):
    """sha256 of every file under the preserve dir."""
    out = host.run('find %s -type f -exec sha256sum {} + 2>/dev/null', PRESERVE_DIR).stdout
    return set(line.split()[0] for line in out.splitlines() if line.strip())


def live_db_before(name):
    """Path and sha256 of the live DB recorded before converge."""
    record = before(name)
    path = record['link'] + '/.swarm/memory.db'
    return path, record['files'][path]


def _hits(root, needle, skip=()):
    found = []
    for base, dirs, files in os.walk(root):
        # never descend into skipped trees (a host's merged views show the controller's whole /usr ...)
        dirs[:] = [name for name in dirs if os.path.join(base, name) not in skip]
        for filename in files:
            path = os.path.join(base, filename)
            try:
                with open(path, 'rb') as handle:
                    if needle in handle.read():
                        found.append(path)
            except OSError:
                pass
    return found


def secret_hits():
    """Every file that holds the secret token outside the two that must: ansible's log of every
    playbook run, the fetched reports and anything else in the scenario's directory, and everything
    each lab host wrote (its overlays' upper layers)."""
    needle = notify()['secret'].encode()
    hits = [path for path in _hits(EPHEMERAL, needle, skip=(os.path.join(LAB_DIR, 'hosts'),))
            if os.path.relpath(path, EPHEMERAL) not in SECRET_HOLDERS]
    the_lab = lab()
    for name in sorted(the_lab.state.get('hosts', {})):
        hits += _hits(os.path.join(the_lab.host_dir(labmod.parse_host(name)), 'upper'), needle)
    return hits
