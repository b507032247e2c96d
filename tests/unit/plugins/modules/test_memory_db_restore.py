"""memory_db_restore: choosing a verified backup, refusing live DBs, preserving, idempotence, kill-safety."""

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import COLLECTIONS, REPO
from dbfactory import corrupt_db, make_db, sha256, tree_digest

from ansible_collections.claude_flow.runbook.plugins.module_utils import memory_db_restore, safe_files

# Commits rows into the -wal and dies without checkpointing, as a crashed service would: the DB's
# latest transactions then exist only in memory.db-wal (with memory.db-shm beside it).
CRASHING_WRITER = r'''
import os, signal, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute('PRAGMA journal_mode=WAL')
conn.execute('PRAGMA wal_autocheckpoint=0')
conn.execute('CREATE TABLE IF NOT EXISTS restore_marker (n INTEGER)')
conn.execute('INSERT INTO restore_marker VALUES (?)', (int(sys.argv[2]),))
os.kill(os.getpid(), signal.SIGKILL)
'''

HOLDER = r'''
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1])
conn.execute('SELECT count(*) FROM sqlite_master').fetchone()
print('ready', flush=True)
time.sleep(120)
'''


def marker(path):
    """The restore_marker value a DB set holds (reads -wal too), None when the table is absent."""
    conn = sqlite3.connect('file:%s?mode=ro' % path, uri=True)
    try:
        row = conn.execute('SELECT max(n) FROM restore_marker').fetchone()
        return row[0]
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()


def set_marker(path, value):
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute('CREATE TABLE IF NOT EXISTS restore_marker (n INTEGER)')
        conn.execute('DELETE FROM restore_marker')
        conn.execute('INSERT INTO restore_marker VALUES (?)', (value,))
    finally:
        conn.close()


def crash_after_write(path, value):
    subprocess.run([sys.executable, '-c', CRASHING_WRITER, path, str(value)], check=False)
    assert os.path.getsize(path + '-wal') > 0 and os.path.exists(path + '-shm')


def take(module, db, backup_root, release, value):
    """A backup of db holding restore_marker = value, in backup_root/<release>/memory.db.backup."""
    set_marker(db, value)
    r = module('memory_db_backup', {'path': db, 'dest': str(backup_root / release)})
    assert r['changed'] is True, r
    return r


def rewrite_manifest_sha(backup):
    """Make the manifest agree with the (damaged) file, as a buggy tool might."""
    mpath = backup + '.manifest.json'
    with open(mpath) as handle:
        manifest = json.load(handle)
    manifest['sha256'] = sha256(backup)
    with open(mpath, 'w') as handle:
        json.dump(manifest, handle)


def set_digests(db):
    return dict((os.path.basename(m), sha256(m)) for m in safe_files.db_set(db))


