"""memory_db_recover: salvage into a new file, never touching the original; CLI and Python methods."""

import os
import shutil
import sqlite3
import subprocess

import pytest

from dbfactory import corrupt_db, make_db, sha256, tree_digest

TABLES = ('patterns', 'task_trajectories', 'verification_history')


def rows(path, table):
    conn = sqlite3.connect('file:%s?mode=ro&immutable=1' % path, uri=True)
    try:
        return set(conn.execute('SELECT rowid, * FROM %s' % table).fetchall())
    finally:
        conn.close()


def integrity(path):
    conn = sqlite3.connect('file:%s?mode=ro&immutable=1' % path, uri=True)
    try:
        return conn.execute('PRAGMA integrity_check').fetchall()
    finally:
        conn.close()


def working_recover_cli():
    """A sqlite3 CLI whose .recover works (SQLITE3_RECOVER_BINARY, else sqlite3 on PATH), or None."""
    for candidate in (os.environ.get('SQLITE3_RECOVER_BINARY'), shutil.which('sqlite3')):
        if not candidate or not os.path.exists(candidate):
            continue
        probe = subprocess.run([candidate, ':memory:', 'CREATE TABLE t(a); INSERT INTO t VALUES (1);', '.recover'],
                               capture_output=True, text=True, timeout=30, check=False)
        if probe.returncode == 0 and 'INSERT' in probe.stdout:
            return candidate
    return None


@pytest.fixture
def damaged(module, tmp_path):
    """A runbook DB, a verified backup of it, then the DB with pages overwritten."""
    db = make_db(tmp_path, rows=3000)
    backup = module('memory_db_backup', {'path': db, 'dest': str(tmp_path / 'backups')})
    assert backup['changed'] is True
    corrupt_db(db, 'overwritten_pages')
    assert integrity(db) != [('ok',)]
    return db, backup['backup_path']


def check_salvage(r, db, backup, original_sha):
    dest = r['recovered_to']
    assert r['changed'] is True and r['integrity'] == 'ok', r
    assert integrity(dest) == [('ok',)] and r['sha256'] == sha256(dest)
    assert oct(os.stat(dest).st_mode & 0o777) == '0o600'
    assert sha256(db) == original_sha == r['source_sha256']
    for table in TABLES:
        recovered = rows(dest, table)
        assert r['tables'][table] == len(recovered)
        # Nothing invented: every recovered row is a row the backup has, byte for byte.
        assert recovered <= rows(backup, table), table
        assert r['deltas'][table] == len(recovered) - len(rows(backup, table))
    # overwritten_pages damages table leaves: rows are lost in at least one table, most survive.
    assert sum(r['deltas'].values()) < 0
    assert sum(r['tables'].values()) > 0.8 * sum(r['backup_tables'].values())
    assert r['schema_profile'] == 'runbook' and isinstance(r['lost_and_found'], int)


def test_python_salvage_when_the_cli_is_missing(module, tmp_path, damaged):
    db, backup = damaged
    original = sha256(db)
    r = module('memory_db_recover', {'path': db, 'dest': str(tmp_path / 'recovered.db'), 'backup': backup,
                                     'sqlite3_binary': str(tmp_path / 'no-such-sqlite3')})
    assert r['method'] == 'python' and 'no-such-sqlite3 was not found' in r['fallback_reason'], r
    check_salvage(r, db, backup, original)
    assert r['lost_and_found'] == 0
    assert any('unreadable region' in w for w in r['salvage_warnings']), r['salvage_warnings']


def test_default_cli_is_used_when_its_recover_works_else_the_fallback_says_why(module, tmp_path, damaged):
    db, backup = damaged
    original = sha256(db)
    system = shutil.which('sqlite3')
    r = module('memory_db_recover', {'path': db, 'dest': str(tmp_path / 'recovered.db'), 'backup': backup})
    check_salvage(r, db, backup, original)
    if system and working_recover_cli() == system:
        assert r['method'] == 'sqlite3_cli' and r['fallback_reason'] is None
    elif system:
        # e.g. Debian's sqlite3: .recover exists but sqlite_dbpage does not.
        assert r['method'] == 'python' and 'could not run .recover' in r['fallback_reason'], r
    else:
        assert r['method'] == 'python' and 'no sqlite3 CLI on PATH' in r['fallback_reason']


def test_cli_recover_when_a_working_cli_exists(module, tmp_path, damaged):
    cli = working_recover_cli()
    if cli is None and os.environ.get('SQLITE3_RECOVER_BINARY'):
        pytest.fail('SQLITE3_RECOVER_BINARY=%s has no working .recover' % os.environ['SQLITE3_RECOVER_BINARY'])
    if cli is None:
        pytest.skip('no sqlite3 CLI with a working .recover here (CI builds one: tests/ci/sqlite3-recover.sh)')
    db, backup = damaged
    original = sha256(db)
    r = module('memory_db_recover', {'path': db, 'dest': str(tmp_path / 'recovered.db'), 'backup': backup,
                                     'sqlite3_binary': cli})
    assert r['method'] == 'sqlite3_cli' and r['fallback_reason'] is None, r
    check_salvage(r, db, backup, original)


