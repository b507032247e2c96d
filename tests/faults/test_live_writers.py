# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault matrix, live writers, hostile paths and exhausted resources around the DB modules.

Writers here are real processes that open the DB, commit one row and close it again, the way claude-flow
hooks and CLI calls do (stopping the service does not stop them). Every row a writer reports as committed
must afterwards be in the restored DB or in the preserved set: the cases count them."""

import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time

import pytest

# run_module: each real run preceded by its check-mode twin
from conftest import PriorState, check_module, compare_module, integrity, make_db, record_check, run_module, sha256

# One row per connection: open, BEGIN IMMEDIATE, INSERT, COMMIT, close; print the id once COMMIT returned.
# A locked DB (SQLITE_BUSY after its busy timeout) is a failed write the writer knows about: not reported.
PER_COMMIT_WRITER = r'''
import os, sqlite3, sys, time
path, stop, pause, start = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
n = start
print('ready', flush=True)
while not os.path.exists(stop):
    n += 1
    try:
        conn = sqlite3.connect(path, timeout=2, isolation_level=None)
        try:
            conn.execute('BEGIN IMMEDIATE')
            conn.execute('INSERT INTO live_writer (id) VALUES (?)', (n,))
            conn.execute('COMMIT')
        finally:
            conn.close()
        print(n, flush=True)
    except sqlite3.Error as exc:
        print('E', exc, flush=True)
    if pause:
        time.sleep(pause)
'''


class PerCommitWriter(object):
    """A writer process; committed() is the ids it reported committed."""

    def __init__(self, db, stop_file, pause, start):
        self.proc = subprocess.Popen([sys.executable, '-c', PER_COMMIT_WRITER, db, stop_file, str(pause), str(start)],
                                     stdout=subprocess.PIPE, universal_newlines=True)
        assert self.proc.stdout.readline().strip() == 'ready'
        self.lines = []
        self.reader = threading.Thread(target=self._read)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def finish(self):
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join()

    def committed(self):
        return set(int(line) for line in self.lines if line.isdigit())

    def errors(self):
        return [line for line in self.lines if line.startswith('E')]


def ids_in(db_files_dir, name='memory.db'):
    """live_writer ids of a DB set (db + -wal read together), from a scratch copy: nothing written beside it."""
    scratch = tempfile.mkdtemp(prefix='faults-ids-')
    try:
        for suffix in ('', '-wal'):
            member = os.path.join(db_files_dir, name + suffix)
            if os.path.isfile(member):
                shutil.copy(member, os.path.join(scratch, 'memory.db' + suffix))
        if not os.path.isfile(os.path.join(scratch, 'memory.db')):
            return set()
        conn = sqlite3.connect(os.path.join(scratch, 'memory.db'))
        try:
            return set(row[0] for row in conn.execute('SELECT id FROM live_writer'))
        except sqlite3.Error:
            return set()
        finally:
            conn.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def preserved_ids(preserve_root):
    found = set()
    if not os.path.isdir(preserve_root):
        return found
    for entry in os.listdir(preserve_root):
        found |= ids_in(os.path.join(preserve_root, entry))
    return found


def live_app(tmp_path, rows=20000):
    """An app dir whose DB has a live_writer table, and a verified backup of it."""
    db = make_db(str(tmp_path / 'app' / '.swarm' / 'memory.db'), rows=rows)
    conn = sqlite3.connect(db)
    conn.execute('CREATE TABLE live_writer (id INTEGER PRIMARY KEY)')
    conn.commit()
    conn.close()
    backups = str(tmp_path / 'backups')
    taken = run_module('memory_db_backup', {'path': db, 'dest': backups, 'timestamped': True})
    assert not taken.get('failed'), taken
    return db, backups


# (name, delay of the writer's start after the restore starts, pause between commits)
TIMINGS = [
    ('before-fast', -0.5, 0.0),
    ('before-slow', -0.5, 0.02),
    ('with-restore-fast', 0.0, 0.0),
    ('during-preserve-slow', 0.15, 0.01),
    ('after-preserve-fast', 0.4, 0.0),
]


@pytest.mark.fault('concurrency and live writers', 'Per-commit writers during memory_db_restore')
@pytest.mark.parametrize('name,delay,pause', TIMINGS, ids=[timing[0] for timing in TIMINGS])
def test_per_commit_writer_during_restore_loses_no_committed_row(tmp_path, fault, name, delay, pause):
    fault.title = 'Per-commit writer during memory_db_restore (%s)' % name
    fault.scrub(tmp_path)
    db, backups = live_app(tmp_path)
    preserve = str(tmp_path / 'preserved')
    rounds, lost_rows, restored, refused, late, committed_total, turned_away = 3, set(), 0, 0, 0, 0, 0
    restore_args = {'path': db, 'backup_dir': backups, 'preserve_dir': preserve, 'force': True}
    for attempt in range(rounds):
        stop = str(tmp_path / ('stop-%d' % attempt))
        # the check-mode twin before the writers start: the timing between writer and restore stays the case's
        twin = check_module('memory_db_restore', restore_args)
        writers = []
        if delay < 0:
            writers.append(PerCommitWriter(db, stop, pause, attempt * 1000000))
            time.sleep(-delay)

        def late_start():
            time.sleep(delay)
            writers.append(PerCommitWriter(db, stop, pause, attempt * 1000000 + 500000))
        starter = threading.Thread(target=late_start) if delay >= 0 else None
        if starter:
            starter.start()
        # force: the holder scan may or may not catch a per-commit writer; every round goes to the lock and swap
        result = run_module('memory_db_restore', restore_args, check=False)
        compare_module('memory_db_restore', twin, result, runtime=LIVE_WRITER)
        if starter:
            starter.join()
        time.sleep(0.3)
        open(stop, 'w').close()
        for writer in writers:
            writer.finish()
        committed = set()
        for writer in writers:
            committed |= writer.committed()
        committed_total += len(committed)
        turned_away += sum(len(writer.errors()) for writer in writers)
        found = ids_in(os.path.dirname(db)) | preserved_ids(preserve)
        lost_rows |= committed - found
        assert integrity(db) == 'ok'
        if result.get('failed'):
            refused += 1
            # refused: nothing replaced, every committed row is still in the live DB
            assert 'lock' in result['msg'] or 'changed while' in result['msg'], result['msg']
        else:
            restored += 1
            late += (result.get('late_commits') or {}).get('count', 0)
    # The DB set changes under the writers, so a byte snapshot cannot be compared: what was there before is
    # every committed row; a lost row costs its 8-byte id.
    fault.lost(8 * len(lost_rows))
    fault.did('%d rounds (force: true): %d restored, %d refused; %d rows reported committed by the writers, '
              '%d missing afterwards; %d writes turned away with SQLITE_BUSY while the lock was held; late_commits %d'
              % (rounds, restored, refused, committed_total, len(lost_rows), turned_away, late))
    assert not lost_rows, '%d committed rows are neither in the DB nor in the preserved set' % len(lost_rows)
    # writers that close between commits leave gaps the lock is taken in: every round must get its restore done
    assert restored == rounds, 'only %d of %d restores completed under a per-commit writer' % (restored, rounds)


@pytest.mark.fault('concurrency and live writers', 'Per-commit writer on a rollback-journal (DELETE mode) DB during restore')
def test_per_commit_writer_on_a_rollback_journal_db(tmp_path, fault):
    fault.scrub(tmp_path)
    db, backups = live_app(tmp_path)
    conn = sqlite3.connect(db)
    conn.execute('PRAGMA journal_mode=DELETE')
    conn.close()
    preserve = str(tmp_path / 'preserved')
    lost_rows, committed_total, restored = set(), 0, 0
    for attempt in range(3):
        stop = str(tmp_path / ('stop-%d' % attempt))
        restore_args = {'path': db, 'backup_dir': backups, 'preserve_dir': preserve, 'force': True,
                        'journal_mode': 'delete'}
        twin = check_module('memory_db_restore', restore_args)
        writer = PerCommitWriter(db, stop, 0.005, attempt * 1000000)
        time.sleep(0.2)
        result = run_module('memory_db_restore', restore_args, check=False)
        compare_module('memory_db_restore', twin, result, runtime=LIVE_WRITER)
        time.sleep(0.2)
        open(stop, 'w').close()
        writer.finish()
        committed_total += len(writer.committed())
        lost_rows |= writer.committed() - (ids_in(os.path.dirname(db)) | preserved_ids(preserve))
        restored += 0 if result.get('failed') else 1
        assert integrity(db) == 'ok'
    fault.lost(8 * len(lost_rows))
    fault.did('3 restores with a rollback-journal writer committing every 5 ms: %d completed, %d committed rows, %d '
              'missing' % (restored, committed_total, len(lost_rows)))
    assert not lost_rows and restored == 3


LIVE_WRITER = 'a live writer held the DB while the restore ran'

HOLDER = r'''
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1])
conn.execute('SELECT count(*) FROM sqlite_master').fetchone()
print('ready', flush=True)
time.sleep(120)
'''


@pytest.mark.fault('concurrency and live writers', 'force: true while a connection stays open (the lock is never free)')
def test_force_with_a_connection_that_stays_open_changes_nothing(tmp_path, fault):
    fault.scrub(tmp_path)
    db, backups = live_app(tmp_path, rows=2000)
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, db], stdout=subprocess.PIPE, universal_newlines=True)
    try:
        assert holder.stdout.readline().strip() == 'ready'
        prior = PriorState(db)
        result = run_module('memory_db_restore', {'path': db, 'backup_dir': backups, 'force': True,
                                                  'lock_timeout': 2, 'preserve_dir': str(tmp_path / 'preserved')},
                            runtime='force skips the holder scan; the exclusive lock is only tried when acting')
        lost = prior.lost()
    finally:
        holder.kill()
        holder.wait()
    fault.lost(lost)
    fault.did('memory_db_restore (force: true, lock_timeout: 2) failed: "%s"' % fault.clip(result['msg'], 240))
    assert result['failed'] and 'exclusive lock' in result['msg'] and str(holder.pid) in result['msg'], result
    assert lost == 0 and not os.path.exists(str(tmp_path / 'preserved'))


# ------------------------------------------------------------------------------------ hostile paths

def _outside_db(tmp_path):
    """A DB outside the app dir (say /etc/... or another tenant's), the target of a planted link."""
    return make_db(str(tmp_path / 'elsewhere' / 'target.db'), rows=300)


@pytest.mark.fault('operator input', 'DB path is a symlink to a file outside the app dir (finding 4)')
def test_symlinked_db_is_refused_and_its_target_untouched(tmp_path, fault):
    fault.scrub(tmp_path)
    db, backups = live_app(tmp_path, rows=500)
    target = _outside_db(tmp_path)
    os.unlink(db)
    os.symlink(target, db)
    prior = PriorState(target)
    result = run_module('memory_db_restore', {'path': db, 'backup_dir': backups})
    lost = prior.lost()
    beside = sorted(os.listdir(os.path.dirname(target)))
    fault.lost(lost)
    fault.did('memory_db_restore refused: "%s"; the link target unchanged, nothing created beside it'
              % fault.clip(result['msg'], 240))
    assert result['failed'] and 'outside' in result['msg'], result
    assert lost == 0 and beside == ['target.db'], beside


@pytest.mark.fault('operator input', 'Default preserve dir is a symlink planted by the service user')
def test_symlinked_preserve_dir_is_refused(tmp_path, fault):
    fault.scrub(tmp_path)
    db, backups = live_app(tmp_path, rows=500)
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    os.symlink(str(elsewhere), os.path.join(os.path.dirname(db), 'preserved'))
    conn = sqlite3.connect(db)
    conn.execute('INSERT INTO live_writer VALUES (1)')
    conn.commit()
    conn.close()
    prior = PriorState(db)
    result = run_module('memory_db_restore', {'path': db, 'backup_dir': backups})
    lost = prior.lost()
    fault.lost(lost)
    fault.did('memory_db_restore refused: "%s"; the DB unchanged, nothing written through the link'
              % fault.clip(result['msg'], 240))
    assert result['failed'] and 'preserve dir' in result['msg'] and 'outside' in result['msg'], result
    assert lost == 0 and os.listdir(str(elsewhere)) == []


SECRET = b'root-only bytes that must never be copied anywhere\n'


@pytest.mark.fault('operator input', 'A sidecar becomes a symlink while the restore runs (swapped in after the check)')
def test_sidecar_symlink_swapped_in_after_the_check_is_never_followed(tmp_path, fault):
    fault.scrub(tmp_path)
    db, backups = live_app(tmp_path, rows=3000)
    secret = tmp_path / 'secret'
    secret.write_bytes(SECRET)
    os.chmod(str(secret), 0o600)
    wal = db + '-wal'
    state = {'stop': False, 'flips': 0}

    def flip():
        # the service user's loop: a regular -wal and a link to the secret, in turn
        while not state['stop']:
            link = wal + '.lnk'
            try:
                os.symlink(str(secret), link)
                os.replace(link, wal)
                state['flips'] += 1
                time.sleep(0.001)
                os.unlink(wal)
            except OSError:
                pass
    restore_args = {'path': db, 'backup_dir': backups, 'preserve_dir': str(tmp_path / 'preserved'), 'force': True}
    twin = check_module('memory_db_restore', restore_args)   # before the swapping starts
    flipper = threading.Thread(target=flip)
    flipper.start()
    results = []
    try:
        for _round in range(4):
            results.append(run_module('memory_db_restore', restore_args, check=False))
    finally:
        state['stop'] = True
        flipper.join()
    for result in results:
        compare_module('memory_db_restore', twin, result, runtime='a sidecar became a symlink while it ran')
    copies = [os.path.join(base, name) for base, _dirs, names in os.walk(str(tmp_path / 'preserved'))
              for name in names if not os.path.islink(os.path.join(base, name))
              and open(os.path.join(base, name), 'rb').read() == SECRET]
    fault.lost(0 if secret.read_bytes() == SECRET else len(SECRET))
    outcomes = sorted(set('ok' if not r.get('failed') else fault.clip(r['msg'], 90) for r in results))
    fault.did('4 restores while a -wal link to a root-only file was swapped in and out %d times: %s; the file '
              'was never read into the preserved set nor written' % (state['flips'], '; '.join(outcomes)))
    assert secret.read_bytes() == SECRET and copies == []
    assert state['flips'] > 0
    for result in results:
        assert not result.get('failed') or any(word in result['msg'] for word in (
            'symbolic link', 'not a regular file', 'Too many levels', 'No such file', 'changed')), result['msg']


def _special_db(tmp_path, make):
    """A live app, and a second app dir whose .swarm/memory.db is a special file made by make(path)."""
    fault_db, backups = live_app(tmp_path, rows=300)
    special = str(tmp_path / 'app2' / '.swarm' / 'memory.db')
    os.makedirs(os.path.dirname(special))
    make(special)
    return fault_db, backups, special


def _run_with_deadline(name, args, seconds=30):
    started = time.monotonic()
    result = run_module(name, args, timeout=seconds)
    return result, time.monotonic() - started


@pytest.mark.fault('operator input', 'A FIFO as the restore path and as src')
def test_fifo_path_and_src_are_refused_without_blocking(tmp_path, fault):
    fault.scrub(tmp_path)
    db, backups, fifo_db = _special_db(tmp_path, os.mkfifo)
    fifo_src = str(tmp_path / 'backup.fifo')
    os.mkfifo(fifo_src)
    prior = PriorState(db)
    as_path, took_path = _run_with_deadline('memory_db_restore', {'path': fifo_db, 'backup_dir': backups})
    as_src, took_src = _run_with_deadline('memory_db_restore', {'path': db, 'src': fifo_src})
    check, _took = _run_with_deadline('memory_db_check', {'path': fifo_db})
    lost = prior.lost()
    fault.lost(lost)
    fault.did('restore path FIFO: "%s" (%.1fs); src FIFO: "%s" (%.1fs); memory_db_check: "%s"'
              % (fault.clip(as_path['msg'], 110), took_path, fault.clip(as_src['msg'], 110), took_src,
                 fault.clip(check['errors'][0], 90)))
    assert as_path['failed'] and 'FIFO' in as_path['msg'], as_path
    assert as_src['failed'] and 'FIFO' in as_src['msg'], as_src
    assert check['ok'] is False and 'FIFO' in check['errors'][0], check
    assert lost == 0 and stat.S_ISFIFO(os.lstat(fifo_db).st_mode)


def _dev_zero(path):
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))


