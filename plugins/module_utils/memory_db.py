# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Opening claude-flow's .swarm/memory.db, telling its schema profile, and its time columns.

Three schema profiles exist in the wild:
  runbook       the tables the incident runbook was written against
                (patterns, task_trajectories with task_type/execution_time_ms,
                verification_history); TEXT UTC timestamps.
  reasoningbank claude-flow 2.7.x: patterns/task_trajectories without
                task_type, no verification_history; TEXT UTC timestamps,
                memory_entries in epoch seconds.
  v3            claude-flow 3.x: patterns(pattern_type, success_count,
                failure_count, *_at epoch milliseconds), trajectories.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import os
import sqlite3
import stat
import time

from ansible_collections.claude_flow.runbook.plugins.module_utils import safe_files
from ansible_collections.claude_flow.runbook.plugins.module_utils.safe_read import (
    RangeError, UnsafeFileError, check_range, kind_of, open_regular)

try:
    from urllib.parse import quote
except ImportError:  # pragma: no cover - Python 2 is not supported, keeps sanity's compile test quiet
    from urllib import quote

SQLITE_HEADER = b'SQLite format 3\x00'
DEFAULT_BUSY_TIMEOUT_MS = 5000
# File format bytes 18 and 19 of the header: 1 = rollback journal, 2 = WAL (sqlite.org/fileformat).
HEADER_MODE_BYTES = {'delete': b'\x01\x01', 'wal': b'\x02\x02'}


class MemoryDbError(Exception):
    """A problem with the DB file, stated so that an operator knows what to do next.

    The base of the backup, restore and recover errors; ``details`` go into the module's failed result."""

    def __init__(self, message, **details):
        super(MemoryDbError, self).__init__(message)
        self.details = details


def header_mode(path):
    """'wal' or 'delete' from the file header; None when the header is unreadable."""
    try:
        with open(path, 'rb') as handle:
            header = handle.read(20)
    except OSError:
        return None
    return _header_journal(header)


def _header_journal(header):
    if len(header) < 20 or not header.startswith(SQLITE_HEADER):
        return None
    return 'wal' if header[18:20] == HEADER_MODE_BYTES['wal'] else 'delete'


def inspect_file(path):
    """What the file system says about a DB before SQLite touches it."""
    info = {'path': path, 'exists': os.path.exists(path), 'size_bytes': None, 'header_ok': False,
            'wal_present': os.path.exists(path + '-wal'), 'shm_present': os.path.exists(path + '-shm'),
            'wal_size_bytes': os.path.getsize(path + '-wal') if os.path.exists(path + '-wal') else 0,
            'problem': None}
    if not info['exists']:
        info['problem'] = '%s does not exist; check the path option or restore from a backup' % path
        return info
    if os.path.isdir(path):
        info['problem'] = '%s is a directory, not a database file; point path at the .db file' % path
        return info
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        info['special'] = True
        info['problem'] = ('%s is %s, not a database file; it was not opened (that could block): point path at the '
                           '.db file' % (path, kind_of(mode)))
        return info
    info['size_bytes'] = os.path.getsize(path)
    if info['size_bytes'] == 0:
        info['problem'] = ('%s is zero bytes long: the database is empty or was truncated to nothing; '
                           'restore it from a verified backup' % path)
        return info
    try:
        fd = open_regular(path, 'database')[0]
        try:
            header = os.read(fd, 100)
        finally:
            os.close(fd)
    except (IOError, OSError, UnsafeFileError) as exc:
        info['problem'] = 'cannot read %s (%s); check its permissions' % (path, exc)
        return info
    if len(header) < 100 or not header.startswith(SQLITE_HEADER):
        info['problem'] = ('%s is not an SQLite database (bad header); it was overwritten or is another '
                           'kind of file: restore it from a verified backup' % path)
        return info
    page_size = int.from_bytes(header[16:18], 'big')
    page_size = 65536 if page_size == 1 else page_size
    page_count = int.from_bytes(header[28:32], 'big')
    info['header_ok'] = True
    # File format read/write versions 2 = WAL mode (bytes 18 and 19 of the header).
    info['wal_mode'] = _header_journal(header) == 'wal'
    size = info['size_bytes'] or 0
    if page_size and page_count and size < page_size * page_count and not info['wal_present']:
        info['problem'] = ('%s is truncated: its header declares %d pages of %d bytes (%d bytes) but the file '
                           'has %d bytes; restore it from a verified backup'
                           % (path, page_count, page_size, page_size * page_count, size))
    return info


