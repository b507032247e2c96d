"""memory_db_backup: online copy under a live writer, manifest, corrupt sources, full disks, retention."""

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time

import pytest

from dbfactory import corrupt_db, make_db, sha256, tree_digest

from ansible_collections.claude_flow.runbook.plugins.module_utils import memory_db_backup

# A real writer: two inserts per transaction (pair_a and pair_b always have equal counts in any
# consistent snapshot) in a loop until told to stop, as the service would write in WAL mode.
WRITER = r'''
import json, os, sqlite3, sys, time
path, stop, ready = sys.argv[1:4]
conn = sqlite3.connect(path, timeout=30, isolation_level=None)
conn.execute('PRAGMA journal_mode=WAL')
conn.execute('CREATE TABLE IF NOT EXISTS pair_a (n INTEGER, pad TEXT)')
conn.execute('CREATE TABLE IF NOT EXISTS pair_b (n INTEGER, pad TEXT)')
txns = errors = 0
open(ready, 'w').close()
while not os.path.exists(stop):
    try:
        conn.execute('BEGIN IMMEDIATE')
        conn.execute('INSERT INTO pair_a VALUES (?, ?)', (txns, 'x' * 200))
        conn.execute('INSERT INTO pair_b VALUES (?, ?)', (txns, 'y' * 200))
        conn.execute('COMMIT')
        txns += 1
    except sqlite3.Error:
        errors += 1
        if conn.in_transaction:
            conn.execute('ROLLBACK')
conn.close()
print(json.dumps({'txns': txns, 'errors': errors}))
'''


def counts(path, *tables):
    conn = sqlite3.connect('file:%s?mode=ro&immutable=1' % path, uri=True)
    try:
        return [conn.execute('SELECT count(*) FROM %s' % table).fetchone()[0] for table in tables]
    finally:
        conn.close()


def integrity(path):
    conn = sqlite3.connect('file:%s?mode=ro&immutable=1' % path, uri=True)
    try:
        return conn.execute('PRAGMA integrity_check').fetchall()
    finally:
        conn.close()


def listing(directory):
    return sorted(os.listdir(directory))


@pytest.fixture
def tmpfs(tmp_path):
    """A 1 MiB tmpfs (a real small filesystem that fills up); skipped where mounting is not allowed."""
    mount_point = tmp_path / 'small'
    mount_point.mkdir()
    proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', str(mount_point)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip('cannot mount a tmpfs here (needs root): %s' % proc.stderr.strip())
    try:
        yield mount_point
    finally:
        subprocess.run(['umount', '-l', str(mount_point)], check=False)


def test_backup_writes_a_verified_single_file_and_a_true_manifest(module, tmp_path):
    db = make_db(tmp_path, rows=2000)
    dest = tmp_path / 'releases' / 'v2.7.47'
    r = module('memory_db_backup', {'path': db, 'dest': str(dest)})
    assert r['changed'] is True and r['verified'] is True and r['created_dest'] is True, r
    backup = r['backup_path']
    assert backup == str(dest / 'memory.db.backup')
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    assert listing(str(dest)) == ['memory.db.backup', 'memory.db.backup.manifest.json']
    with open(r['manifest_path']) as handle:
        manifest = json.load(handle)
    assert manifest == r['manifest']
    assert manifest['sha256'] == sha256(backup) and manifest['size_bytes'] == os.path.getsize(backup)
    assert manifest['source'] == os.path.realpath(db)
    assert manifest['schema_profile'] == 'runbook' and manifest['integrity'] == 'ok'
    assert manifest['sqlite_version'] == sqlite3.sqlite_version and manifest['source_journal_mode'] == 'wal'
    assert memory_db_backup.parse_time(manifest['created_at']) == pytest.approx(time.time(), abs=60)
    assert manifest['tables'] == {'patterns': 800, 'task_trajectories': 1000, 'verification_history': 200}
    # Self-contained: rollback-journal header, no sidecars needed, same rows as the source.
    with open(backup, 'rb') as handle:
        assert handle.read(20)[18:20] == b'\x01\x01'
    assert integrity(backup) == [('ok',)]
    assert counts(backup, 'patterns') == counts(db, 'patterns')
    assert isinstance(r['execution_time_ms'], int)