@pytest.mark.skipif(os.geteuid() != 0, reason='mknod of a device needs root (CI runs as root)')
@pytest.mark.fault('operator input', 'A character device (/dev/zero) as the DB path and as a backup candidate')
def test_device_path_is_refused(tmp_path, fault):
    fault.scrub(tmp_path)
    db, backups, device_db = _special_db(tmp_path, _dev_zero)
    planted = os.path.join(backups, '29990101T000000Z', 'memory.db.backup')
    os.makedirs(os.path.dirname(planted))
    _dev_zero(planted)
    prior = PriorState(db)
    as_path, took = _run_with_deadline('memory_db_restore', {'path': device_db, 'backup_dir': backups})
    restore = run_module('memory_db_restore', {'path': db, 'backup_dir': backups, 'force': True,
                                               'preserve_dir': str(tmp_path / 'preserved')})
    lost = prior.lost(str(tmp_path / 'preserved'))
    fault.lost(lost)
    skipped = [item for item in restore.get('skipped_backups', []) if item['path'] == planted]
    reason = skipped[0]['reason'] if skipped else '-'
    fault.did('device as path: "%s" (%.1fs); a device planted as the newest backup skipped: "%s", the verified '
              'one restored' % (fault.clip(as_path['msg'], 120), took, fault.clip(reason, 80)))
    assert as_path['failed'] and 'character device' in as_path['msg'], as_path
    assert not restore.get('failed') and skipped, restore
    assert lost == 0


