"""db_swap: SQLite's exclusive lock against real writer processes, preserve-by-move, drain, late commits."""

import os
import sqlite3
import subprocess
import sys
import threading

import pytest

from ansible_collections.claude_flow.runbook.plugins.module_utils import db_swap, safe_files

# Opens its connection (an fd on the file) at once, writes only when told to on stdin: a hook that opened
# the DB just before the swap and commits just after it.
LATE_OPENER = r'''
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=float(sys.argv[2]), isolation_level=None)
print('opened', flush=True)
sys.stdin.readline()
try:
    conn.execute('INSERT INTO t (v) VALUES (?)', ('late',))
    print('committed', flush=True)
except sqlite3.Error as exc:
    print('failed', exc, flush=True)
conn.close()
'''

HOLDER = r'''
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1])
conn.execute('SELECT count(*) FROM t').fetchone()
print('ready', flush=True)
time.sleep(60)
'''


def wal_db(path, rows=3, checkpoint=False):
    """A WAL DB with rows committed one per transaction; without checkpoint they stay in -wal (the writer
    dies without closing, as a crashed service does)."""
    script = ('import os, signal, sqlite3, sys\n'
              'c = sqlite3.connect(sys.argv[1], isolation_level=None)\n'
              "c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0')\n"
              "c.execute('CREATE TABLE IF NOT EXISTS t (v TEXT)')\n"
              'for n in range(int(sys.argv[2])):\n'
              "    c.execute('INSERT INTO t VALUES (?)', (str(n),))\n"
              'if sys.argv[3] == "1":\n'
              '    c.close(); sys.exit(0)\n'
              'os.kill(os.getpid(), signal.SIGKILL)\n')
    subprocess.run([sys.executable, '-c', script, path, str(rows), '1' if checkpoint else '0'], check=False)
    return path


def new_db(path, value):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute('CREATE TABLE t (v TEXT)')
    conn.execute('INSERT INTO t VALUES (?)', (value,))
    conn.close()
    return path


def values(path):
    conn = sqlite3.connect('file:%s?mode=ro' % path, uri=True)
    try:
        return [row[0] for row in conn.execute('SELECT v FROM t ORDER BY rowid')]
    finally:
        conn.close()


def test_the_lock_turns_away_real_writers_and_readers_until_released(tmp_path):
    db = wal_db(str(tmp_path / 'memory.db'), checkpoint=True)
    lock = db_swap.ExclusiveLock(db, timeout=2).acquire()
    try:
        for sql in ('INSERT INTO t VALUES (1)', 'SELECT count(*) FROM t'):
            proc = subprocess.run([sys.executable, '-c', 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1], '
                                   'timeout=0.3, isolation_level=None); c.execute(sys.argv[2]).fetchall()', db, sql],
                                  capture_output=True, text=True, check=False)
            assert proc.returncode == 1 and 'database is locked' in proc.stderr, proc.stderr
        # closing another fd of the same file in this process keeps the lock (OFD lock, not POSIX)
        safe_files.sha256_file(db)
        proc = subprocess.run([sys.executable, '-c', 'import sqlite3, sys; sqlite3.connect(sys.argv[1], timeout=0.3)'
                               '.execute("SELECT 1 FROM t").fetchall()', db], capture_output=True, text=True, check=False)
        assert proc.returncode == 1
    finally:
        lock.release()
    assert values(db) == ['0', '1', '2']


def test_the_lock_is_not_granted_while_a_connection_stays_open(tmp_path):
    db = wal_db(str(tmp_path / 'memory.db'), checkpoint=True)
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, db], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'ready'
        with pytest.raises(db_swap.SwapError) as caught:
            db_swap.ExclusiveLock(db, timeout=1).acquire()
        assert 'pid %d' % holder.pid in str(caught.value) and 'nothing was changed' in str(caught.value)
    finally:
        holder.kill()
        holder.wait()
    with db_swap.ExclusiveLock(db, timeout=2):
        pass


