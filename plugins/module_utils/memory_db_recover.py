# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Salvage a damaged memory.db into a NEW side file; the original is only ever read.

Two methods:
  sqlite3_cli  ``sqlite3 -readonly SRC .recover | sqlite3 TMP`` through pipes (no shell), with a
               timeout. .recover reads raw pages, so it also finds rows of tables whose b-tree is
               broken and puts rows it cannot place in ``lost_and_found``.
  python       used when no usable CLI exists. It opens the source read-only and copies table by
               table: rows are read in rowid order; when a read fails on a bad page, it probes
               further rowids (doubling the step, then bisecting back) to find where readable
               rows start again, and carries on from there. Each row is inserted on its own, so
               one bad row costs that row only. It cannot read raw pages: rows it cannot reach
               through the b-tree are lost, and it has no lost_and_found.

SQLite's own word on .recover output is that it is suspect: the result is written to a temp
file, integrity-checked, and only then moved to ``dest``; row counts are reported against a
backup when one is given, so an operator can judge what was lost.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time

from ansible_collections.claude_flow.runbook.plugins.module_utils import db_swap
from ansible_collections.claude_flow.runbook.plugins.module_utils import memory_db
from ansible_collections.claude_flow.runbook.plugins.module_utils import safe_files

DEFAULT_TIMEOUT = 600
MAX_TIMEOUT = 86400
LOST_AND_FOUND_RE = re.compile(r'^lost_and_found(_\d+)?$')
MIN_CLI_VERSION = (3, 29, 0)  # the first sqlite3 shell with .recover
ROWID_MIN = -(2 ** 63)
ROWID_MAX = 2 ** 63 - 1
MAX_WARNINGS = 20


class RecoverError(memory_db.MemoryDbError):
    """A refusal or failure of a salvage."""


# ---------------------------------------------------------------------------------------------
# the sqlite3 CLI