@pytest.fixture
def holder():
    procs = []

    def start(path):
        proc = subprocess.Popen([sys.executable, '-c', HOLDER, path], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == 'ready'
        procs.append(proc)
        return proc
    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_newest_verified_backup_is_chosen_and_the_rest_are_skipped_with_reasons(module, tmp_path):
    db = make_db(tmp_path, rows=3000)
    root = tmp_path / 'backups'
    take(module, db, root, 'r1', 1)
    chosen = take(module, db, root, 'r2', 2)
    sha_bad = take(module, db, root, 'r3', 3)
    no_manifest = take(module, db, root, 'r4', 4)
    corrupt_now = take(module, db, root, 'r5', 5)
    (tmp_path / 'other').mkdir()
    v3_db = make_db(tmp_path / 'other', profile='v3', rows=300)
    other_profile = module('memory_db_backup', {'path': v3_db, 'dest': str(root / 'r6')})
    with open(sha_bad['backup_path'], 'r+b') as handle:
        handle.seek(9000)
        handle.write(b'\xa5' * 8)
    # r4 has no manifest (it is newer than r2 by mtime)
    os.unlink(no_manifest['manifest_path'])
    corrupt_db(corrupt_now['backup_path'], 'overwritten_pages')
    rewrite_manifest_sha(corrupt_now['backup_path'])

    set_marker(db, 99)
    crash_after_write(db, 100)  # the current set: db + -wal with a committed row + -shm
    before = set_digests(db)
    assert sorted(before) == ['memory.db', 'memory.db-shm', 'memory.db-wal']

    r = module('memory_db_restore', {'path': db, 'backup_dir': str(root), 'expect_profile': 'runbook'})
    assert r['changed'] is True and r['restored_from'] == chosen['backup_path'], r
    reasons = dict((os.path.basename(os.path.dirname(s['path'])), s['reason']) for s in r['skipped_backups'])
    assert sorted(reasons) == ['r3', 'r4', 'r5', 'r6'], reasons
    assert reasons['r6'].startswith('schema profile is v3, expected runbook')
    assert reasons['r5'].startswith('fails quick_check now')
    assert reasons['r4'].startswith('no manifest') and 'allow_unverified' in reasons['r4']
    assert reasons['r3'].startswith('sha256 mismatch')
    assert other_profile['changed'] is True

    assert marker(db) == 2 and r['integrity'] == 'ok' and r['verified'] is True
    with open(db, 'rb') as handle:
        assert handle.read(20)[18:20] == b'\x02\x02'  # journal_mode wal by default
    assert not os.path.exists(db + '-wal') or os.path.getsize(db + '-wal') == 0
    assert sorted(r['removed']) == sorted([db + '-wal', db + '-shm'])
    # Every byte that was there before is in the preserved set, and the row only the -wal held is readable.
    preserved = dict((f['name'], f) for f in r['preserved']['files'])
    assert dict((name, f['sha256']) for name, f in preserved.items()) == before
    assert all(sha256(f['path']) == f['sha256'] for f in preserved.values())
    copy_dir = tmp_path / 'reopen'
    copy_dir.mkdir()
    for f in preserved.values():
        shutil.copy(f['path'], str(copy_dir / f['name']))
    assert marker(str(copy_dir / 'memory.db')) == 100
    assert not os.path.exists(db + memory_db_restore.JOURNAL_SUFFIX)


def test_refuses_while_a_process_holds_the_db_and_force_overrides(module, tmp_path, holder):
    db = make_db(tmp_path, rows=500)
    root = tmp_path / 'backups'
    take(module, db, root, 'r1', 1)
    set_marker(db, 2)
    proc = holder(db)
    before = tree_digest(str(tmp_path))
    r = module('memory_db_restore', {'path': db, 'backup_dir': str(root)})
    assert r['failed'] and 'pid %d (python' % proc.pid in r['msg'] and 'stop the service first' in r['msg'], r
    assert 'force: true' in r['msg'] and [h['pid'] for h in r['holders']] == [proc.pid]
    assert tree_digest(str(tmp_path)) == before
    # force skips the refusal, not the lock: a connection that stays open keeps it, nothing is changed
    forced = module('memory_db_restore', {'path': db, 'backup_dir': str(root), 'force': True, 'lock_timeout': 1})
    assert forced['failed'] and 'exclusive lock' in forced['msg'] and 'pid %d' % proc.pid in forced['msg'], forced
    assert tree_digest(str(tmp_path)) == before
    proc.kill()
    proc.wait()
    done = module('memory_db_restore', {'path': db, 'backup_dir': str(root), 'force': True})
    assert done['changed'] is True and done['late_commits']['count'] == 0, done
    assert marker(db) == 1


def test_check_mode_changes_no_byte_and_says_what_it_would_do(module, tmp_path):
    db = make_db(tmp_path, rows=500)
    root = tmp_path / 'backups'
    chosen = take(module, db, root, 'r1', 1)
    crash_after_write(db, 7)
    before = tree_digest(str(tmp_path))
    r = module('memory_db_restore', {'path': db, 'backup_dir': str(root)}, check_mode=True)
    assert r['changed'] is True and r['would_restore_from'] == chosen['backup_path'], r
    assert dict((f['name'], f['sha256']) for f in r['would_preserve']) == set_digests(db)
    assert sorted(r['would_remove']) == sorted([db + '-wal', db + '-shm'])
    assert r['sha256'] == memory_db_restore.sha256_as_restored(chosen['backup_path'], 'wal')
    assert tree_digest(str(tmp_path)) == before


def test_several_dirs_are_merged_newest_first_and_dry_run_only_picks(module, tmp_path):
    db = make_db(tmp_path, rows=500)
    releases, backups = tmp_path / 'releases', tmp_path / 'backups'
    take(module, db, releases, 'r1', 1)
    newest = take(module, db, backups, 'b1', 2)
    broken = take(module, db, releases, 'r2', 3)  # the newest of all, but damaged after the manifest was written
    with open(broken['backup_path'], 'r+b') as handle:
        handle.seek(9000)
        handle.write(b'\xa5' * 8)
    set_marker(db, 9)
    missing = str(tmp_path / 'nowhere')
    before = tree_digest(str(tmp_path))
    args = {'path': db, 'backup_dir': [str(releases), missing, str(backups)], 'dry_run': True}
    for check_mode in (False, True):
        r = module('memory_db_restore', args, check_mode=check_mode)
        assert r['changed'] is False and r['dry_run'] is True and r['would_restore_from'] == newest['backup_path'], r
        reasons = dict((s['path'], s['reason']) for s in r['skipped_backups'])
        assert reasons[missing] == 'not a directory'
        assert reasons[broken['backup_path']].startswith('sha256 mismatch'), reasons
        assert 'restored_from' not in r and tree_digest(str(tmp_path)) == before
    # max_candidates=1: only the newest (broken) one is verified, so nothing passes; the failure names each
    # skipped candidate and why, the same in check mode as in a real run
    msgs = []
    for check_mode in (False, True):
        r = module('memory_db_restore', dict(args, dry_run=False, max_candidates=1), check_mode=check_mode)
        assert r['failed'] and r['msg'].startswith('no verified backup matches'), r
        assert broken['backup_path'] + ': sha256 mismatch' in r['msg']
        assert newest['backup_path'] + ': not checked: older than the newest max_candidates=1' in r['msg']
        assert missing + ': not a directory' in r['msg']
        msgs.append(r['msg'])
        assert tree_digest(str(tmp_path)) == before
    assert msgs[0] == msgs[1]
    r = module('memory_db_restore', {'path': db, 'backup_dir': [str(releases), str(backups)]})
    assert r['changed'] is True and r['restored_from'] == newest['backup_path'] and marker(db) == 2, r


def test_no_backup_anywhere_fails_naming_the_empty_places(module, tmp_path):
    db = make_db(tmp_path, rows=100)
    empty = tmp_path / 'empty'
    empty.mkdir()
    r = module('memory_db_restore', {'path': db, 'backup_dir': [str(empty)], 'dry_run': True}, check_mode=True)
    assert r['failed'] and '%s: no file matches **/memory.db.backup in it' % empty in r['msg'], r
    r = module('memory_db_restore', {'path': db, 'backup_dir': [str(tmp_path / 'a'), str(tmp_path / 'b')]})
    assert r['failed'] and 'is not a directory' in r['msg'] and str(tmp_path / 'b') in r['msg'], r
    r = module('memory_db_restore', {'path': db, 'backup_dir': [str(empty)], 'max_candidates': 0})
    assert r['failed'] and 'max_candidates must be between 1 and 1000' in r['msg'], r


def test_restoring_the_same_content_again_changes_nothing(module, tmp_path):
    db = make_db(tmp_path, rows=500)
    root = tmp_path / 'backups'
    backup = take(module, db, root, 'r1', 1)
    set_marker(db, 2)
    first = module('memory_db_restore', {'path': db, 'src': backup['backup_path']})
    assert first['changed'] is True and marker(db) == 1
    before = tree_digest(str(tmp_path))
    again = module('memory_db_restore', {'path': db, 'src': backup['backup_path']})
    assert again['changed'] is False and again['restored_from'] == backup['backup_path'], again
    assert 'nothing to do' in again['msg'] and again['preserved'] is None and again['integrity'] == 'ok'
    assert tree_digest(str(tmp_path)) == before
    delete_mode = module('memory_db_restore', {'path': db, 'src': backup['backup_path'], 'journal_mode': 'delete'})
    assert delete_mode['changed'] is True and sha256(db) == sha256(backup['backup_path'])


def test_backup_without_manifest_needs_allow_unverified(module, tmp_path):
    db = make_db(tmp_path, rows=500)
    backup = take(module, db, tmp_path / 'backups', 'r1', 1)
    os.unlink(backup['manifest_path'])
    set_marker(db, 2)
    r = module('memory_db_restore', {'path': db, 'src': backup['backup_path']})
    assert r['failed'] and 'no manifest' in r['msg'] and 'allow_unverified: true' in r['msg'], r
    assert marker(db) == 2
    ok = module('memory_db_restore', {'path': db, 'src': backup['backup_path'], 'allow_unverified': True})
    assert ok['changed'] is True and ok['verified'] is False and marker(db) == 1


def _prepare_interrupted(module, tmp_path, steps):
    db = make_db(tmp_path, rows=500)
    backup = take(module, db, tmp_path / 'backups', 'r1', 1)
    set_marker(db, 2)
    crash_after_write(db, 3)
    before = set_digests(db)
    run = memory_db_restore.RestoreRun(db, backup['backup_path'], preserve_dir=str(tmp_path / 'preserved'))
    for step in steps:
        getattr(run, step)()
    run.unlock()  # the killed process's locks die with it
    return db, backup, before, run


def test_interrupted_before_the_swap_is_rolled_back_then_redone(module, tmp_path):
    # Killed after the old -wal/-shm were removed but before the new file went in.
    db, backup, before, run = _prepare_interrupted(module, tmp_path, ['stage', 'lock', 'preserve', 'write_journal',
                                                                      'move_sidecars'])
    assert os.path.exists(run.tmp) and os.path.exists(run.journal_path)

    planned = module('memory_db_restore', {'path': db, 'src': backup['backup_path']}, check_mode=True)
    assert planned['would_finish_interrupted']['action'] == 'rolled_back'
    assert sorted(planned['would_finish_interrupted']['put_back']) == sorted([db + '-wal', db + '-shm'])
    assert os.path.exists(run.journal_path) and not os.path.exists(db + '-wal')

    r = module('memory_db_restore', {'path': db, 'src': backup['backup_path'],
                                     'preserve_dir': str(tmp_path / 'preserved')})
    assert r['changed'] is True and r['interrupted_restore']['action'] == 'rolled_back', r
    # The put-back set was exactly the original one: the second preserve recorded the same digests.
    assert dict((f['name'], f['sha256']) for f in r['preserved']['files']) == before
    assert marker(db) == 1 and r['integrity'] == 'ok'
    assert not os.path.exists(run.tmp) and not os.path.exists(run.journal_path)
    assert [n for n in os.listdir(os.path.dirname(db)) if n.endswith('.tmp')] == []


def test_interrupted_after_the_swap_is_completed(module, tmp_path):
    steps = ['stage', 'lock', 'preserve', 'write_journal', 'move_sidecars', 'swap']
    db, backup, _before, run = _prepare_interrupted(module, tmp_path, steps)
    assert os.path.exists(run.journal_path)
    r = module('memory_db_restore', {'path': db, 'src': backup['backup_path']})
    assert r['interrupted_restore']['action'] == 'completed' and r['interrupted_restore']['integrity'] == 'ok', r
    assert r['changed'] is True and r['preserved'] is None  # the DB already held the backup: nothing to redo
    assert marker(db) == 1 and not os.path.exists(run.journal_path)


def _spawn(args):
    fd, args_path = tempfile.mkstemp(suffix='.json')
    with os.fdopen(fd, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': dict(args, _ansible_check_mode=False,
                                               _ansible_remote_tmp=tempfile.gettempdir())}, handle)
    env = dict(os.environ, PYTHONPATH=COLLECTIONS + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, 'plugins', 'modules', 'memory_db_restore.py'),
                             args_path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return proc, args_path