def connect(path, readonly=True, busy_timeout_ms=DEFAULT_BUSY_TIMEOUT_MS, immutable=False):
    """Open path by URI. Read-only opens never create the file; read-write opens require it to exist.

    immutable=True (read-only only) takes no locks and keeps SQLite from creating -wal/-shm beside
    the file: only for files nobody writes (backups, our own temp files) or a WAL-mode DB that no
    connection has open (no -wal/-shm exist).
    """
    if not os.path.isfile(path):
        raise MemoryDbError('%s does not exist; check the path option or restore from a backup' % path)
    mode = 'ro' if readonly else 'rw'
    uri = 'file:%s?mode=%s' % (quote(os.path.abspath(path)), mode)
    if readonly and immutable:
        uri += '&immutable=1'
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout_ms / 1000.0, isolation_level=None,
                               check_same_thread=False)
        conn.execute('PRAGMA busy_timeout = %d' % int(busy_timeout_ms))
    except sqlite3.Error as exc:
        raise MemoryDbError(describe_sqlite_error(path, exc))
    return conn


def run_check(conn, pragma='integrity_check', limit=20):
    """'ok', or the list of problems SQLite reports (an exception counts as a problem)."""
    try:
        rows = [str(row[0]) for row in conn.execute('PRAGMA %s(%d)' % (pragma, int(limit))).fetchall()]
    except sqlite3.Error as exc:
        return ['%s failed: %s' % (pragma, exc)]
    return 'ok' if rows == ['ok'] else rows


def check_file(path, pragma='integrity_check', readonly=True, immutable=False,
               busy_timeout_ms=DEFAULT_BUSY_TIMEOUT_MS):
    """run_check on a file of its own connection, closed again."""
    conn = connect(path, readonly=readonly, immutable=immutable, busy_timeout_ms=busy_timeout_ms)
    try:
        return run_check(conn, pragma)
    finally:
        conn.close()


def row_counts(conn):
    """{table: rows} for every table; a table that cannot be counted gets None."""
    counts = {}
    try:
        names = sorted(tables(conn))
    except sqlite3.Error:
        return counts
    for name in names:
        try:
            counts[name] = conn.execute('SELECT count(*) FROM %s' % quote_ident(name)).fetchone()[0]
        except sqlite3.Error:
            counts[name] = None
    return counts


def profile_of(conn):
    try:
        return detect_profile(tables(conn))
    except sqlite3.Error:
        return 'unknown'