def find_cli(binary=None):
    """(absolute path of a sqlite3 CLI, None) or (None, why none is usable)."""
    if binary:
        found = binary if os.path.sep in binary else shutil.which(binary)
        if not found or not os.path.isfile(found) or not os.access(found, os.X_OK):
            return None, 'sqlite3_binary %s was not found or is not executable' % binary
    else:
        found = shutil.which('sqlite3')
        if not found:
            return None, 'no sqlite3 CLI on PATH (apt-get install sqlite3 for .recover)'
    try:
        # module_utils has no AnsibleModule here (run_command needs one); a plain, bounded call
        proc = subprocess.run([found, '-version'], stdin=subprocess.DEVNULL, capture_output=True, timeout=30,  # pylint: disable=ansible-bad-function
                              check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, '%s -version failed: %s' % (found, exc)
    match = re.match(r'(\d+)\.(\d+)\.(\d+)', proc.stdout.decode('utf-8', 'replace').strip())
    if not match:
        return None, '%s does not look like the sqlite3 CLI (-version printed %r)' % (found, proc.stdout[:60])
    version = tuple(int(part) for part in match.groups())
    if version < MIN_CLI_VERSION:
        return None, '%s is SQLite %s; .recover needs 3.29.0 or newer' % (found, '.'.join(map(str, version)))
    return found, None


def _tail(handle):
    handle.seek(0)
    lines = [line.strip() for line in handle.read().decode('utf-8', 'replace').splitlines() if line.strip()]
    return lines[-MAX_WARNINGS:]


def cli_recover(binary, source, tmp, timeout):
    """Pipe ``binary -readonly source .recover`` into ``binary tmp``. (ok, reason, warnings)."""
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryFile() as err1, tempfile.TemporaryFile() as err2:
        # two processes joined by a pipe with one deadline: run_command runs one process at a time
        reader = subprocess.Popen([binary, '-readonly', os.path.abspath(source), '.recover'],  # pylint: disable=ansible-bad-function
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err1)
        try:
            # stdout only echoes dot-commands of the script (e.g. 'defensive off'); errors go to stderr
            writer = subprocess.Popen([binary, '-batch', os.path.abspath(tmp)], stdin=reader.stdout,  # pylint: disable=ansible-bad-function
                                      stdout=subprocess.DEVNULL, stderr=err2)
        except OSError:
            reader.kill()
            reader.wait()
            raise
        finally:
            reader.stdout.close()  # the writer owns the pipe now; the reader sees EPIPE if it exits
        try:
            writer.wait(timeout=max(1, deadline - time.monotonic()))
            reader.wait(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for proc in (reader, writer):
                proc.kill()
                proc.wait()
            raise RecoverError('.recover of %s did not finish within timeout=%ds; raise timeout (large DBs take '
                               'minutes) and retry' % (source, timeout))
        reader_errors = _tail(err1)
        writer_errors = _tail(err2)
    if reader.returncode != 0:
        # Debian's sqlite3 has .recover but not the sqlite_dbpage table it reads pages through:
        # it prints only the header pragmas and 'sql error: SQL logic error'.
        return False, ('%s could not run .recover (exit %d: %s); it is probably built without '
                       'SQLITE_ENABLE_DBPAGE_VTAB' % (binary, reader.returncode,
                                                      '; '.join(reader_errors) or 'no message')), writer_errors
    return True, None, reader_errors + writer_errors


# ---------------------------------------------------------------------------------------------
# the Python fallback


def python_recover(source, tmp, busy_timeout=memory_db.DEFAULT_BUSY_TIMEOUT_MS):
    """Copy what can be read from source into a new DB at tmp. Returns warnings."""
    src = memory_db.connect(source, readonly=True, busy_timeout_ms=busy_timeout)
    warnings = []
    try:
        try:
            schema = src.execute('SELECT type, name, tbl_name, sql FROM sqlite_master').fetchall()
            pragmas = dict((name, src.execute('PRAGMA %s' % name).fetchone()[0])
                           for name in ('page_size', 'user_version', 'application_id'))
        except sqlite3.Error as exc:
            raise RecoverError('the Python salvage cannot read the schema of %s (%s); a sqlite3 CLI with a working '
                               '.recover reads raw pages and may do better (set sqlite3_binary), otherwise restore a '
                               'verified backup' % (source, exc))
        dst = sqlite3.connect(tmp, isolation_level=None)
        try:
            dst.execute('PRAGMA page_size = %d' % int(pragmas['page_size']))
            dst.execute('BEGIN')
            for kind, name, _table, sql in schema:
                if kind != 'table' or not sql or name.startswith('sqlite_'):
                    continue
                try:
                    dst.execute(sql)
                    copy_mode = 'OR IGNORE'
                except sqlite3.Error as exc:
                    if 'already exists' not in str(exc):
                        warnings.append('table %s not created: %s' % (name, exc))
                        continue
                    copy_mode = 'OR REPLACE'  # a virtual table's shadow table, made by its CREATE VIRTUAL TABLE
                if sql.lstrip().upper().startswith('CREATE VIRTUAL'):
                    continue  # its rows live in its shadow tables, copied on their own
                warnings.extend(_copy_table(src, dst, name, sql, copy_mode))
            for kind, name, _table, sql in schema:
                if name == 'sqlite_sequence':
                    warnings.extend(_copy_sequences(src, dst))
                elif kind in ('index', 'trigger', 'view') and sql:
                    try:
                        dst.execute(sql)
                    except sqlite3.Error as exc:
                        warnings.append('%s %s not created: %s' % (kind, name, exc))
            dst.execute('PRAGMA user_version = %d' % int(pragmas['user_version']))
            dst.execute('PRAGMA application_id = %d' % int(pragmas['application_id']))
            dst.execute('COMMIT')
        finally:
            dst.close()
    finally:
        src.close()
    return warnings


def _copy_sequences(src, dst):
    """AUTOINCREMENT counters: never lower than the source's, so no old id is handed out again."""
    try:
        rows = src.execute('SELECT name, seq FROM sqlite_sequence').fetchall()
    except sqlite3.DatabaseError as exc:
        return ['sqlite_sequence unreadable (AUTOINCREMENT counters restart from the highest copied id): %s' % exc]
    for name, seq in rows:
        dst.execute('UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?', (seq, name))
        if dst.execute('SELECT changes()').fetchone()[0] == 0:
            dst.execute('INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)', (name, seq))
    return []


def _rowid_alias(src, name):
    """The INTEGER PRIMARY KEY column that is the rowid, if any (it must not be inserted twice)."""
    info = src.execute('PRAGMA table_info(%s)' % memory_db.quote_ident(name)).fetchall()
    keys = [row for row in info if row[5]]
    if len(keys) == 1 and str(keys[0][2]).upper() == 'INTEGER':
        return keys[0][1]
    return None


def _copy_table(src, dst, name, sql, mode):
    """Copy the readable rows of one table; returns warnings about what could not be read."""
    quoted = memory_db.quote_ident(name)
    columns = [row[1] for row in src.execute('PRAGMA table_info(%s)' % quoted).fetchall()]
    if not columns:
        return ['table %s: no columns readable' % name]
    col_list = ', '.join(memory_db.quote_ident(col) for col in columns)
    marks = ', '.join('?' * len(columns))
    warnings = []
    if re.search(r'\)\s*WITHOUT\s+ROWID\s*;?\s*$', sql or '', re.IGNORECASE):
        # No rowid to seek by: one pass, as far as it goes.
        insert = 'INSERT %s INTO %s (%s) VALUES (%s)' % (mode, quoted, col_list, marks)
        try:
            for row in src.execute('SELECT %s FROM %s' % (col_list, quoted)):
                _insert(dst, insert, row, name, warnings)
        except sqlite3.DatabaseError as exc:
            warnings.append('table %s (WITHOUT ROWID): stopped at an unreadable page: %s' % (name, exc))
        return warnings
    alias = _rowid_alias(src, name)
    select = 'SELECT _rowid_, %s FROM %s WHERE _rowid_ >= ? ORDER BY _rowid_' % (col_list, quoted)
    if alias is None:
        insert = 'INSERT %s INTO %s (_rowid_, %s) VALUES (?, %s)' % (mode, quoted, col_list, marks)
    else:
        insert = 'INSERT %s INTO %s (%s) VALUES (%s)' % (mode, quoted, col_list, marks)
    try:
        max_rowid = src.execute('SELECT max(_rowid_) FROM %s' % quoted).fetchone()[0]
    except sqlite3.DatabaseError:
        max_rowid = None
    max_rowid = ROWID_MAX if max_rowid is None else max_rowid
    start = ROWID_MIN
    regions = []       # (first unreadable rowid, error) per bad region
    out_of_order = 0   # cells a damaged page hands out with impossible rowids: garbage, not rows
    for _attempt in range(10000):  # bounded: every round moves start forward
        last = None
        try:
            for row in src.execute(select, (start,)):
                if row[0] < start or (last is not None and row[0] <= last):
                    out_of_order += 1
                    continue
                last = row[0]
                _insert(dst, insert, row if alias is None else row[1:], name, warnings)
            break
        except sqlite3.DatabaseError as exc:
            bad = start if last is None else last + 1
            regions.append((bad, str(exc)))
            resume = _next_readable(src, select + ' LIMIT 1', bad, max_rowid)
            if resume is None:
                break
            start = max(resume, start + 1)
    if regions:
        warnings.insert(0, 'table %s: %d unreadable region(s), the first from rowid %d (%s); rows there are lost'
                        % (name, len(regions), regions[0][0], regions[0][1]))
    if out_of_order:
        warnings.insert(0, 'table %s: %d cells with out-of-order rowids from damaged pages were ignored'
                        % (name, out_of_order))
    return warnings


def _readable(src, probe_sql, rowid):
    """True when the first row at or after rowid can be read whole (False also when none exists)."""
    try:
        row = src.execute(probe_sql, (rowid,)).fetchone()
    except sqlite3.DatabaseError:
        return False
    return row is not None and row[0] >= rowid


def _next_readable(src, probe_sql, bad, max_rowid):
    """Smallest rowid > bad from which reading works again (doubling, then bisecting); None if none."""
    step = 1
    failed = bad
    while True:
        probe = bad + step
        if probe > max_rowid:
            return None
        if _readable(src, probe_sql, probe):
            break
        failed = probe
        step *= 2
    low, high = failed, probe
    while high - low > 1:
        middle = (low + high) // 2
        if _readable(src, probe_sql, middle):
            high = middle
        else:
            low = middle
    return high


def _insert(dst, insert, row, name, warnings):
    try:
        dst.execute(insert, tuple(row))
    except sqlite3.Error as exc:
        if len(warnings) < MAX_WARNINGS:
            warnings.append('table %s: row %r was not copied: %s' % (name, row[0], exc))


# ---------------------------------------------------------------------------------------------
# the module's work


def _counts_of(path):
    conn = memory_db.connect(path, immutable=True)
    try:
        return memory_db.row_counts(conn)
    finally:
        conn.close()


def recover(path, dest, force=False, sqlite3_binary=None, timeout=DEFAULT_TIMEOUT, backup=None, preserve_dir=None,
            busy_timeout=memory_db.DEFAULT_BUSY_TIMEOUT_MS, check_mode=False, lock_timeout=db_swap.DEFAULT_LOCK_TIMEOUT,
            drain_timeout=db_swap.DEFAULT_DRAIN_TIMEOUT):
    """Salvage path into dest (see module docs); returns the module result without timing."""
    memory_db.check_ranges(RecoverError, timeout=(timeout, 1, MAX_TIMEOUT),
                           busy_timeout=(busy_timeout, 0, memory_db.MAX_BUSY_TIMEOUT_MS),
                           lock_timeout=(lock_timeout, 1, memory_db.MAX_WAIT_S),
                           drain_timeout=(drain_timeout, 1, memory_db.MAX_WAIT_S))
    try:
        real = safe_files.resolve_db_path(path)
        dest_dir = os.path.realpath(os.path.dirname(os.path.abspath(dest)))
        # dest may exist (force): it is a DB set of its own and must be where it is configured, too
        dest = safe_files.resolve_db_path(dest) if os.path.lexists(dest) else os.path.join(
            dest_dir, os.path.basename(dest))
        if backup:
            problem = safe_files.regular_file_problem(os.path.realpath(backup)) if os.path.lexists(backup) else None
            if problem:
                raise safe_files.UnsafePath('backup %s: %s; point backup at a backup file' % (backup, problem))
        if preserve_dir is None:
            preserve_dir = safe_files.resolve_inside(os.path.join(dest_dir, 'preserved'), dest_dir, 'preserve dir',
                                                     'remove the link, or set preserve_dir to a directory of your own')
        else:
            preserve_dir = os.path.realpath(preserve_dir)
    except safe_files.UnsafePath as exc:
        raise RecoverError(str(exc))
    if not os.path.isfile(real):
        raise RecoverError('path %s does not exist or is not a file; point path at the damaged memory.db' % path)
    if os.path.getsize(real) == 0:
        raise RecoverError('%s is zero bytes long: there is nothing to recover; restore a verified backup '
                           '(memory_db_restore)' % path)
    # Without the SQLite header neither .recover nor the Python salvage can open the file: say so before
    # anything runs, so check mode fails with the reason a real run would give.
    if not memory_db.inspect_file(real)['header_ok']:
        raise RecoverError('nothing can be salvaged from %s: it has no SQLite header (overwritten, or another kind of '
                           'file); restore a verified backup (memory_db_restore)' % path)
    if memory_db.same_file_set(dest, real):
        raise RecoverError('dest %s is the database itself (or its -wal/-shm); dest must be a new file, e.g. '
                           '%s' % (dest, os.path.join(os.path.dirname(path), 'memory-recovered.db')))
    if backup and memory_db.same_file_set(dest, backup):
        raise RecoverError('dest %s is the backup given in backup; choose a new file for dest' % dest)
    if os.path.isdir(dest):
        raise RecoverError('dest %s is a directory; dest must be the path of a new file' % dest)
    dest_dir = os.path.dirname(os.path.abspath(dest))
    if os.path.lexists(dest_dir) and not os.path.isdir(dest_dir):
        raise RecoverError('%s, the directory of dest, is not a directory; choose another dest' % dest_dir)
    if os.path.lexists(dest) and not force:
        raise RecoverError('dest %s already exists; choose a new file name, or set force: true to replace it (the '
                           'existing file is preserved first)' % dest)
    if backup and not os.path.isfile(backup):
        raise RecoverError('backup %s does not exist; point backup at a backup file (or leave it out)' % backup)

    binary, fallback_reason = find_cli(sqlite3_binary)
    method = 'sqlite3_cli' if binary else 'python'
    source_sha256 = safe_files.sha256_file(real)
    if check_mode:
        return {'changed': True, 'would_write': dest, 'would_use_method': method, 'fallback_reason': fallback_reason,
                'would_preserve': safe_files.db_set(dest) if os.path.lexists(dest) else [],
                'would_create_dir': not os.path.isdir(dest_dir), 'source_sha256': source_sha256}

    created_dir = safe_files.makedirs_synced(dest_dir)
    swept = safe_files.sweep_temps(dest_dir)
    tmp = os.path.join(dest_dir, safe_files.temp_name(dest, 'recover'))
    warnings = []
    preserved = None
    swap = None
    try:
        if binary:
            ok, reason, warnings = cli_recover(binary, real, tmp, timeout)
            if not ok:
                method, fallback_reason = 'python', reason + '; used the Python salvage instead'
                safe_files.remove_files(memory_db.file_set(tmp))
        if method == 'python':
            try:
                warnings = python_recover(real, tmp, busy_timeout)
            except RecoverError as exc:
                if binary:
                    raise RecoverError('%s; the sqlite3 CLI failed as well: %s' % (exc, fallback_reason))
                raise
        if not os.path.exists(tmp) or os.path.getsize(tmp) == 0:
            raise RecoverError('nothing could be recovered from %s; restore a verified backup (memory_db_restore)'
                               % path)
        integrity, counts, profile = memory_db.settle_copy(tmp)
        if integrity != 'ok':
            raise RecoverError('the recovered copy of %s fails integrity_check (%s) and was discarded; restore a '
                               'verified backup instead' % (path, '; '.join(integrity)))
        os.chmod(tmp, 0o600)
        safe_files.fsync_file(tmp)
        # dest (force) is preserved and replaced under its exclusive lock, like a restore
        problem = db_swap.preserve_space_problem(dest, preserve_dir) if os.path.lexists(dest) else None
        if problem:
            raise RecoverError(problem + '; nothing was changed')
        swap = db_swap.Swap(dest, tmp, preserve_dir, label=os.path.basename(dest) + '-replaced',
                            lock_timeout=lock_timeout, drain_timeout=drain_timeout).run()
        preserved = swap['preserved']
    except db_swap.SwapError as exc:
        safe_files.remove_files(memory_db.file_set(tmp))
        raise RecoverError(str(exc), **exc.details)
    except BaseException:
        safe_files.remove_files(memory_db.file_set(tmp))
        raise
    if safe_files.sha256_file(real) != source_sha256:
        warnings.append('%s changed while it was being recovered: a writer is active; stop the service and recover '
                        'again for a consistent result' % path)
    lost = dict((name, rows) for name, rows in counts.items() if LOST_AND_FOUND_RE.match(name) and method != 'python')
    tables = dict((name, rows) for name, rows in counts.items() if name not in lost)
    result = {'changed': True, 'recovered_to': dest, 'method': method, 'fallback_reason': fallback_reason, 'tables': tables,
              'lost_and_found': sum(rows or 0 for rows in lost.values()), 'integrity': integrity,
              'schema_profile': profile, 'source_sha256': source_sha256, 'sha256': safe_files.sha256_file(dest),
              'salvage_warnings': warnings, 'preserved': preserved,
              'late_commits': swap['late_commits'] if swap else None, 'created_dir': created_dir}
    if swept:
        result['swept_temps'] = swept
    if backup:
        before = _counts_of(backup)
        result['backup_tables'] = before
        result['deltas'] = dict((name, (tables.get(name) or 0) - (before.get(name) or 0))
                                for name in sorted(set(before) | set(tables)))
    return result
