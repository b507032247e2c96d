"""memory_db_preserve: a sha256-verified copy of the DB set under SQLite's exclusive lock, the DB left in place."""

import json
import os
import subprocess
import sys

from dbfactory import make_db, sha256, tree_digest

WAL_WRITER = r'''
import os, signal, sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('PRAGMA wal_autocheckpoint=0')
c.execute('CREATE TABLE IF NOT EXISTS marker (n INTEGER)')
c.execute('INSERT INTO marker VALUES (7)')
os.kill(os.getpid(), signal.SIGKILL)
'''

HOLDER = r'''
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1])
conn.execute('SELECT count(*) FROM sqlite_master').fetchone()
print('ready', flush=True)
time.sleep(60)
'''


def test_the_set_is_copied_with_sha256_and_left_in_place(module, tmp_path):
    db = make_db(tmp_path, rows=500)
    subprocess.run([sys.executable, '-c', WAL_WRITER, db], check=False)
    before = dict((name, sha256(db + name)) for name in ('', '-wal', '-shm'))
    planned = module('memory_db_preserve', {'path': db, 'preserve_dir': str(tmp_path / 'kept')}, check_mode=True)
    assert planned['changed'] is True and not os.path.exists(str(tmp_path / 'kept'))
    assert dict((f['name'], f['sha256']) for f in planned['would_preserve']) == dict(
        ('memory.db' + k, v) for k, v in before.items())
    r = module('memory_db_preserve', {'path': db, 'preserve_dir': str(tmp_path / 'kept'), 'label': 'rollback-from-r1'})
    assert r['changed'] is True and r['preserved']['method'] == 'copy', r
    assert os.path.basename(r['preserved']['dir']).startswith('rollback-from-r1-')
    for item in r['preserved']['files']:
        assert sha256(item['path']) == item['sha256'] == before[item['name'][len('memory.db'):]]
    with open(os.path.join(r['preserved']['dir'], 'MANIFEST.json')) as handle:
        assert len(json.load(handle)['files']) == 3
    assert dict((name, sha256(db + name)) for name in ('', '-wal', '-shm')) == before  # left as it was


def test_an_open_connection_keeps_the_lock_and_nothing_is_written(module, tmp_path):
    db = make_db(tmp_path, rows=300)
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, db], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'ready'
        before = tree_digest(str(tmp_path))
        r = module('memory_db_preserve', {'path': db, 'preserve_dir': str(tmp_path / 'kept'), 'lock_timeout': 1})
        after = tree_digest(str(tmp_path))
    finally:
        holder.kill()
        holder.wait()
    assert r['failed'] and 'exclusive lock' in r['msg'] and 'pid %d' % holder.pid in r['msg'], r
    assert after == before and not os.path.exists(str(tmp_path / 'kept'))


def test_bad_inputs_are_refused(module, tmp_path):
    os.makedirs(str(tmp_path / '.swarm'))
    fifo = str(tmp_path / '.swarm' / 'memory.db')
    os.mkfifo(fifo)
    r = module('memory_db_preserve', {'path': fifo, 'preserve_dir': str(tmp_path / 'kept')}, timeout=30)
    assert r['failed'] and 'FIFO' in r['msg'], r
    r = module('memory_db_preserve', {'path': fifo, 'preserve_dir': str(tmp_path / 'kept'), 'lock_timeout': 0})
    assert r['failed'] and 'lock_timeout must be between 1 and 3600 (got 0)' in r['msg'], r
    r = module('memory_db_preserve', {'path': fifo, 'preserve_dir': str(tmp_path / 'kept'), 'label': '../x'})
    assert r['failed'] and 'label' in r['msg'], r
    r = module('memory_db_preserve', {'path': str(tmp_path / 'none.db'), 'preserve_dir': str(tmp_path / 'kept')})
    assert r['changed'] is False and r['preserved'] is None, r
