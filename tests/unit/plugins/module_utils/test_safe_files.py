"""safe_files: atomic writes, preserving a DB set, holders of open files, full disks, plain names."""

import errno
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time

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


# ---------------------------------------------------------------------------------------------
# resolved paths, special files, capped reads, temp sweeping

def test_open_regular_refuses_fifo_device_and_symlink_without_blocking(tmp_path):
    fifo = str(tmp_path / 'pipe')
    os.mkfifo(fifo)
    link = str(tmp_path / 'link')
    real = tmp_path / 'real'
    real.write_bytes(b'x')
    os.symlink(str(real), link)
    with pytest.raises(safe_files.UnsafePath) as caught:
        safe_files.open_regular(fifo)  # O_NONBLOCK: returns at once instead of waiting for a writer
    assert 'FIFO' in str(caught.value)
    with pytest.raises(OSError) as followed:
        safe_files.open_regular(link)  # O_NOFOLLOW: a link planted after a check is not followed
    assert followed.value.errno == errno.ELOOP
    assert 'FIFO' in safe_files.regular_file_problem(fifo)
    assert 'symbolic link' in safe_files.regular_file_problem(link)
    with pytest.raises(safe_files.UnsafePath):
        safe_files.sha256_file(fifo)
    if os.geteuid() == 0:
        dev = str(tmp_path / 'zero')
        os.mknod(dev, 0o20600, os.makedev(1, 5))
        with pytest.raises(safe_files.UnsafePath) as device:
            safe_files.read_capped(dev)
        assert 'character device' in str(device.value)


def test_read_capped_and_read_json_refuse_oversized_files(tmp_path):
    big = tmp_path / 'big.json'
    big.write_bytes(b' ' * 2048 + b'{}')
    with pytest.raises(safe_files.UnsafePath):
        safe_files.read_capped(str(big), limit=1024)
    assert safe_files.read_capped(str(big), limit=4096).strip() == b'{}'


def test_resolve_db_path_refuses_links_out_of_the_directory_and_special_sidecars(tmp_path):
    app = tmp_path / 'app'
    app.mkdir()
    outside = tmp_path / 'outside.db'
    outside.write_bytes(b'')
    os.symlink(str(outside), str(app / 'memory.db'))
    with pytest.raises(safe_files.UnsafePath) as caught:
        safe_files.resolve_db_path(str(app / 'memory.db'))
    assert 'outside' in str(caught.value)
    os.unlink(str(app / 'memory.db'))
    (app / 'real.db').write_bytes(b'')
    os.symlink('real.db', str(app / 'memory.db'))  # a link inside the same directory is fine
    assert safe_files.resolve_db_path(str(app / 'memory.db')) == os.path.realpath(str(app / 'real.db'))
    os.mkfifo(str(app / 'real.db-wal'))
    with pytest.raises(safe_files.UnsafePath) as sidecar:
        safe_files.resolve_db_path(str(app / 'memory.db'))
    assert 'FIFO' in str(sidecar.value)
    with pytest.raises(safe_files.UnsafePath):
        safe_files.resolve_inside(str(app / '..' / 'outside.db'), str(app), 'x', 'fix')


def test_sweep_temps_removes_only_dead_runs_and_old_legacy_names(tmp_path):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    mine = safe_files.temp_name(str(tmp_path / 'memory.db'), 'restore')
    names = {
        '.memory.db.backup.backup-%d-0a0b0c0d.tmp' % dead.pid: True,          # its pid is gone
        '.memory.db.backup.backup-%d-0a0b0c0d.tmp-journal' % dead.pid: True,  # and the temp DB's sidecar
        mine: False,                                                           # a live run's (this process)
        '.memory.db.backup.abcd_123.tmp': False,                               # legacy name, young
        '.memory.db.backup.abcd_124.tmp': True,                                # legacy name, old
        'memory.db': False,
        '.hidden-operator-file': False,
    }
    for name in names:
        (tmp_path / name).write_bytes(b'x')
    old = time.time() - safe_files.TEMP_GRACE_SECONDS - 60
    os.utime(str(tmp_path / '.memory.db.backup.abcd_124.tmp'), (old, old))
    removed = safe_files.sweep_temps(str(tmp_path))
    assert sorted(os.path.basename(p) for p in removed) == sorted(n for n, gone in names.items() if gone)
    assert sorted(os.listdir(str(tmp_path))) == sorted(n for n, gone in names.items() if not gone)


def test_non_utf8_names_are_reported_printably(tmp_path):
    name = os.fsdecode(b'rel-\xff')
    assert 'not valid UTF-8' in safe_files.utf8_problem(name)
    assert safe_files.utf8_problem('plain') is None
    json.dumps(safe_files.printable(name))  # never raises


def test_check_range_names_the_valid_range():
    assert safe_files.check_range('keep', -1, 1, 10) == 'keep must be between 1 and 10 (got -1)'
    assert safe_files.check_range('max_rows', -1, 0) == 'max_rows must be 0 or more (got -1)'
    assert safe_files.check_range('keep', 5, 1, 10) is None and safe_files.check_range('keep', None, 1) is None


def test_inode_holders_finds_a_process_on_a_renamed_file(tmp_path):
    target = tmp_path / 'f'
    target.write_bytes(b'x')
    proc = subprocess.Popen([sys.executable, '-c', 'import sys, time; h = open(sys.argv[1]); print("ready", '
                             'flush=True); time.sleep(60)', str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'ready'
        identity = safe_files.file_identity(str(target))
        os.rename(str(target), str(tmp_path / 'moved'))
        assert [h['pid'] for h in safe_files.inode_holders([identity])] == [proc.pid]
    finally:
        proc.kill()
        proc.wait()
    assert safe_files.inode_holders([identity]) == []