def settle_copy(path):
    """A copy this collection just wrote, made one self-contained file (journal_mode DELETE, no sidecars left),
    then described: (integrity_check verdict, {table: rows}, schema profile)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute('PRAGMA journal_mode=DELETE').fetchone()
        integrity = run_check(conn, 'integrity_check')
        counts = row_counts(conn)
        profile = profile_of(conn)
    finally:
        conn.close()
    safe_files.remove_files(file_set(path)[1:])
    return integrity, counts, profile


def file_set(path):
    """path and the -wal/-shm/-journal beside it: the files that together are one DB."""
    return [path + suffix for suffix in safe_files.DB_SUFFIXES]


def same_file_set(one, other):
    """True when one is the DB other or one of its sidecars (by real path)."""
    real = os.path.realpath(one)
    return any(real == os.path.realpath(member) for member in file_set(other))


def check_ranges(error, **options):
    """error(message) naming the first integer option outside its valid range. options: name=(value, low, high)."""
    for name in sorted(options):
        value, low, high = options[name]
        problem = safe_files.check_range(name, value, low, high)
        if problem:
            raise error(problem)


def describe_sqlite_error(path, exc):
    """Turn an sqlite3 exception into a sentence that names the problem and the fix."""
    text = str(exc)
    lowered = text.lower()
    if 'locked' in lowered or 'busy' in lowered:
        return ('%s is locked by another writer (%s); raise busy_timeout or stop the writer '
                '(systemctl stop the service) and retry' % (path, text))
    if 'not a database' in lowered or 'file is encrypted' in lowered:
        return '%s is not a usable SQLite database (%s); restore it from a verified backup' % (path, text)
    if 'malformed' in lowered or 'corrupt' in lowered:
        return '%s is corrupt (%s); run memory_db_recover or restore a verified backup' % (path, text)
    if 'readonly' in lowered or 'read-only' in lowered or 'permission' in lowered or 'unable to open' in lowered:
        return ('cannot open %s for this operation (%s); check file and directory permissions and '
                'that the filesystem is not mounted read-only' % (path, text))
    if 'disk' in lowered and ('full' in lowered or 'i/o' in lowered):
        return 'disk problem at %s (%s); free space on that filesystem and retry' % (path, text)
    return 'SQLite error on %s: %s' % (path, text)


def tables(conn):
    """{table: [columns]} from sqlite_master; column order as declared."""
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    result = {}
    for name in names:
        result[name] = [row[1] for row in conn.execute('PRAGMA table_info(%s)' % quote_ident(name))]
    return result


def indexes(conn):
    """[{name, table, columns}] for every named index."""
    result = []
    for name, table in conn.execute(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"):
        cols = [row[2] for row in conn.execute('PRAGMA index_info(%s)' % quote_ident(name))]
        result.append({'name': name, 'table': table, 'columns': cols})
    return result


def quote_ident(name):
    """Quote an identifier read from sqlite_master (never user input) for PRAGMA/DDL text."""
    return '"%s"' % name.replace('"', '""')


def detect_profile(table_map):
    """runbook, reasoningbank, v3 or unknown, from the tables and columns present."""
    patterns = set(table_map.get('patterns', []))
    if 'pattern_type' in patterns or 'trajectories' in table_map and 'task_trajectories' not in table_map:
        return 'v3'
    trajectories = set(table_map.get('task_trajectories', []))
    if 'verification_history' in table_map or 'task_type' in trajectories:
        return 'runbook'
    if patterns or trajectories or 'memory_entries' in table_map:
        return 'reasoningbank'
    return 'unknown'


# Time units of the columns a metric filters or orders by.
TEXT_UTC = 'text_utc'      # 'YYYY-MM-DD HH:MM:SS' (CURRENT_TIMESTAMP)
EPOCH_S = 'epoch_s'
EPOCH_MS = 'epoch_ms'


class Source(object):
    """Where one logical dataset lives in one profile: table name and the column for each role."""

    def __init__(self, table, time_unit, **columns):
        self.table = table
        self.time_unit = time_unit
        self.columns = columns

    def col(self, role):
        return self.columns.get(role)

    def missing(self, table_map, roles):
        """Reason string when the table or a column a role maps to is absent, else None."""
        if self.table not in table_map:
            return 'table %s does not exist in this database' % self.table
        present = set(table_map[self.table])
        for role in roles:
            expr = self.columns.get(role)
            if expr is None:
                return 'this schema has no column for %s in %s' % (role, self.table)
            for name in _column_names(expr):
                if name not in present:
                    return 'column %s.%s does not exist in this database' % (self.table, name)
        return None


def _column_names(expr):
    """Column names used by a role expression like '(success_count + failure_count)'."""
    out = []
    token = ''
    for char in expr + ' ':
        if char.isalnum() or char == '_':
            token += char
        else:
            if token and not token[0].isdigit():
                out.append(token)
            token = ''
    return out


SOURCES = {
    'runbook': {
        'patterns': Source('patterns', TEXT_UTC, type='type', confidence='confidence', usage='usage_count',
                           created='created_at', last_used='last_used', data='pattern_data', id='id'),
        'trajectories': Source('task_trajectories', TEXT_UTC, created='created_at', task_type='task_type',
                               exec_ms='execution_time_ms'),
        'verifications': Source('verification_history', TEXT_UTC, time='timestamp', agent='agent_name',
                                score='truth_score', status='verification_status'),
    },
    'reasoningbank': {
        'patterns': Source('patterns', TEXT_UTC, type='type', confidence='confidence', usage='usage_count',
                           created='created_at', last_used='last_used', data='pattern_data', id='id'),
        'trajectories': Source('task_trajectories', TEXT_UTC, created='created_at'),
        'verifications': Source('verification_history', TEXT_UTC, time='timestamp', agent='agent_name',
                                score='truth_score', status='verification_status'),
    },
    'v3': {
        'patterns': Source('patterns', EPOCH_MS, type='pattern_type', confidence='confidence',
                           usage='(success_count + failure_count)', created='created_at',
                           last_used='last_matched_at', data='name', id='id'),
        'trajectories': Source('trajectories', EPOCH_MS, created='started_at'),
        'verifications': Source('verification_history', TEXT_UTC, time='timestamp', agent='agent_name',
                                score='truth_score', status='verification_status'),
    },
}
SOURCES['unknown'] = SOURCES['runbook']

# Indexes that make the runbook's queries cheap, per profile: (name, table, columns). The runbook
# profile is the 2.7 one plus task_type and verification_history.
_REASONINGBANK_INDEXES = [('idx_patterns_%s' % col, 'patterns', [col])
                          for col in ('confidence', 'last_used', 'created_at', 'type')]
_REASONINGBANK_INDEXES.append(('idx_task_trajectories_created_at', 'task_trajectories', ['created_at']))
RECOMMENDED_INDEXES = {
    'reasoningbank': _REASONINGBANK_INDEXES,
    'runbook': _REASONINGBANK_INDEXES + [
        ('idx_task_trajectories_type_created', 'task_trajectories', ['task_type', 'created_at']),
        ('idx_verification_history_timestamp', 'verification_history', ['timestamp'])],
    'v3': [(name, 'patterns', [col]) for name, col in (
        ('idx_patterns_confidence', 'confidence'), ('idx_patterns_last_matched', 'last_matched_at'),
        ('idx_patterns_created_at', 'created_at'), ('idx_patterns_type', 'pattern_type'))]
    + [('idx_trajectories_started_at', 'trajectories', ['started_at'])],
    'unknown': [],
}


def to_native(epoch_seconds, unit):
    """An epoch-seconds instant in a column's own unit, so comparisons can use the column's index."""
    if unit == EPOCH_S:
        return int(epoch_seconds)
    if unit == EPOCH_MS:
        return int(epoch_seconds * 1000)
    return time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(epoch_seconds))


def epoch_expr(column, unit):
    """SQL expression that turns a column of the given unit into epoch seconds (REAL)."""
    if unit == EPOCH_S:
        return '(%s * 1.0)' % column
    if unit == EPOCH_MS:
        return '(%s / 1000.0)' % column
    return "((julianday(%s) - 2440587.5) * 86400.0)" % column


def to_iso(value, unit):
    """A stored timestamp as ISO 8601 UTC text, whatever its unit; None stays None."""
    if value is None:
        return None
    if unit == TEXT_UTC:
        text = str(value).replace('T', ' ').rstrip('Z')
        return text[:19].replace(' ', 'T') + 'Z'
    seconds = float(value) / (1000.0 if unit == EPOCH_MS else 1.0)
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(seconds))


# Windows and ages: 1 second up to 10 years (3650 days); anything beyond is a typo, not a window.
WINDOW_MIN_S = 1
WINDOW_MAX_S = 3650 * 86400
WINDOW_RANGE = '1s to 3650d (1 to %d seconds)' % WINDOW_MAX_S
_WINDOW_UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400}


def parse_window(text):
    """'90s', '15m', '1h', '2d' or a number of seconds -> seconds (int, 1 s .. 3650 d).

    Never overflows: inf, nan, 1e400h and the like are refused with the valid range."""
    if isinstance(text, bool):
        number, unit = None, 1
    elif isinstance(text, (int, float)):
        number, unit = float(text) if abs(text) < 1e300 else float('inf'), 1
    else:
        raw = str(text).strip().lower()
        unit = 1
        if raw and raw[-1] in _WINDOW_UNITS:
            unit = _WINDOW_UNITS[raw[-1]]
            raw = raw[:-1].strip()
        try:
            number = float(raw) if len(raw) <= 32 else None
        except ValueError:
            number = None
    if number is None or math.isnan(number):
        raise MemoryDbError("window %s is not a duration; use a number of seconds or e.g. '15m', '1h', '1d' "
                            "(valid range %s)" % (_clip(text), WINDOW_RANGE))
    seconds = number * unit
    if math.isinf(seconds) or not WINDOW_MIN_S <= seconds <= WINDOW_MAX_S:
        raise MemoryDbError('window %s is outside the valid range %s; use a positive duration such as 1h'
                            % (_clip(text), WINDOW_RANGE))
    return int(seconds)


def _clip(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + '...'


class Database(object):
    """An open memory.db with its profile; the one object metrics and modules work through."""

    def __init__(self, path, readonly=True, busy_timeout_ms=DEFAULT_BUSY_TIMEOUT_MS, immutable=False):
        self.path = path
        self.readonly = readonly
        self.conn = connect(path, readonly=readonly, busy_timeout_ms=busy_timeout_ms, immutable=immutable)
        self.queries = []
        try:
            self.table_map = tables(self.conn)
        except sqlite3.Error as exc:
            self.close()
            raise MemoryDbError(describe_sqlite_error(path, exc))
        self.profile = detect_profile(self.table_map)
        self.sources = SOURCES[self.profile]

    def source(self, name):
        return self.sources[name]

    def query(self, sql, params=()):
        """Run one statement with bound parameters; keep the text for the module's `queries` return."""
        self.queries.append(sql if not params else '%s -- params: %s' % (sql, list(params)))
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise MemoryDbError(describe_sqlite_error(self.path, exc))

    def execute(self, sql, params=()):
        """Run one writing statement with bound parameters; returns the number of rows it changed."""
        self.queries.append(sql if not params else '%s -- params: %s' % (sql, list(params)))
        try:
            return self.conn.execute(sql, params).rowcount
        except sqlite3.Error as exc:
            raise MemoryDbError(describe_sqlite_error(self.path, exc))

    def scalar(self, sql, params=()):
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def has_rows(self, table):
        return self.scalar('SELECT EXISTS (SELECT 1 FROM %s)' % quote_ident(table)) == 1

    def pragma(self, name):
        return self.scalar('PRAGMA %s' % name)

    def close(self):
        try:
            self.conn.close()
        except sqlite3.Error:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def common_argument_spec(**options):
    """Options every memory_db_* module shares (documented in the memory_db doc fragment), plus options."""
    spec = dict(
        path=dict(type='path', required=True),
        busy_timeout=dict(type='int', default=DEFAULT_BUSY_TIMEOUT_MS),
    )
    spec.update(options)
    return spec