@pytest.mark.fault('operator input', 'A folder with a non-UTF-8 name under backup_dir')
def test_non_utf8_backup_folder_is_skipped_with_a_reason(tmp_path, fault):
    fault.scrub(tmp_path)
    db, backups = live_app(tmp_path, rows=300)
    odd = os.path.join(os.fsencode(backups), b'release-\xff\xfe')
    os.makedirs(odd)
    src = [os.path.join(base, name) for base, _dirs, names in os.walk(backups) for name in names]
    for member in src:
        if member.endswith('memory.db.backup') or member.endswith('.manifest.json'):
            shutil.copy(member, os.path.join(os.fsdecode(odd), os.path.basename(member)))
    # the copy is newer: it would be chosen first if it were not skipped
    later = time.time() + 60
    os.utime(os.path.join(odd, b'memory.db.backup'), (later, later))
    prior = PriorState(db)
    restore = run_module('memory_db_restore', {'path': db, 'backup_dir': backups, 'force': True,
                                               'preserve_dir': str(tmp_path / 'preserved')})
    lost = prior.lost(str(tmp_path / 'preserved'))
    fault.lost(lost)
    reasons = [item['reason'] for item in restore.get('skipped_backups', [])]
    restored_from = restore.get('restored_from', '-')
    fault.did('memory_db_restore: skipped %s; restored %s'
              % (fault.clip('; '.join(reasons), 120), fault.clip(restored_from, 80)))
    assert restore['_rc'] == 0 and not restore.get('failed'), restore
    assert any('not valid UTF-8' in reason for reason in reasons), reasons
    assert lost == 0