def test_killed_at_any_moment_the_db_is_whole_and_the_next_run_finishes(module, tmp_path):
    db = make_db(tmp_path, rows=3000)
    backup = take(module, db, tmp_path / 'backups', 'r1', 1)
    set_marker(db, 2)
    crash_after_write(db, 3)
    pristine = tmp_path / 'pristine'
    pristine.mkdir()
    for member in safe_files.db_set(db):
        shutil.copy(member, str(pristine / os.path.basename(member)))
    old_sha = sha256(db)
    new_sha = memory_db_restore.sha256_as_restored(backup['backup_path'], 'wal')
    rng = random.Random(7)
    outcomes = set()
    for _round in range(6):
        for name in os.listdir(os.path.dirname(db)):
            if name.startswith('memory.db') or name.startswith('.memory.db'):
                os.unlink(os.path.join(os.path.dirname(db), name))
        for name in os.listdir(str(pristine)):
            shutil.copy(str(pristine / name), os.path.join(os.path.dirname(db), name))
        proc, args_path = _spawn({'path': db, 'src': backup['backup_path']})
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        os.unlink(args_path)
        current = sha256(db)
        assert current in (old_sha, new_sha)  # never a half-written file
        if current == old_sha and not os.path.exists(db + memory_db_restore.JOURNAL_SUFFIX):
            assert set_digests(db) == dict((n, sha256(str(pristine / n))) for n in os.listdir(str(pristine)))
        journal = os.path.exists(db + memory_db_restore.JOURNAL_SUFFIX)
        outcomes.add(('new' if current == new_sha else 'old') + ('+journal' if journal else ''))
        r = module('memory_db_restore', {'path': db, 'src': backup['backup_path']})
        assert r.get('failed') is not True, r
        assert marker(db) == 1 and not os.path.exists(db + memory_db_restore.JOURNAL_SUFFIX)
    print('kill outcomes', sorted(outcomes))
    assert outcomes  # the rounds ran