BUSY_TIMEOUT_MAX_MS = 600000  # 10 minutes: a lock held longer is an incident of its own
# Modules that copy or replace DB files (backup, restore, recover, preserve) allow longer waits.
MAX_BUSY_TIMEOUT_MS = 3600 * 1000
MAX_WAIT_S = 3600


def check_busy_timeout(value):
    """busy_timeout in 0..BUSY_TIMEOUT_MAX_MS, else MemoryDbError naming the range."""
    try:
        check_range('busy_timeout', value, 0, BUSY_TIMEOUT_MAX_MS, 'milliseconds')
    except RangeError as exc:
        raise MemoryDbError(str(exc))
    return value


# How far the evidence search looks into a backup or preserve dir: enough for years of timestamped
# backups, bounded so that a huge tree cannot stall the assessment.
EVIDENCE_MAX_DEPTH = 3
EVIDENCE_MAX_ENTRIES = 20000


def _dangling_ancestor(path):
    """The first ancestor of path that is a symlink to something gone (a deleted release dir), else None."""
    probe = os.path.dirname(os.path.abspath(path))
    while probe and probe != os.path.dirname(probe):
        if os.path.islink(probe) and not os.path.exists(probe):
            return probe
        probe = os.path.dirname(probe)
    return None


def _find_copy(directory, name):
    """A file under directory (bounded walk) that is a backup or preserved copy of a DB called name."""
    if not directory or not os.path.isdir(directory):
        return None
    seen = 0
    base_depth = directory.rstrip(os.sep).count(os.sep)
    for root, dirs, files in os.walk(directory):
        if root.count(os.sep) - base_depth >= EVIDENCE_MAX_DEPTH:
            dirs[:] = []
        seen += len(dirs) + len(files)
        for item in files:
            if item == name or item.startswith(name + '.backup') or item == 'MANIFEST.json':
                return os.path.join(root, item)
        if seen > EVIDENCE_MAX_ENTRIES:
            return None
    return None