def test_swap_moves_the_old_set_and_the_path_never_goes_missing(tmp_path):
    db = wal_db(str(tmp_path / 'memory.db'))
    before = dict((os.path.basename(m), safe_files.sha256_file(m)) for m in safe_files.db_set(db))
    old_inode = os.stat(db).st_ino
    staged = new_db(str(tmp_path / '.memory.db.test-1-00.tmp'), 'new')
    state = {'stop': False, 'missing': 0}

    def watch():
        while not state['stop']:
            state['missing'] += 0 if os.path.lexists(db) else 1
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = db_swap.Swap(db, staged, str(tmp_path / 'preserved'), 'memory.db-test').run()
    finally:
        state['stop'] = True
        watcher.join()
    assert state['missing'] == 0
    assert result['preserved']['method'] == 'move' and result['late_commits']['count'] == 0
    kept = dict((f['name'], f['sha256']) for f in result['preserved']['files'])
    assert kept == before and sorted(kept) == ['memory.db', 'memory.db-shm', 'memory.db-wal']
    folder = result['preserved']['dir']
    assert os.stat(os.path.join(folder, 'memory.db')).st_ino == old_inode  # moved, not copied
    assert values(os.path.join(folder, 'memory.db')) == ['0', '1', '2']  # the -wal content came along
    assert values(db) == ['new'] and safe_files.db_set(db) == [db]


def test_a_writer_that_opened_the_old_file_before_the_swap_never_commits_after_it(tmp_path):
    db = wal_db(str(tmp_path / 'memory.db'))
    staged = new_db(str(tmp_path / '.memory.db.test-1-00.tmp'), 'new')
    swap = db_swap.Swap(db, staged, str(tmp_path / 'preserved'), 'memory.db-test', drain_timeout=20)
    swap.lock()
    late = subprocess.Popen([sys.executable, '-c', LATE_OPENER, db, '1'], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert late.stdout.readline().strip() == 'opened'
        swap.preserve()
        swap.move_sidecars()
        swap.replace()
        late.stdin.write('go\n')
        late.stdin.flush()
        drained = swap.drain()  # waits until the late opener gave up (its busy timeout, 1 s) and closed
        swap.unlock()
        outcome = late.stdout.readline().strip()
    finally:
        late.kill()
        late.wait()
    assert outcome.startswith('failed') and 'locked' in outcome, outcome
    assert [h['pid'] for h in drained['holders_waited_out']] == [late.pid] and 'still_open' not in drained
    assert swap.late()['count'] == 0
    assert values(db) == ['new'] and values(os.path.join(swap.preserved['dir'], 'memory.db')) == ['0', '1', '2']
    conn = sqlite3.connect(db)
    assert conn.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
    conn.close()


def test_late_commits_counts_wal_commit_frames_after_the_decision(tmp_path):
    db = wal_db(str(tmp_path / 'memory.db'), rows=2)
    size = os.path.getsize(db + '-wal')
    assert db_swap.wal_commits(db + '-wal') == 3  # CREATE TABLE + 2 inserts
    wal_db(db, rows=4)
    assert db_swap.wal_commits(db + '-wal', size) == 4


def test_preserve_onto_another_filesystem_copies_and_checks_space(tmp_path):
    mnt = tmp_path / 'small'
    mnt.mkdir()
    proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', str(mnt)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        pytest.skip('cannot mount a tmpfs here (needs root): %s' % proc.stderr.strip())
    try:
        db = wal_db(str(tmp_path / 'memory.db'), rows=3)
        assert db_swap.preserve_space_problem(db, str(mnt)) is None
        conn = sqlite3.connect(db)
        conn.execute('CREATE TABLE pad (b BLOB)')
        conn.execute('INSERT INTO pad VALUES (zeroblob(400000))')
        conn.commit()
        conn.close()
        problem = db_swap.preserve_space_problem(db, str(mnt))
        assert 'bytes free' in problem and 'another filesystem' in problem
        assert db_swap.preserve_space_problem(db, str(tmp_path / 'preserved')) is None  # same fs: a rename
        os.unlink(db)
        wal_db(db, rows=3)
        staged = new_db(str(tmp_path / '.memory.db.test-1-00.tmp'), 'new')
        result = db_swap.Swap(db, staged, str(mnt / 'preserved'), 'memory.db-test').run()
        assert result['preserved']['method'] == 'copy'
        assert values(os.path.join(result['preserved']['dir'], 'memory.db')) == ['0', '1', '2']
    finally:
        subprocess.run(['umount', '-l', str(mnt)], check=False)
