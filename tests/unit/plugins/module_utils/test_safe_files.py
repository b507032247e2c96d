"""safe_files: atomic writes, preserving a DB set, holders of open files, full disks, plain names."""

import errno
import hashlib
import json
import os
import sqlite3
import subprocess
import sys

import pytest

from ansible_collections.claude_flow.runbook.plugins.module_utils import safe_files


def digest(path):
    with open(path, 'rb') as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.fixture
def tmpfs(tmp_path):
    mount_point = tmp_path / 'small'
    mount_point.mkdir()
    proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', str(mount_point)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip('cannot mount a tmpfs here (needs root): %s' % proc.stderr.strip())
    try:
        yield mount_point
    finally:
        subprocess.run(['umount', '-l', str(mount_point)], check=False)


def wal_db(path):
    """A WAL DB whose last transaction is only in -wal (the writer died without a checkpoint)."""
    script = ('import os, signal, sqlite3, sys\n'
              'c = sqlite3.connect(sys.argv[1], isolation_level=None)\n'
              "c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0')\n"
              "c.execute('CREATE TABLE t (v TEXT)'); c.execute(\"INSERT INTO t VALUES ('only in the wal')\")\n"
              'os.kill(os.getpid(), signal.SIGKILL)\n')
    subprocess.run([sys.executable, '-c', script, path], check=False)
    return path


def test_sha256_file_matches_hashlib(tmp_path):
    target = tmp_path / 'f'
    target.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    assert safe_files.sha256_file(str(target), bufsize=65536) == digest(str(target))


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path):
    target = tmp_path / 'state.json'
    safe_files.atomic_write_json(str(target), {'a': 1})
    safe_files.atomic_write_json(str(target), {'a': 2})
    assert json.loads(target.read_text()) == {'a': 2}
    assert os.listdir(str(tmp_path)) == ['state.json']
    assert oct(os.stat(str(target)).st_mode & 0o777) == '0o600'


def test_read_json_reports_broken_files_with_the_fix(tmp_path):
    target = tmp_path / 'broken.json'
    target.write_text('{not json')
    with pytest.raises(ValueError) as caught:
        safe_files.read_json(str(target))
    assert 'move it aside' in str(caught.value)
    assert safe_files.read_json(str(tmp_path / 'missing.json'), default={}) == {}


def test_preserve_db_set_copies_every_member_with_its_sha256(tmp_path):
    db = wal_db(str(tmp_path / 'memory.db'))
    before = dict((os.path.basename(m), digest(m)) for m in safe_files.db_set(db))
    assert sorted(before) == ['memory.db', 'memory.db-shm', 'memory.db-wal']
    kept = safe_files.preserve_db_set(db, str(tmp_path / 'preserved'))
    assert dict((f['name'], f['sha256']) for f in kept['files']) == before
    assert all(digest(f['path']) == f['sha256'] for f in kept['files'])
    with open(os.path.join(kept['dir'], 'MANIFEST.json')) as handle:
        assert len(json.load(handle)['files']) == 3
    # the source set is untouched, and the preserved copy opens with the row only the -wal held
    assert dict((os.path.basename(m), digest(m)) for m in safe_files.db_set(db)) == before
    conn = sqlite3.connect(os.path.join(kept['dir'], 'memory.db'))
    assert conn.execute('SELECT v FROM t').fetchall() == [('only in the wal',)]
    conn.close()


def test_preserve_on_a_full_disk_leaves_no_half_set(tmp_path, tmpfs):
    db = str(tmp_path / 'memory.db')
    conn = sqlite3.connect(db)
    conn.execute('CREATE TABLE t (v BLOB)')
    conn.execute('INSERT INTO t VALUES (?)', (os.urandom(400 * 1024),))
    conn.commit()
    conn.close()
    with pytest.raises(OSError) as caught:
        safe_files.preserve_db_set(db, str(tmpfs))
    assert safe_files.is_disk_full(caught.value)
    assert os.listdir(str(tmpfs)) == []


def test_is_disk_full_recognises_os_and_sqlite_errors(tmp_path, tmpfs):
    with pytest.raises(OSError) as caught:
        with open(str(tmpfs / 'fill'), 'wb') as handle:
            handle.write(b'\0' * (512 * 1024))
            handle.flush()
    assert caught.value.errno == errno.ENOSPC and safe_files.is_disk_full(caught.value)
    assert safe_files.is_disk_full(sqlite3.OperationalError('database or disk is full'))
    assert not safe_files.is_disk_full(sqlite3.OperationalError('database is locked'))
    assert not safe_files.is_disk_full(OSError(errno.EACCES, 'denied'))


def test_free_bytes_and_fs_usage_measure_the_right_filesystem(tmpfs):
    free = safe_files.free_bytes(str(tmpfs / 'not' / 'yet' / 'there'))
    assert 0 < free <= 256 * 1024
    usage = safe_files.fs_usage(str(tmpfs))
    assert usage['total_bytes'] == 256 * 1024 and usage['free_bytes'] == free


def test_open_holders_finds_a_real_process_and_remove_sidecars(tmp_path):
    db = wal_db(str(tmp_path / 'memory.db'))
    assert safe_files.open_holders(db) == []
    holder = subprocess.Popen([sys.executable, '-c', 'import sys, time; f = open(sys.argv[1]); print("ready", '
                               'flush=True); time.sleep(60)', db + '-wal'], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'ready'
        found = safe_files.open_holders(db)
        assert [(h['pid'], h['fd_path']) for h in found] == [(holder.pid, os.path.realpath(db + '-wal'))]
        assert found[0]['comm'].startswith('python')
    finally:
        holder.kill()
        holder.wait()
    removed = safe_files.remove_db_sidecars(db)
    assert sorted(removed) == [db + '-shm', db + '-wal'] and safe_files.db_set(db) == [db]


@pytest.mark.parametrize('name, fragment', [
    ("x'; DROP TABLE patterns;--", "contains ' ' \"'\" ';'"),
    ('../up', "contains '/'"),
    ('.hidden', "starts with '.'"),
    ('-rf', "starts with '-'"),
    ('', 'it is empty'),
    ('a' * 201, 'longer than 200'),
    ('tab\tname', "contains '\\t'"),
])
def test_plain_filename_problem_names_what_is_wrong(name, fragment):
    assert fragment in safe_files.plain_filename_problem(name)


def test_plain_filename_accepts_ordinary_names():
    for name in ('memory.db.backup', 'memory-2025_01.db', 'A1'):
        assert safe_files.plain_filename_problem(name) is None


def test_makedirs_synced_and_owner_and_mode(tmp_path):
    target = tmp_path / 'a' / 'b' / 'c'
    assert safe_files.makedirs_synced(str(target)) is True
    assert safe_files.makedirs_synced(str(target)) is False
    assert oct(os.stat(str(target)).st_mode & 0o777) == '0o700'
    existing = tmp_path / 'db'
    existing.write_bytes(b'x')
    os.chmod(str(existing), 0o640)
    assert safe_files.owner_and_mode(str(existing)) == (os.getuid(), os.getgid(), 0o640)
    assert safe_files.owner_and_mode(str(tmp_path / 'new.db'))[2] == 0o600
    fresh = tmp_path / 'fresh'
    fresh.write_bytes(b'y')
    safe_files.apply_owner_and_mode(str(fresh), (os.getuid(), os.getgid(), 0o600))
    assert oct(os.stat(str(fresh)).st_mode & 0o777) == '0o600'
    assert safe_files.remove_files([str(fresh), str(tmp_path / 'absent')]) == [str(fresh)]