def test_healthy_db_is_copied_whole(module, tmp_path):
    db = make_db(tmp_path, rows=1000)
    original = sha256(db)
    r = module('memory_db_recover', {'path': db, 'dest': str(tmp_path / 'copy.db'),
                                     'sqlite3_binary': '/nonexistent/sqlite3'})
    assert r['changed'] is True and r['salvage_warnings'] == [], r
    for table in TABLES:
        assert rows(str(tmp_path / 'copy.db'), table) == rows(db, table)
    assert sha256(db) == original


def test_check_mode_does_nothing(module, tmp_path, damaged):
    db, _backup = damaged
    before = tree_digest(str(tmp_path))
    r = module('memory_db_recover', {'path': db, 'dest': str(tmp_path / 'recovered.db'),
                                     'sqlite3_binary': '/nonexistent/sqlite3'}, check_mode=True)
    assert r['changed'] is True and r['would_write'] == str(tmp_path / 'recovered.db'), r
    assert r['would_use_method'] == 'python' and r['source_sha256'] == sha256(db)
    assert tree_digest(str(tmp_path)) == before


def test_dest_rules(module, tmp_path, damaged):
    db, _backup = damaged
    r = module('memory_db_recover', {'path': db, 'dest': db})
    assert r['failed'] and 'is the database itself' in r['msg'] and 'memory-recovered.db' in r['msg']
    r = module('memory_db_recover', {'path': db, 'dest': db + '-wal'})
    assert r['failed'] and 'is the database itself' in r['msg']
    # A missing directory of dest is created (0700), and check mode says it would be, creating nothing.
    missing = tmp_path / 'missing-dir' / 'x.db'
    r = module('memory_db_recover', {'path': db, 'dest': str(missing)}, check_mode=True)
    assert r['would_create_dir'] is True and not os.path.exists(str(missing.parent)), r
    r = module('memory_db_recover', {'path': db, 'dest': str(missing), 'sqlite3_binary': '/nonexistent/sqlite3'})
    assert r['changed'] is True and r['created_dir'] is True and integrity(str(missing)) == [('ok',)], r
    assert oct(os.stat(str(missing.parent)).st_mode & 0o777) == '0o700'
    (tmp_path / 'a-file').write_bytes(b'')
    r = module('memory_db_recover', {'path': db, 'dest': str(tmp_path / 'a-file' / 'x.db')})
    assert r['failed'] and 'is not a directory' in r['msg'], r
    existing = tmp_path / 'existing.db'
    existing.write_bytes(b'keep me')
    r = module('memory_db_recover', {'path': db, 'dest': str(existing)})
    assert r['failed'] and 'already exists' in r['msg'] and 'force: true' in r['msg']
    assert existing.read_bytes() == b'keep me'
    r = module('memory_db_recover', {'path': db, 'dest': str(existing), 'force': True,
                                     'sqlite3_binary': '/nonexistent/sqlite3'})
    assert r['changed'] is True and integrity(str(existing)) == [('ok',)], r
    saved = r['preserved']['files'][0]
    assert saved['name'] == 'existing.db' and open(saved['path'], 'rb').read() == b'keep me'


def test_odd_dest_names_are_just_file_names(module, tmp_path, damaged):
    db, _backup = damaged
    dest = str(tmp_path / "x'; DROP TABLE patterns;--.db")
    patterns_before = len(rows(db, 'verification_history'))
    r = module('memory_db_recover', {'path': db, 'dest': dest, 'sqlite3_binary': '/nonexistent/sqlite3'})
    assert r['changed'] is True and os.path.isfile(dest) and r['tables']['patterns'] > 0, r
    assert len(rows(db, 'verification_history')) == patterns_before


@pytest.mark.parametrize('mode, expected', [
    ('zero_length', 'zero bytes long'),
    ('not_a_database', 'nothing can be salvaged'),
])
def test_unsalvageable_files_fail_clearly_and_leave_nothing(module, tmp_path, mode, expected):
    db = make_db(tmp_path, rows=300)
    corrupt_db(db, mode)
    original = sha256(db)
    # check mode fails the same way, before anything would run
    checked = module('memory_db_recover', {'path': db, 'dest': str(tmp_path / 'recovered.db')}, check_mode=True)
    assert checked['failed'] and expected in checked['msg'], checked
    r = module('memory_db_recover', {'path': db, 'dest': str(tmp_path / 'recovered.db'),
                                     'sqlite3_binary': '/nonexistent/sqlite3'})
    assert r['failed'] and expected in r['msg'] and 'backup' in r['msg'], r
    assert not (tmp_path / 'recovered.db').exists() and sha256(db) == original
    assert [n for n in os.listdir(str(tmp_path)) if n.endswith('.tmp')] == []