def test_backup_of_a_db_a_writer_process_keeps_writing_is_consistent(module, tmp_path):
    db = make_db(tmp_path, rows=1000)
    stop, ready = str(tmp_path / 'stop'), str(tmp_path / 'ready')
    writer = subprocess.Popen([sys.executable, '-c', WRITER, db, stop, ready], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(ready) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        results = []
        for index in range(3):
            results.append(module('memory_db_backup', {'path': db, 'dest': str(tmp_path / ('b%d' % index))}))
            time.sleep(0.1)
    finally:
        open(stop, 'w').close()
        out, _err = writer.communicate(timeout=30)
    stats = json.loads(out)
    assert stats['errors'] == 0 and stats['txns'] > 0, stats
    seen = []
    for r in results:
        assert r['changed'] is True and r['verified'] is True, r
        backup = r['backup_path']
        assert integrity(backup) == [('ok',)]
        pair_a, pair_b = counts(backup, 'pair_a', 'pair_b')
        # A torn copy would show one insert of a transaction without the other.
        assert pair_a == pair_b, (pair_a, pair_b)
        assert r['manifest']['tables']['pair_a'] == pair_a
        seen.append(pair_a)
    # The writer was really writing while the backups ran, and the backups saw it.
    assert seen == sorted(seen) and seen[-1] > seen[0] and seen[-1] <= stats['txns']


def test_corrupt_source_is_refused_and_earlier_backups_stay(module, tmp_path):
    db = make_db(tmp_path, rows=3000)
    dest = tmp_path / 'backups'
    good = module('memory_db_backup', {'path': db, 'dest': str(dest)})
    before = tree_digest(str(dest))
    corrupt_db(db, 'overwritten_pages')
    r = module('memory_db_backup', {'path': db, 'dest': str(dest)})
    assert r['failed'] and r['_rc'] == 1
    assert 'fails quick_check' in r['msg'] and 'allow_corrupt_source' in r['msg'], r['msg']
    assert r['source_integrity'] != 'ok'
    assert tree_digest(str(dest)) == before and good['manifest']['sha256'] == sha256(good['backup_path'])

    kept = module('memory_db_backup', {'path': db, 'dest': str(tmp_path / 'damaged'), 'allow_corrupt_source': True})
    assert kept['changed'] is True and kept['verified'] is False, kept
    assert kept['manifest']['integrity'] != 'ok' and kept['manifest']['source_quick_check'] != 'ok'
    assert not memory_db_backup.verify_backup(kept['backup_path'])['ok']


def test_disk_full_is_detected_before_writing_and_nothing_is_left(module, tmp_path, tmpfs):
    small = make_db(tmp_path, rows=100, name='small.db')
    first = module('memory_db_backup', {'path': small, 'dest': str(tmpfs)})
    assert first['changed'] is True, first
    before = tree_digest(str(tmpfs))
    big = make_db(tmp_path, rows=20000, name='big.db')
    assert os.path.getsize(big) > 1024 * 1024
    r = module('memory_db_backup', {'path': big, 'dest': str(tmpfs)})
    assert r['failed'] and r['msg'].startswith('disk full at %s: ' % tmpfs), r
    assert r['needed_bytes'] > r['free_bytes'] and ('%d bytes free, %d needed' % (r['free_bytes'], r['needed_bytes'])
                                                    in r['msg'])
    assert tree_digest(str(tmpfs)) == before
    assert memory_db_backup.verify_backup(first['backup_path'])['ok']


def test_disk_full_during_the_copy_removes_the_partial_file(tmp_path, tmpfs, monkeypatch):
    """The free-space check is bypassed so that the copy itself hits a real ENOSPC on the tmpfs."""
    small = make_db(tmp_path, rows=100, name='small.db')
    first = memory_db_backup.take_backup(small, str(tmpfs), timestamped=True)
    before = tree_digest(str(tmpfs))
    big = make_db(tmp_path, rows=20000, name='big.db')
    monkeypatch.setattr(memory_db_backup.safe_files, 'free_bytes', lambda path: 1 << 40)
    with pytest.raises(memory_db_backup.BackupError) as caught:
        memory_db_backup.take_backup(big, str(tmpfs), timestamped=True, keep=1)
    assert str(caught.value).startswith('disk full at ')
    monkeypatch.undo()
    assert tree_digest(str(tmpfs)) == before  # no temp file, no empty stamp folder, nothing pruned
    assert memory_db_backup.verify_backup(first['backup_path'])['ok']


def test_retention_keeps_n_and_check_mode_predicts_it(module, tmp_path):
    db = make_db(tmp_path, rows=200)
    dest = tmp_path / 'backups'
    made = [module('memory_db_backup', {'path': db, 'dest': str(dest), 'timestamped': True})['backup_path']
            for _index in range(4)]
    assert len(set(made)) == 4 and all(os.path.dirname(p) != str(dest) for p in made)
    plan = module('memory_db_backup', {'path': db, 'dest': str(dest), 'timestamped': True, 'keep': 2},
                  check_mode=True)
    assert plan['changed'] is True and sorted(plan['would_delete']) == sorted(made[:3])
    assert all(os.path.exists(p) for p in made)
    r = module('memory_db_backup', {'path': db, 'dest': str(dest), 'timestamped': True, 'keep': 2})
    assert sorted(r['deleted']) == sorted(made[:3])
    assert sorted(os.listdir(str(dest))) == sorted(
        os.path.basename(os.path.dirname(p)) for p in (made[3], r['backup_path']))


def test_retention_never_deletes_the_newest_verified_backup(module, tmp_path):
    db = make_db(tmp_path, rows=3000)
    dest = tmp_path / 'backups'
    oldest, middle, newer = [module('memory_db_backup', {'path': db, 'dest': str(dest), 'timestamped': True})
                             for _index in range(3)]
    # The two newer ones stop being verified: one lost its manifest, one was changed after the fact.
    os.unlink(middle['manifest_path'])
    with open(newer['backup_path'], 'r+b') as handle:
        handle.seek(5000)
        handle.write(b'\xff' * 16)
    corrupt_db(db, 'overwritten_pages')
    r = module('memory_db_backup', {'path': db, 'dest': str(dest), 'timestamped': True, 'keep': 1,
                                    'allow_corrupt_source': True})
    assert r['changed'] is True and r['verified'] is False, r
    assert sorted(r['deleted']) == sorted([middle['backup_path'], newer['backup_path']])
    assert os.path.exists(oldest['backup_path']) and memory_db_backup.verify_backup(oldest['backup_path'])['ok']
    assert os.path.exists(r['backup_path'])


def test_check_mode_writes_nothing(module, tmp_path):
    db = make_db(tmp_path, rows=500)
    before = tree_digest(str(tmp_path))
    r = module('memory_db_backup', {'path': db, 'dest': str(tmp_path / 'new' / 'dir'), 'timestamped': True},
               check_mode=True)
    assert r['changed'] is True and r['would_create_dest'] is True and r['source_integrity'] == 'ok'
    assert r['would_backup_to'].startswith(str(tmp_path / 'new' / 'dir') + os.sep)
    assert tree_digest(str(tmp_path)) == before and not (tmp_path / 'new').exists()


@pytest.mark.parametrize('name', ["x'; DROP TABLE patterns;--", '../escape', '.hidden', 'a/b', '',
                                  'memory.db.backup.manifest.json'])
def test_unusable_names_are_refused_and_never_reach_sql(module, tmp_path, name):
    db = make_db(tmp_path, rows=200)
    rows = counts(db, 'patterns')
    r = module('memory_db_backup', {'path': db, 'dest': str(tmp_path / 'b'), 'name': name})
    assert r['failed'] and 'not a usable file name' in r['msg'] and 'memory.db.backup' in r['msg'], r
    assert counts(db, 'patterns') == rows and not (tmp_path / 'b').exists()


def test_bad_combinations_name_the_fix(module, tmp_path):
    db = make_db(tmp_path, rows=200)
    r = module('memory_db_backup', {'path': db, 'dest': str(tmp_path / 'b'), 'keep': 3})
    assert r['failed'] and 'timestamped: true' in r['msg']
    r = module('memory_db_backup', {'path': db, 'dest': str(tmp_path / 'b'), 'timestamped': True, 'keep': 0})
    assert r['failed'] and 'keep must be 1 or more' in r['msg']
    r = module('memory_db_backup', {'path': db, 'dest': os.path.dirname(db), 'name': 'memory.db'})
    assert r['failed'] and 'overwrite the database itself' in r['msg']
    r = module('memory_db_backup', {'path': str(tmp_path / 'missing.db'), 'dest': str(tmp_path / 'b')})
    assert r['failed'] and 'does not exist' in r['msg']
    assert not (tmp_path / 'b').exists()