def existence_evidence(path, evidence_dirs=()):
    """What says the DB at path existed once: its -wal/-shm/-journal, its growth samples, a dangling
    symlink on its way (a deleted release), a backup or a preserved copy of it. [] when nothing does."""
    found = ['%s exists' % (path + suffix) for suffix in ('-wal', '-shm', '-journal', '.growth.json')
             if os.path.lexists(path + suffix)]
    dangling = _dangling_ancestor(path)
    if dangling:
        found.append('%s is a symlink to %s, which is gone' % (dangling, os.readlink(dangling)))
    for directory in evidence_dirs:
        copy = _find_copy(directory, os.path.basename(path))
        if copy:
            found.append('%s holds a copy of it (%s)' % (directory, copy))
    return found


def missing_db_state(path, evidence_dirs=()):
    """(state, sentence) for a DB path that does not exist.

    missing      evidence says it existed: data loss (P0 db_missing).
    config       its directory does not exist and nothing says a DB was ever there: a path typo.
    not_created  its directory exists, nothing says a DB was ever there: a fresh install (claude-flow
                 creates memory.db on the first `memory store`).
    """
    evidence = existence_evidence(path, evidence_dirs)
    if evidence:
        return 'missing', 'database %s does not exist, and it did: %s' % (path, '; '.join(evidence))
    looked = ('no -wal/-shm, no growth samples, no backup or preserved copy in %s'
              % (' or '.join(d for d in evidence_dirs if d) or 'no backup dir given'))
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        return 'config', ('configuration problem: directory %s does not exist, so database path %s is likely a typo '
                          '(nothing says a database was ever there: %s); check path and app_dir' % (parent, path, looked))
    return 'not_created', ('database %s not created yet: nothing says it ever existed (%s); claude-flow creates it on '
                           'the first `memory store`. If it should exist, check path' % (path, looked))