@pytest.mark.parametrize('args, expected', [
    ({'pattern': "x'; DROP TABLE patterns;--"}, 'no verified backup matches'),
    ({'pattern': '../../etc/*'}, 'must be a relative glob'),
    ({'pattern': '/etc/*'}, 'must be a relative glob'),
])
def test_bad_patterns_are_refused_safely(module, tmp_path, args, expected):
    db = make_db(tmp_path, rows=300)
    take(module, db, tmp_path / 'backups', 'r1', 1)
    before = tree_digest(str(tmp_path))
    r = module('memory_db_restore', dict(args, path=db, backup_dir=str(tmp_path / 'backups')))
    assert r['failed'] and expected in r['msg'], r
    assert tree_digest(str(tmp_path)) == before


def test_bad_inputs_name_the_fix(module, tmp_path):
    db = make_db(tmp_path, rows=300)
    backup = take(module, db, tmp_path / 'backups', 'r1', 1)
    r = module('memory_db_restore', {'path': db, 'src': backup['backup_path'], 'backup_dir': str(tmp_path)})
    assert r['failed'] and 'mutually exclusive' in r['msg']
    r = module('memory_db_restore', {'path': db})
    assert r['failed'] and 'src' in r['msg'] and 'backup_dir' in r['msg']
    r = module('memory_db_restore', {'path': db, 'src': db, 'allow_unverified': True})
    assert r['failed'] and 'is the database itself' in r['msg']
    r = module('memory_db_restore', {'path': db, 'backup_dir': str(tmp_path / 'nope')})
    assert r['failed'] and 'is not a directory' in r['msg']
    r = module('memory_db_restore', {'path': str(tmp_path / 'gone' / 'memory.db'), 'src': backup['backup_path']})
    assert r['failed'] and 'does not exist' in r['msg']


