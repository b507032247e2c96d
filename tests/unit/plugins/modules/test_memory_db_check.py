"""memory_db_check against real generated, corrupted and locked database files."""

import sqlite3
import subprocess
import sys
import time

import pytest

from dbfactory import PROFILES, corrupt_db, make_db, sha256

CORRUPTIONS = ['overwritten_pages', 'truncated', 'zero_length', 'not_a_database', 'index_mismatch', 'stale_wal']


@pytest.mark.parametrize('profile', PROFILES)
def test_healthy_db_is_ok_for_every_profile(module, tmp_path, profile):
    path = make_db(tmp_path, profile)
    before = sha256(path)
    result = module('memory_db_check', {'path': path, 'mode': 'full'})
    assert result['ok'] is True, result
    assert result['errors'] == []
    assert result['schema_profile'] == profile
    assert result['changed'] is False
    assert result['page_count'] > 0 and result['size_bytes'] > 0
    assert sha256(path) == before


@pytest.mark.parametrize('mode', CORRUPTIONS)
def test_every_corruption_mode_is_reported_not_ok(module, tmp_path, mode):
    path = corrupt_db(make_db(tmp_path), mode)
    result = module('memory_db_check', {'path': path, 'mode': 'full'})
    assert result['_rc'] == 0 and not result.get('failed'), result
    assert result['ok'] is False
    assert result['errors'], result


@pytest.mark.parametrize('mode,words', [('zero_length', 'zero bytes'), ('not_a_database', 'not an SQLite database'),
                                        ('truncated', 'truncated')])
def test_file_level_problems_are_named(module, tmp_path, mode, words):
    path = corrupt_db(make_db(tmp_path, wal=False), mode)
    result = module('memory_db_check', {'path': path})
    assert result['ok'] is False
    assert words in ' '.join(result['errors']), result['errors']


def test_index_mismatch_is_found_by_full_check(module, tmp_path):
    path = corrupt_db(make_db(tmp_path), 'index_mismatch')
    result = module('memory_db_check', {'path': path, 'mode': 'full'})
    assert result['ok'] is False
    assert any('index' in e.lower() or 'row' in e.lower() for e in result['errors']), result['errors']


def test_missing_file(module, tmp_path):
    result = module('memory_db_check', {'path': str(tmp_path / 'nope.db')})
    assert result['ok'] is False
    assert 'does not exist' in result['errors'][0]
    assert not (tmp_path / 'nope.db').exists(), 'a check must never create the file'


def test_check_works_while_a_writer_holds_the_wal_db(module, tmp_path):
    path = make_db(tmp_path, wal=True)
    writer = subprocess.Popen([sys.executable, '-c', (
        'import sqlite3,sys,time\n'
        'c=sqlite3.connect(sys.argv[1]); c.execute("PRAGMA journal_mode=WAL")\n'
        'c.execute("CREATE TABLE IF NOT EXISTS w(x)")\n'
        'print("ready", flush=True)\n'
        'while True:\n'
        '  c.execute("INSERT INTO w VALUES (1)"); c.commit(); time.sleep(0.01)\n'), path],
        stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == 'ready'
        result = module('memory_db_check', {'path': path})
        assert result['ok'] is True, result
        assert result['journal_mode'] == 'wal'
    finally:
        writer.kill()
        writer.wait()


def test_exclusive_lock_gives_clear_locked_error(module, tmp_path):
    path = make_db(tmp_path, wal=False)
    holder = subprocess.Popen([sys.executable, '-c', (
        'import sqlite3,sys,time\n'
        'c=sqlite3.connect(sys.argv[1], isolation_level=None)\n'
        'c.execute("PRAGMA journal_mode=DELETE"); c.execute("BEGIN EXCLUSIVE")\n'
        'print("locked", flush=True); time.sleep(60)\n'), path], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        started = time.monotonic()
        result = module('memory_db_check', {'path': path, 'busy_timeout': 300})
        assert result['ok'] is False
        assert 'locked' in result['errors'][0] and 'busy_timeout' in result['errors'][0]
        assert time.monotonic() - started < 30
    finally:
        holder.kill()
        holder.wait()


def test_check_mode_and_bad_input(module, tmp_path):
    path = make_db(tmp_path)
    result = module('memory_db_check', {'path': path}, check_mode=True)
    assert result['ok'] is True and result['changed'] is False
    bad = module('memory_db_check', {'path': path, 'max_errors': 0})
    assert bad['failed'] and 'max_errors' in bad['msg']
    bad = module('memory_db_check', {'path': path, 'mode': "quick'; DROP TABLE patterns;--"})
    assert bad['failed'] and 'mode' in bad['msg']
    assert sqlite3.connect(path).execute('SELECT COUNT(*) FROM patterns').fetchone()[0] > 0


def test_stale_wal_is_reported_and_the_set_is_left_as_found(module, tmp_path):
    # A -wal from another database: a read-write open would checkpoint it into the file for good.
    path = corrupt_db(make_db(tmp_path), 'stale_wal')
    before = {suffix: sha256(path + suffix) for suffix in ('', '-wal')}
    result = module('memory_db_check', {'path': path, 'mode': 'full'})
    assert result['ok'] is False and result['wal_present'] is True
    assert {suffix: sha256(path + suffix) for suffix in ('', '-wal')} == before


def test_check_of_a_closed_wal_db_leaves_no_sidecars(module, tmp_path):
    # A WAL-mode backup nobody has open: a plain read-only open would create -wal/-shm beside it.
    path = make_db(tmp_path, wal=True)
    assert not (tmp_path / '.swarm' / 'memory.db-wal').exists()
    for check_mode in (False, True):
        result = module('memory_db_check', {'path': path, 'mode': 'full'}, check_mode=check_mode)
        assert result['ok'] is True and result['journal_mode'] == 'wal', result
    assert sorted(p.name for p in (tmp_path / '.swarm').iterdir()) == ['memory.db']