def unopened_wal_db(file_info):
    """True for a WAL-mode DB that no connection has open (no -wal/-shm): read it immutable, so the read
    leaves no -wal/-shm behind. A rollback-journal writer leaves none either, and immutable would ignore
    its lock: so WAL mode only."""
    return bool(file_info.get('wal_mode') and not file_info['wal_present'] and not file_info['shm_present'])


def open_for_reading(path, busy_timeout_ms=DEFAULT_BUSY_TIMEOUT_MS):
    """A read-only Database that leaves nothing behind: immutable when it is a WAL-mode DB nobody has open
    (a plain read-only open would create -wal/-shm beside it), shared like any reader otherwise."""
    return Database(path, readonly=True, busy_timeout_ms=busy_timeout_ms, immutable=unopened_wal_db(inspect_file(path)))


def check_integrity(path, mode='quick', foreign_keys=False, max_errors=100,
                    busy_timeout_ms=DEFAULT_BUSY_TIMEOUT_MS):
    """quick_check or integrity_check without writing anything.

    Never raises for a broken database: returns ok False and the errors, so a
    caller can act on a corrupt, truncated, missing or foreign file.
    """
    pragma = 'quick_check' if mode == 'quick' else 'integrity_check'
    file_info = inspect_file(path)
    result = {'ok': False, 'mode': mode, 'errors': [], 'journal_mode': None, 'page_count': None,
              'page_size': None, 'size_bytes': file_info['size_bytes'], 'wal_present': file_info['wal_present'],
              'schema_profile': None, 'foreign_key_errors': [], 'queries': []}
    if file_info['problem'] and not file_info['header_ok']:
        result['errors'] = [file_info['problem']]
        return result
    truncated = file_info['problem']
    # With no -wal/-shm present nobody has the file open: read it as immutable so the check leaves
    # no -wal/-shm behind (a backup, a stopped service's DB). Otherwise share them like any reader.
    # Only for WAL mode: a rollback-journal writer leaves no -wal/-shm, and immutable would ignore its lock.
    unopened = unopened_wal_db(file_info)
    try:
        with Database(path, readonly=True, busy_timeout_ms=busy_timeout_ms, immutable=unopened) as db:
            result['schema_profile'] = db.profile
            # An immutable open reports 'delete'; the header says what the file really is.
            result['journal_mode'] = 'wal' if unopened else db.pragma('journal_mode')
            result['page_count'] = db.pragma('page_count')
            result['page_size'] = db.pragma('page_size')
            rows = db.query('PRAGMA %s(%d)' % (pragma, int(max_errors)))
            messages = [row[0] for row in rows]
            if messages != ['ok']:
                result['errors'] = messages
            if foreign_keys:
                fk_rows = db.query('PRAGMA foreign_key_check')
                result['foreign_key_errors'] = [
                    {'table': r[0], 'rowid': r[1], 'parent': r[2], 'fkid': r[3]} for r in fk_rows]
            result['queries'] = db.queries
    except MemoryDbError as exc:
        result['errors'].append(str(exc))
    if truncated and not result['errors']:
        result['errors'].append(truncated)
    elif truncated:
        result['errors'].insert(0, truncated)
    result['ok'] = not result['errors'] and not result['foreign_key_errors']
    return result