# ------------------------------------------------------------------------------------ leftovers and exhaustion

@pytest.mark.fault('resource exhaustion', 'A backup killed with SIGKILL leaves its full-size temp file')
def test_sigkilled_backup_temp_is_swept_by_the_next_run(tmp_path, fault):
    fault.scrub(tmp_path)
    db = make_db(str(tmp_path / 'app' / '.swarm' / 'memory.db'), rows=60000)
    dest = str(tmp_path / 'backups')
    prior = PriorState(db)
    check_module('memory_db_backup', {'path': db, 'dest': dest, 'timestamped': True})   # the killed run's twin
    record_check(('runtime-only', 'the real run is killed'))
    proc = _spawn_module('memory_db_backup', {'path': db, 'dest': dest, 'timestamped': True})
    deadline = time.monotonic() + 60
    # killed once its temp copy is full size (the copy is done, its integrity_check runs)
    while time.monotonic() < deadline and proc.poll() is None:
        if any(os.path.getsize(path) >= os.path.getsize(db) for path in _hidden_files(dest) if os.path.exists(path)):
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    leftovers = _hidden_files(dest)
    assert leftovers, 'the kill did not land while the temp file existed'
    size = sum(os.path.getsize(path) for path in leftovers)
    again = run_module('memory_db_backup', {'path': db, 'dest': dest, 'timestamped': True})
    left = _hidden_files(dest)
    lost = prior.lost()
    fault.lost(lost)
    fault.did('backup SIGKILLed mid-copy left %d hidden temp file(s), %d bytes; the next memory_db_backup removed '
              'them (swept_temps: %d) and took its own' % (len(leftovers), size, len(again.get('swept_temps', []))))
    assert not again.get('failed') and left == [], (again, left)
    assert lost == 0


