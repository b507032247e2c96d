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

from conftest import PriorState, integrity, make_db, sha256
from module_runner import run_module  # tests/lab, put on sys.path by conftest

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
    for attempt in range(rounds):
        stop = str(tmp_path / ('stop-%d' % attempt))
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
        result = run_module('memory_db_restore', {'path': db, 'backup_dir': backups, 'preserve_dir': preserve,
                                                  'force': True})
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