def test_restore_into_an_empty_place_needs_no_preserve(module, tmp_path):
    db = make_db(tmp_path, rows=300)
    backup = take(module, db, tmp_path / 'backups', 'r1', 1)
    target = tmp_path / 'fresh' / 'memory.db'
    target.parent.mkdir()
    r = module('memory_db_restore', {'path': str(target), 'src': backup['backup_path'], 'journal_mode': 'keep'})
    assert r['changed'] is True and r['preserved'] is None and sha256(str(target)) == sha256(backup['backup_path'])
    assert not (tmp_path / 'fresh' / 'preserved').exists()


def test_the_old_set_is_moved_not_copied_and_late_commits_are_reported(module, tmp_path):
    db = make_db(tmp_path, rows=500)
    backup = take(module, db, tmp_path / 'backups', 'r1', 1)
    set_marker(db, 2)
    crash_after_write(db, 3)
    inode = os.stat(db).st_ino
    before = set_digests(db)
    r = module('memory_db_restore', {'path': db, 'src': backup['backup_path'],
                                     'preserve_dir': str(tmp_path / 'preserved')})
    assert r['changed'] is True and r['preserved']['method'] == 'move', r
    assert r['late_commits'] == {'count': 0, 'preserved_in': None, 'changed_files': []}
    assert dict((f['name'], f['sha256']) for f in r['preserved']['files']) == before
    moved = os.path.join(r['preserved']['dir'], 'memory.db')
    assert os.stat(moved).st_ino == inode and marker(moved) == 3 and marker(db) == 1
    assert 'waited_ms' in r['drain'] and r['lock_waited_ms'] >= 0


def test_paths_that_lead_elsewhere_or_are_special_files_are_refused(module, tmp_path):
    db = make_db(tmp_path, rows=300)
    backup = take(module, db, tmp_path / 'backups', 'r1', 1)
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    link_dir = tmp_path / 'app2'
    link_dir.mkdir()
    os.symlink(db, str(link_dir / 'memory.db'))
    r = module('memory_db_restore', {'path': str(link_dir / 'memory.db'), 'src': backup['backup_path']})
    assert r['failed'] and 'outside' in r['msg'], r
    os.symlink(str(elsewhere), os.path.join(os.path.dirname(db), 'preserved'))
    r = module('memory_db_restore', {'path': db, 'src': backup['backup_path']})
    assert r['failed'] and 'preserve dir' in r['msg'] and os.listdir(str(elsewhere)) == [], r
    os.unlink(os.path.join(os.path.dirname(db), 'preserved'))
    os.mkfifo(str(tmp_path / 'fifo'))
    r = module('memory_db_restore', {'path': db, 'src': str(tmp_path / 'fifo')}, timeout=30)
    assert r['failed'] and 'FIFO' in r['msg'], r
    for option in ('lock_timeout', 'drain_timeout'):
        r = module('memory_db_restore', {'path': db, 'src': backup['backup_path'], option: 0})
        assert r['failed'] and '%s must be between 1 and 3600 (got 0)' % option in r['msg'], r