def _hidden_files(root):
    return sorted(os.path.join(base, name) for base, _dirs, names in os.walk(root) for name in names
                  if name.startswith('.'))


def _spawn_module(name, args):
    import json
    from conftest import COLLECTIONS, REPO
    fd, args_path = tempfile.mkstemp(suffix='.json')
    with os.fdopen(fd, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': dict(args, _ansible_check_mode=False,
                                               _ansible_remote_tmp=tempfile.gettempdir())}, handle)
    env = dict(os.environ, PYTHONPATH=COLLECTIONS + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.Popen([sys.executable, os.path.join(REPO, 'plugins', 'modules', name + '.py'), args_path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, universal_newlines=True)


@pytest.mark.fault('concurrency and live writers', 'Six backups at once into one dest with keep: 3')
def test_six_concurrent_backups_get_distinct_names_and_keep_is_honoured(tmp_path, fault):
    import json
    fault.scrub(tmp_path)
    db = make_db(str(tmp_path / 'app' / '.swarm' / 'memory.db'), rows=3000)
    dest = str(tmp_path / 'backups')
    prior = PriorState(db)
    args = {'path': db, 'dest': dest, 'timestamped': True, 'keep': 3}
    twin = check_module('memory_db_backup', args)   # once, before the six start at the same moment
    procs = [_spawn_module('memory_db_backup', args) for _index in range(6)]
    results = []
    for proc in procs:
        out, _err = proc.communicate(timeout=120)
        results.append(json.loads(out))
    for result in results:
        compare_module('memory_db_backup', twin, result, runtime='another backup ran at the same moment')
    paths = [result.get('backup_path') for result in results]
    remaining = sorted(os.path.join(base, name) for base, _dirs, names in os.walk(dest) for name in names
                       if name == 'memory.db.backup')
    verified = [path for path in remaining if json.load(open(path + '.manifest.json'))['sha256'] == sha256(path)]
    lost = prior.lost()
    fault.lost(lost)
    fault.did('6 concurrent memory_db_backup (keep: 3): %d distinct backup_path values, %d backups left, %d of them '
              'verified' % (len(set(paths)), len(remaining), len(verified)))
    assert not any(result.get('failed') for result in results), [r.get('msg') for r in results if r.get('failed')]
    assert len(set(paths)) == 6
    assert len(remaining) == 3 and len(verified) == 3
    assert lost == 0


def _mount_tmpfs(path, size):
    os.makedirs(path)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%s,mode=0755' % size, 'faults', path], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason='mounting a tmpfs needs root (CI runs as root)')
@pytest.mark.fault('resource exhaustion', 'No space for the preserve copy (preserve_dir on a full small tmpfs)')
def test_no_space_for_the_preserve_copy_is_refused_before_anything_changes(tmp_path, fault):
    fault.scrub(tmp_path)
    db, backups = live_app(tmp_path, rows=20000)
    conn = sqlite3.connect(db)
    conn.execute('INSERT INTO live_writer VALUES (1)')
    conn.commit()
    conn.close()
    mnt = str(tmp_path / 'small')
    _mount_tmpfs(mnt, '512k')
    try:
        prior = PriorState(db)
        before = sha256(db)
        result = run_module('memory_db_restore', {'path': db, 'backup_dir': backups, 'preserve_dir': mnt})
        left = os.listdir(mnt)
        swarm = sorted(name for name in os.listdir(os.path.dirname(db)) if name.startswith('.'))
    finally:
        subprocess.run(['umount', '-l', mnt], check=False)
    lost = prior.lost()
    fault.lost(lost)
    fault.did('memory_db_restore refused before it started: "%s"; DB unchanged, no temp left'
              % fault.clip(result['msg'], 240))
    assert result['failed'] and 'bytes free' in result['msg'], result
    assert sha256(db) == before and left == [] and swarm == [], (left, swarm)
    assert lost == 0


RANGE_CASES = [
    ('memory_db_prune', {'max_rows': -1}, 'max_rows must be between 0 and'),
    ('memory_db_prune', {'batch_size': 0}, 'batch_size must be between 1 and'),
    ('memory_db_backup', {'dest': 'DEST', 'timestamped': True, 'keep': -1}, 'keep must be'),
    ('memory_db_restore', {'backup_dir': 'DEST', 'lock_timeout': 0}, 'lock_timeout must be between 1 and 3600'),
    ('memory_db_restore', {'backup_dir': 'DEST', 'drain_timeout': -5}, 'drain_timeout must be between 1 and 3600'),
    ('memory_db_recover', {'dest': 'DEST/x.db', 'timeout': -1}, 'timeout must be between 1 and 86400'),
    ('memory_db_check', {'busy_timeout': -1}, 'busy_timeout must be between 0 and'),
    ('memory_db_optimize', {'busy_timeout': -1}, 'busy_timeout must be between 0 and'),
]


@pytest.mark.fault('operator input', 'Negative and zero numeric options (max_rows: -1, keep: -1, timeouts ...)')
def test_numeric_options_out_of_range_are_refused_with_the_range(tmp_path, fault):
    fault.scrub(tmp_path)
    db = make_db(str(tmp_path / 'app' / '.swarm' / 'memory.db'), rows=300)
    dest = str(tmp_path / 'backups')
    os.makedirs(dest)
    prior = PriorState(db)
    messages = []
    for name, args, expected in RANGE_CASES:
        args = dict((key, value.replace('DEST', dest) if isinstance(value, str) else value)
                    for key, value in args.items())
        result = run_module(name, dict(args, path=db))
        messages.append((name, result.get('msg', ''), expected))
    lost = prior.lost()
    fault.lost(lost)
    fault.did('%d out-of-range options refused, e.g. "%s"' % (len(messages), fault.clip(messages[0][1], 120)))
    for name, msg, expected in messages:
        assert expected in msg, (name, msg)
    assert lost == 0 and os.listdir(dest) == []
