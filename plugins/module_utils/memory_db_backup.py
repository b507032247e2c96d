# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups of memory.db: take one, describe it (manifest), verify it, prune old ones, restore one.

A backup is one self-contained SQLite file (journal_mode=DELETE, no -wal/-shm) with a
``<backup>.manifest.json`` beside it. A backup is *verified* when its manifest exists, the
manifest's sha256 equals the file's, and the manifest says the copy passed integrity_check.
Nothing here ever counts a backup without a manifest, or of a corrupt source, as verified.

Restore is kill-safe: the current db/-wal/-shm set is preserved (copied, fsynced, sha256
recorded) before anything is removed; a journal ``<db>.restore-journal.json`` is written
before the sidecars are removed and deleted after success; the new file goes in with a single
os.replace, so the DB path always holds either the complete old file or the complete new one.
A run that finds a journal first finishes (the swap happened) or rolls back (it did not)
the interrupted restore, then does its own work.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import fcntl
import glob
import hashlib
import json
import os
import re
import sqlite3

from ansible_collections.claude_flow.runbook.plugins.module_utils import db_swap
from ansible_collections.claude_flow.runbook.plugins.module_utils import memory_db
from ansible_collections.claude_flow.runbook.plugins.module_utils import safe_files

DEFAULT_NAME = 'memory.db.backup'
DEFAULT_PATTERN = '**/memory.db.backup'
MANIFEST_SUFFIX = '.manifest.json'
JOURNAL_SUFFIX = '.restore-journal.json'
MANIFEST_FORMAT = 1
# Timestamped backups live in dest/<YYYYmmddTHHMMSSZ>[-N]/<name>; -N only when two share a second.
STAMP_RE = re.compile(r'^\d{8}T\d{6}Z(-\d+)?$')
# Room for the copy beyond its pages: the temp DB's rollback journal and the manifest.
SPACE_MARGIN_BYTES = 64 * 1024
MAX_BUSY_TIMEOUT_MS = 3600 * 1000
MAX_WAIT_S = 3600
MAX_KEEP = 10000
# File format bytes 18 and 19 of the header: 1 = rollback journal, 2 = WAL (sqlite.org/fileformat).
HEADER_MODE_BYTES = {'delete': b'\x01\x01', 'wal': b'\x02\x02'}
JOURNAL_MODES = ('wal', 'delete', 'keep')
PROFILES = ('runbook', 'reasoningbank', 'v3', 'unknown')


class BackupError(memory_db.MemoryDbError):
    """A refusal or failure; ``details`` go into the module's failed result (e.g. skipped_backups)."""

    def __init__(self, message, **details):
        super(BackupError, self).__init__(message)
        self.details = details


# ---------------------------------------------------------------------------------------------
# small helpers


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment):
    """Microseconds keep two backups taken within one second in order."""
    return moment.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def parse_time(text):
    """Epoch seconds from a manifest's created_at or a backup dir's stamp; None when unparsable."""
    if not isinstance(text, str):
        return None
    text = text.split('-', 2)[0] if STAMP_RE.match(text) else text
    for fmt in ('%Y-%m-%dT%H:%M:%S.%fZ', '%Y-%m-%dT%H:%M:%SZ', '%Y%m%dT%H%M%SZ'):
        try:
            moment = datetime.datetime.strptime(text, fmt).replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            continue
        return moment.timestamp()
    return None


def check_name(name, option='name'):
    problem = safe_files.plain_filename_problem(name)
    if problem is None and (name.endswith(MANIFEST_SUFFIX) or name.endswith('.tmp')):
        problem = 'names ending in %s or .tmp are reserved' % MANIFEST_SUFFIX
    if problem:
        raise BackupError('%s %r is not a usable file name: %s. Use a plain file name such as %s.'
                          % (option, name, problem, DEFAULT_NAME))


def connect_file(path, immutable=False, readonly=True, busy_timeout_ms=memory_db.DEFAULT_BUSY_TIMEOUT_MS):
    """Open a DB by URI. immutable=1 is only for files nobody writes (backups, our own temp files):
    no locks are taken and no -wal/-shm is created beside them."""
    params = 'mode=%s' % ('ro' if readonly else 'rw')
    if immutable:
        params += '&immutable=1'
    uri = 'file:%s?%s' % (memory_db.quote(os.path.abspath(path)), params)
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout_ms / 1000.0, isolation_level=None,
                               check_same_thread=False)
        conn.execute('PRAGMA busy_timeout = %d' % int(busy_timeout_ms))
    except sqlite3.Error as exc:
        raise memory_db.MemoryDbError(memory_db.describe_sqlite_error(path, exc))
    return conn


def run_check(conn, pragma='integrity_check', limit=20):
    """'ok', or the list of problems SQLite reports (an exception counts as a problem)."""
    try:
        rows = [str(row[0]) for row in conn.execute('PRAGMA %s(%d)' % (pragma, limit)).fetchall()]
    except sqlite3.Error as exc:
        return ['%s failed: %s' % (pragma, exc)]
    return 'ok' if rows == ['ok'] else rows


def row_counts(conn):
    """{table: rows} for every table; a table that cannot be counted gets None."""
    counts = {}
    try:
        names = sorted(memory_db.tables(conn))
    except sqlite3.Error:
        return counts
    for name in names:
        try:
            counts[name] = conn.execute('SELECT count(*) FROM %s' % memory_db.quote_ident(name)).fetchone()[0]
        except sqlite3.Error:
            counts[name] = None
    return counts


def profile_of(conn):
    try:
        return memory_db.detect_profile(memory_db.tables(conn))
    except sqlite3.Error:
        return 'unknown'


def header_mode(path):
    """'wal' or 'delete' from the file header; None when the header is unreadable."""
    try:
        with open(path, 'rb') as handle:
            header = handle.read(20)
    except OSError:
        return None
    if len(header) < 20 or not header.startswith(memory_db.SQLITE_HEADER):
        return None
    return 'wal' if header[18:20] == HEADER_MODE_BYTES['wal'] else 'delete'


def sha256_as_restored(path, journal_mode):
    """sha256 the file would have once restored with journal_mode (header bytes 18-19 set)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        first = True
        while True:
            chunk = handle.read(1024 * 1024)
            if not chunk:
                break
            if first:
                chunk = _patch_header(chunk, journal_mode)
                first = False
            digest.update(chunk)
    return digest.hexdigest()


def _patch_header(chunk, journal_mode):
    if journal_mode not in HEADER_MODE_BYTES or len(chunk) < 20 or not chunk.startswith(memory_db.SQLITE_HEADER):
        return chunk
    return chunk[:18] + HEADER_MODE_BYTES[journal_mode] + chunk[20:]


def temp_sidecars(path):
    return [path + suffix for suffix in safe_files.DB_SUFFIXES]


def same_file_set(one, other):
    """True when one is the DB other or one of its sidecars (by real path)."""
    real = os.path.realpath(one)
    return any(real == os.path.realpath(member) for member in temp_sidecars(other))


# ---------------------------------------------------------------------------------------------
# manifests and verification


def manifest_path_for(backup_path):
    return backup_path + MANIFEST_SUFFIX


def load_manifest(backup_path):
    """(manifest dict, None), (None, 'no manifest ...') or (None, 'manifest unreadable ...')."""
    mpath = manifest_path_for(backup_path)
    if not os.path.lexists(mpath):
        return None, 'no manifest (%s missing)' % os.path.basename(mpath)
    try:
        data = safe_files.read_json(mpath)
    except (ValueError, OSError) as exc:
        return None, 'manifest unreadable: %s' % exc
    if not isinstance(data, dict) or not isinstance(data.get('sha256'), str):
        return None, 'manifest unreadable: %s has no sha256' % mpath
    return data, None


def verify_backup(path, deep=False, allow_unverified=False, expect_profile=None,
                  busy_timeout_ms=memory_db.DEFAULT_BUSY_TIMEOUT_MS):
    """Is path a backup that may be trusted? Returns {path, ok, reason, sha256, manifest, ...}.

    Light (deep=False): manifest present, sha256 matches, manifest integrity 'ok' (retention).
    Deep: also quick_check the file now (integrity_check when it has no manifest and
    allow_unverified is set) and compare its schema profile with expect_profile (restore).
    """
    result = {'path': path, 'ok': False, 'reason': None, 'sha256': None, 'manifest': None,
              'profile': None, 'check': None, 'verified': False}
    special = safe_files.regular_file_problem(os.path.realpath(path)) if os.path.lexists(path) else None
    if special:
        result['reason'] = special  # a FIFO or device would block or never end a read
        return result
    info = memory_db.inspect_file(path)
    if info['problem']:
        result['reason'] = info['problem']
        return result
    manifest, problem = load_manifest(path)
    result['manifest'] = manifest
    if manifest is None and not (allow_unverified and problem.startswith('no manifest')):
        result['reason'] = problem + ('; set allow_unverified: true to accept a backup without a manifest '
                                      'after an integrity_check' if problem.startswith('no manifest') else '')
        return result
    result['sha256'] = safe_files.sha256_file(path)
    if manifest is not None:
        if manifest['sha256'] != result['sha256']:
            result['reason'] = ('sha256 mismatch: manifest says %s, file is %s (the file changed or was cut '
                                'short after the backup was taken)' % (manifest['sha256'], result['sha256']))
            return result
        if manifest.get('integrity') != 'ok':
            result['reason'] = ('taken from a source that failed its integrity check (manifest integrity: %s)'
                                % (manifest.get('integrity'),))
            return result
    if deep:
        pragma = 'quick_check' if manifest is not None else 'integrity_check'
        result['check'] = pragma
        try:
            conn = connect_file(path, immutable=True, busy_timeout_ms=busy_timeout_ms)
        except memory_db.MemoryDbError as exc:
            result['reason'] = str(exc)
            return result
        try:
            verdict = run_check(conn, pragma)
            result['profile'] = profile_of(conn)
        finally:
            conn.close()
        if verdict != 'ok':
            result['reason'] = 'fails %s now: %s' % (pragma, '; '.join(verdict))
            return result
        if expect_profile and result['profile'] != expect_profile:
            result['reason'] = 'schema profile is %s, expected %s (expect_profile)' % (result['profile'],
                                                                                       expect_profile)
            return result
    result['ok'] = True
    result['verified'] = manifest is not None
    return result


# ---------------------------------------------------------------------------------------------
# taking a backup


def list_timestamped(dest, name):
    """Timestamped backups dest/<stamp>/<name>, newest first (manifest created_at, then mtime)."""
    entries = []
    if not os.path.isdir(dest):
        return entries
    for entry in os.listdir(dest):
        folder = os.path.join(dest, entry)
        backup = os.path.join(folder, name)
        if not STAMP_RE.match(entry) or not os.path.isfile(backup):
            continue
        manifest, _problem = load_manifest(backup)
        created = parse_time(manifest.get('created_at')) if manifest else None
        mtime = os.path.getmtime(backup)
        entries.append({'dir': folder, 'path': backup, 'manifest_path': manifest_path_for(backup),
                        'created': created if created is not None else (parse_time(entry) or mtime),
                        'mtime': mtime})
    entries.sort(key=lambda item: (item['created'], item['mtime'], item['dir']), reverse=True)
    return entries


def plan_retention(entries, keep, new_verified=None):
    """Entries to delete: the newest keep backups stay, and older verified ones stay until keep verified
    backups remain (so unverified copies never rotate the verified ones out).

    entries are newest first. new_verified (check mode) stands for the backup about to be
    taken: it is counted as the newest, verified when its source passed quick_check.
    """
    if keep is None:
        return []
    ranked = list(entries)
    if new_verified is not None:
        ranked.insert(0, {'path': None, 'new_verified': new_verified})
    doomed, verified_kept = [], 0
    for index, item in enumerate(ranked):
        verified = item['new_verified'] if item['path'] is None else verify_backup(item['path'])['ok']
        if index < keep or (verified and verified_kept < keep):
            verified_kept += 1 if verified else 0
        elif item['path'] is not None:
            doomed.append(item)
    return doomed


def delete_backup(entry):
    """Remove a timestamped backup and its manifest; the stamp dir too when nothing else is in it."""
    safe_files.remove_files([entry['path'], entry['manifest_path']])
    safe_files.fsync_dir(entry['dir'])
    try:
        os.rmdir(entry['dir'])
        safe_files.fsync_dir(os.path.dirname(entry['dir']))
    except OSError:
        pass  # the operator keeps other files there: leave the folder


def _stamp_dir(dest, moment, name, create):
    """dest/<stamp>, or dest/<stamp>-N when dest/<stamp> exists. With create, the folder is made here with
    an exclusive mkdir, so two runs at the same second never share one (nor report the same backup_path)."""
    base = moment.strftime('%Y%m%dT%H%M%SZ')
    for attempt in range(1, 1000):
        folder = os.path.join(dest, base if attempt == 1 else '%s-%d' % (base, attempt))
        if not create:
            if not os.path.lexists(folder):
                return folder
            continue
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            continue
        safe_files.fsync_dir(dest)
        return folder
    raise BackupError('could not find a free timestamped folder under %s; remove old backups' % dest)


def _retention_lock(dest):
    """flock on dest itself: concurrent runs apply retention one at a time, each on a fresh listing."""
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def sweep_backup_temps(dest, name):
    """Temp files of killed backup runs in dest and its stamp folders, and stamp folders they left empty."""
    removed = safe_files.sweep_temps(dest)
    if not os.path.isdir(dest):
        return removed
    for entry in os.listdir(dest):
        folder = os.path.join(dest, entry)
        if not STAMP_RE.match(entry) or os.path.islink(folder) or not os.path.isdir(folder):
            continue
        swept = safe_files.sweep_temps(folder)
        removed.extend(swept)
        if swept and not os.listdir(folder):
            try:
                os.rmdir(folder)
                removed.append(folder)
            except OSError:
                pass  # another run just made it
    return removed


def _source_connection(path, busy_timeout, check_mode):
    """Read-only source. In check mode an idle WAL DB (no -wal) is opened immutable so that not even
    the -wal/-shm a read-only open creates appear: without a -wal every page is in the main file."""
    if check_mode and header_mode(path) == 'wal' and not os.path.exists(path + '-wal'):
        return connect_file(path, immutable=True, busy_timeout_ms=busy_timeout)
    return memory_db.connect(path, readonly=True, busy_timeout_ms=busy_timeout)


def _disk_full_message(dest, need):
    return ('disk full at %s: %d bytes free, %d needed; free space there (or lower keep) or choose another dest'
            % (dest, safe_files.free_bytes(dest), need))


def take_backup(path, dest, name=DEFAULT_NAME, timestamped=False, keep=None, allow_corrupt_source=False,
                busy_timeout=memory_db.DEFAULT_BUSY_TIMEOUT_MS, check_mode=False):
    """Online backup of path into dest (see module docs). Returns the module result (without timing)."""
    check_name(name)
    if keep is not None and not timestamped:
        raise BackupError('keep applies only to timestamped backups (dest/<timestamp>/%s); set timestamped: true '
                          'or remove keep' % name)
    if keep is not None and keep < 1:
        raise BackupError('keep must be 1 or more (got %d): retention never removes every backup' % keep)
    check_ranges(keep=(keep, 1, MAX_KEEP), busy_timeout=(busy_timeout, 0, MAX_BUSY_TIMEOUT_MS))
    try:
        source = safe_files.resolve_db_path(path)
    except safe_files.UnsafePath as exc:
        raise BackupError(str(exc))
    if os.path.lexists(dest) and (os.path.islink(dest) and not os.path.isdir(dest)):
        raise BackupError('dest %s is a symbolic link to something that is not a directory; point dest at a '
                          'directory' % dest)
    dest = os.path.realpath(dest)
    info = memory_db.inspect_file(source)
    if info['problem'] and not (allow_corrupt_source and info['header_ok']):
        raise BackupError('cannot back up %s: %s' % (path, info['problem']))
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise BackupError('dest %s exists and is not a directory; point dest at a directory' % dest)
    if not os.access(source, os.R_OK):
        raise BackupError('cannot read %s as uid %d (permission denied); run the task with become: true or as '
                          'the owner of the DB' % (source, os.geteuid()))
    cannot_write = safe_files.write_problem(dest)
    if cannot_write:
        raise BackupError('cannot back up %s into %s: %s' % (path, dest, cannot_write))
    moment = utc_now()
    target_dir = _stamp_dir(dest, moment, name, create=False) if timestamped else dest
    backup_path = os.path.join(target_dir, name)
    if same_file_set(backup_path, source):
        raise BackupError('the backup %s would overwrite the database itself; choose another dest or name'
                          % backup_path)

    src = _source_connection(source, busy_timeout, check_mode)
    try:
        page_size = src.execute('PRAGMA page_size').fetchone()[0]
        page_count = src.execute('PRAGMA page_count').fetchone()[0]
        source_check = run_check(src, 'quick_check')
        source_journal = src.execute('PRAGMA journal_mode').fetchone()[0]
        need = page_size * page_count + SPACE_MARGIN_BYTES
        if source_check != 'ok' and not allow_corrupt_source:
            raise BackupError(
                '%s fails quick_check (%s); refusing to back it up so that a corrupt copy cannot rotate good '
                'backups out. Restore it (memory_db_restore) or salvage it (memory_db_recover); set '
                'allow_corrupt_source: true to keep a copy anyway (it will never count as verified)'
                % (path, '; '.join(source_check)), source_integrity=source_check)
        if safe_files.free_bytes(dest) < need:
            raise BackupError(_disk_full_message(dest, need), needed_bytes=need, free_bytes=safe_files.free_bytes(dest))
        existing = list_timestamped(dest, name) if timestamped else []

        if check_mode:
            doomed = plan_retention(existing, keep, new_verified=(source_check == 'ok'))
            return {'changed': True, 'would_backup_to': backup_path,
                    'would_write_manifest': manifest_path_for(backup_path),
                    'would_create_dest': not os.path.isdir(dest), 'would_delete': [d['path'] for d in doomed],
                    'source_integrity': source_check, 'needed_bytes': need,
                    'free_bytes': safe_files.free_bytes(dest)}

        created_dest = safe_files.makedirs_synced(dest)
        swept = sweep_backup_temps(dest, name)
        if timestamped:
            target_dir = _stamp_dir(dest, moment, name, create=True)
            backup_path = os.path.join(target_dir, name)
        try:
            manifest = _write_backup(src, source, dest, target_dir, backup_path, name, source_check, source_journal,
                                     moment, need)
        except BaseException:
            if timestamped:
                try:
                    os.rmdir(target_dir)  # the stamp folder made for this backup, when left empty
                except OSError:
                    pass
            raise
    finally:
        src.close()

    doomed = []
    if timestamped and keep is not None:
        lock_fd = _retention_lock(dest)
        try:
            doomed = plan_retention(list_timestamped(dest, name), keep)
            for entry in doomed:
                delete_backup(entry)
        finally:
            os.close(lock_fd)
    result = {'changed': True, 'backup_path': backup_path, 'manifest_path': manifest_path_for(backup_path),
              'manifest': manifest, 'verified': manifest['integrity'] == 'ok', 'deleted': [d['path'] for d in doomed],
              'created_dest': created_dest}
    if swept:
        result['swept_temps'] = swept
    return result


def _write_backup(src, source, dest, target_dir, backup_path, name, source_check, source_journal, moment, need):
    """Copy into a temp file, verify it, then os.replace it and its manifest into place."""
    tmp = os.path.join(target_dir, safe_files.temp_name(backup_path, 'backup'))
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    manifest_tmp = None
    try:
        dst = sqlite3.connect(tmp, isolation_level=None)
        try:
            # One step (pages=-1): a single read transaction, so the copy is one consistent
            # snapshot; in WAL mode the service keeps writing meanwhile.
            src.backup(dst)
        finally:
            dst.close()
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            # The copy inherits WAL from the header; DELETE makes it one self-contained file.
            conn.execute('PRAGMA journal_mode=DELETE').fetchone()
            integrity = run_check(conn, 'integrity_check')
            counts = row_counts(conn)
            profile = profile_of(conn)
        finally:
            conn.close()
        safe_files.remove_files(temp_sidecars(tmp)[1:])
        if integrity != 'ok' and source_check == 'ok':
            raise BackupError('the copy of %s failed integrity_check (%s) although the source passed quick_check; '
                              'the disk or the source may be failing: check dmesg and retry'
                              % (source, '; '.join(integrity)))
        os.chmod(tmp, 0o600)
        safe_files.fsync_file(tmp)
        manifest = {
            'format': MANIFEST_FORMAT, 'name': name, 'sha256': safe_files.sha256_file(tmp),
            'size_bytes': os.path.getsize(tmp), 'source': source, 'created_at': iso(moment),
            'schema_profile': profile, 'integrity': integrity, 'source_quick_check': source_check,
            'source_journal_mode': source_journal, 'journal_mode': 'delete', 'sqlite_version': sqlite3.sqlite_version,
            'tables': counts,
        }
        manifest_tmp = os.path.join(target_dir, safe_files.temp_name(backup_path, 'manifest'))
        fd = os.open(manifest_tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, 'wb') as handle:
            handle.write((json.dumps(manifest, indent=2, sort_keys=True) + '\n').encode('utf-8'))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(manifest_tmp, 0o600)
        # Backup first, manifest second: in between, an old manifest's sha256 cannot match the
        # new file, so a crash there leaves an unverified backup, never a wrongly verified one.
        # Under the retention lock of dest: a concurrent run never judges a backup whose manifest is not
        # in place yet (it would look unverified and old, and be rotated out).
        lock_fd = _retention_lock(dest)
        try:
            os.replace(tmp, backup_path)
            os.replace(manifest_tmp, manifest_path_for(backup_path))
            safe_files.fsync_dir(target_dir)
        finally:
            os.close(lock_fd)
    except BaseException as exc:
        safe_files.remove_files(temp_sidecars(tmp) + ([manifest_tmp] if manifest_tmp else []))
        if isinstance(exc, (OSError, sqlite3.Error)) and safe_files.is_disk_full(exc):
            raise BackupError(_disk_full_message(target_dir, need), needed_bytes=need,
                              free_bytes=safe_files.free_bytes(target_dir))
        if isinstance(exc, sqlite3.Error):
            raise BackupError(memory_db.describe_sqlite_error(source, exc))
        raise
    return manifest


# ---------------------------------------------------------------------------------------------
# restoring a backup


def find_candidates(backup_dir, pattern=DEFAULT_PATTERN, skipped=None):
    """Backup files under backup_dir matching pattern, newest first (manifest created_at, then mtime).

    A match that resolves outside backup_dir (a symlink), is not a regular file or whose name is not
    valid UTF-8 is left out, with the reason appended to skipped ({path, reason})."""
    if not os.path.isdir(backup_dir):
        raise BackupError('backup_dir %s is not a directory; point it at the folder that holds the backups'
                          % backup_dir)
    parts = pattern.replace('\\', '/').split('/')
    if not pattern or os.path.isabs(pattern) or '..' in parts:
        raise BackupError('pattern %r must be a relative glob inside backup_dir without "..", e.g. %s'
                          % (pattern, DEFAULT_PATTERN))
    skipped = [] if skipped is None else skipped
    found = []
    for match in glob.glob(os.path.join(glob.escape(backup_dir), pattern), recursive=True):
        base = os.path.basename(match)
        if base.startswith('.') or base.endswith(MANIFEST_SUFFIX) or os.path.isdir(match):
            continue
        problem = safe_files.utf8_problem(match)
        if problem is None and not safe_files.is_inside(match, backup_dir):
            problem = 'it resolves to %s, outside backup_dir' % safe_files.printable(os.path.realpath(match))
        if problem is None:
            problem = safe_files.regular_file_problem(os.path.realpath(match))
        if problem:
            skipped.append({'path': safe_files.printable(match), 'reason': problem})
            continue
        manifest, _problem = load_manifest(match)
        created = parse_time(manifest.get('created_at')) if manifest else None
        mtime = os.path.getmtime(match)
        found.append({'path': match, 'created': created if created is not None else mtime, 'mtime': mtime})
    found.sort(key=lambda item: (item['created'], item['mtime'], item['path']), reverse=True)
    return [item['path'] for item in found]


def choose_backup(src=None, backup_dir=None, pattern=DEFAULT_PATTERN, expect_profile=None, allow_unverified=False,
                  busy_timeout=memory_db.DEFAULT_BUSY_TIMEOUT_MS, exclude=None):
    """(chosen verification dict, skipped [{path, reason}]); exclude is the live DB, never a candidate."""
    if src:
        verdict = verify_backup(src, deep=True, allow_unverified=allow_unverified, expect_profile=expect_profile,
                                busy_timeout_ms=busy_timeout)
        if not verdict['ok']:
            raise BackupError('src %s cannot be restored: %s' % (src, verdict['reason']),
                              skipped_backups=[{'path': src, 'reason': verdict['reason']}])
        return verdict, []
    skipped = []
    for candidate in find_candidates(backup_dir, pattern, skipped):
        if exclude and same_file_set(candidate, exclude):
            continue
        verdict = verify_backup(candidate, deep=True, allow_unverified=allow_unverified,
                                expect_profile=expect_profile, busy_timeout_ms=busy_timeout)
        if verdict['ok']:
            return verdict, skipped
        skipped.append({'path': candidate, 'reason': verdict['reason']})
    raise BackupError('no verified backup matches %s under %s (%d candidates skipped, see skipped_backups); take one with '
                      'memory_db_backup, or salvage the current DB with memory_db_recover'
                      % (pattern, backup_dir, len(skipped)), skipped_backups=skipped)


def _holders_message(path, holders):
    listed = ', '.join('pid %d (%s)' % (h['pid'], h['comm'] or '?') for h in holders)
    return ('%s is held open by %s; stop the service first (systemctl stop claude-code-production, or the unit '
            'that runs claude-flow) and retry, or set force: true to wait for its exclusive lock anyway (lock_timeout)'
            % (path, listed))


def _sidecar_state(path):
    return {suffix: os.path.getsize(path + suffix) for suffix in safe_files.DB_SUFFIXES[1:]
            if os.path.lexists(path + suffix)}


class RestoreRun(object):
    """One restore, as steps, so an interrupted run can be reproduced step by step in tests.

    Order: stage() -> lock() -> preserve() -> write_journal() -> move_sidecars() -> swap() -> drain() ->
    unlock() -> verify() -> finish(). From lock() to unlock() SQLite's EXCLUSIVE lock on the old file is
    held (db_swap), so no commit can land between the preserve point and the swap.
    """

    def __init__(self, path, backup, journal_mode='wal', preserve_dir=None,
                 busy_timeout=memory_db.DEFAULT_BUSY_TIMEOUT_MS, lock_timeout=db_swap.DEFAULT_LOCK_TIMEOUT,
                 drain_timeout=db_swap.DEFAULT_DRAIN_TIMEOUT):
        self.path = os.path.realpath(path)
        self.directory = os.path.dirname(self.path)
        self.backup = backup
        self.journal_mode = journal_mode
        self.preserve_dir = preserve_dir or os.path.join(self.directory, 'preserved')
        self.busy_timeout = busy_timeout
        self.journal_path = self.path + JOURNAL_SUFFIX
        self.expected_sha256 = sha256_as_restored(backup, journal_mode)
        self.tmp = os.path.join(self.directory, safe_files.temp_name(self.path, 'restore'))
        self.swapper = db_swap.Swap(self.path, self.tmp, self.preserve_dir,
                                    label=os.path.basename(self.path) + '-pre-restore', lock_timeout=lock_timeout,
                                    drain_timeout=drain_timeout)
        self.preserved = None
        self.removed = []
        self.integrity = None

    def lock(self):
        return self.swapper.lock()

    def preserve(self):
        self.preserved = self.swapper.preserve()
        return self.preserved

    def write_journal(self):
        safe_files.atomic_write_json(self.journal_path, {
            'format': 1, 'path': self.path, 'backup': self.backup, 'expected_sha256': self.expected_sha256,
            'journal_mode': self.journal_mode, 'tmp': self.tmp, 'preserved': self.preserved,
            'started_at': iso(utc_now()), 'pid': os.getpid()})

    def stage(self):
        """Copy the backup next to the DB (header set to journal_mode), fsync, integrity_check it."""
        owner = safe_files.owner_and_mode(self.path)
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, 'wb') as writer, os.fdopen(safe_files.open_regular(self.backup), 'rb') as reader:
                first = True
                while True:
                    chunk = reader.read(1024 * 1024)
                    if not chunk:
                        break
                    writer.write(_patch_header(chunk, self.journal_mode) if first else chunk)
                    first = False
                writer.flush()
                os.fsync(writer.fileno())
            safe_files.apply_owner_and_mode(self.tmp, owner)
            if safe_files.sha256_file(self.tmp) != self.expected_sha256:
                raise BackupError('the staged copy of %s does not match it (the backup changed while it was being '
                                  'copied); retry' % self.backup)
            conn = connect_file(self.tmp, immutable=True)
            try:
                verdict = run_check(conn, 'integrity_check')
            finally:
                conn.close()
            if verdict != 'ok':
                raise BackupError('the staged copy of %s fails integrity_check (%s); nothing was replaced'
                                  % (self.backup, '; '.join(verdict)))
        except BaseException:
            safe_files.remove_files(temp_sidecars(self.tmp))
            raise

    def move_sidecars(self):
        # Sidecars of the old DB must never meet the new file: a -wal would be replayed into it.
        self.swapper.move_sidecars()
        self.removed = list(self.swapper.removed)

    def swap(self):
        self.swapper.replace()

    def drain(self):
        return self.swapper.drain()

    def unlock(self):
        self.swapper.abort()

    def late_commits(self):
        return self.swapper.late()

    def verify(self):
        conn = connect_file(self.path, readonly=False, busy_timeout_ms=self.busy_timeout)
        try:
            self.integrity = run_check(conn, 'integrity_check')
        finally:
            conn.close()
        return self.integrity

    def finish(self):
        safe_files.remove_files([self.journal_path])
        safe_files.fsync_dir(self.directory)


def finish_interrupted(path, check_mode=False, busy_timeout=memory_db.DEFAULT_BUSY_TIMEOUT_MS,
                       lock_timeout=db_swap.DEFAULT_LOCK_TIMEOUT):
    """Complete or roll back a restore that a journal says was interrupted. None when there is none.

    The swap happened (DB sha256 = expected): any sidecars are the new DB's own, keep them,
    check integrity, drop the journal ('completed'). It did not: put back the preserved
    -wal/-journal/-shm that were removed, verified by sha256 ('rolled_back'). Anything else
    (the DB matches neither) is left alone and reported, because guessing could lose data.
    """
    real = os.path.realpath(path)
    journal_path = real + JOURNAL_SUFFIX
    if not os.path.exists(journal_path):
        return None
    try:
        journal = safe_files.read_json(journal_path)
    except ValueError as exc:
        raise BackupError('interrupted restore journal %s is unreadable (%s); compare the DB with the preserved '
                          'set by hand, then move the journal aside' % (journal_path, exc))
    current = safe_files.sha256_file(real) if os.path.isfile(real) else None
    preserved = (journal.get('preserved') or {}).get('files', [])
    by_name = dict((item['name'], item) for item in preserved)
    report = {'journal': journal_path, 'backup': journal.get('backup'), 'preserved': journal.get('preserved')}
    if current is not None and current == journal.get('expected_sha256'):
        report['action'] = 'completed'
    else:
        old_db = by_name.get(os.path.basename(real))
        if (old_db is None and current is not None) or (old_db is not None and current != old_db['sha256']):
            raise BackupError('interrupted restore journal %s found, but %s matches neither the preserved copy nor '
                              'the backup; compare them by hand (preserved set: %s), then move the journal aside'
                              % (journal_path, real, (journal.get('preserved') or {}).get('dir')), interrupted=report)
        report['action'] = 'rolled_back'
        report['put_back'] = []
        for suffix in safe_files.DB_SUFFIXES[1:]:
            item = by_name.get(os.path.basename(real) + suffix)
            if item is None:
                continue
            target = real + suffix
            if os.path.lexists(target):
                if suffix != '-shm' and safe_files.sha256_file(target) != item['sha256']:
                    raise BackupError('interrupted restore: %s differs from its preserved copy %s, so something wrote '
                                      'to the DB after the interruption; compare by hand, then move %s aside'
                                      % (target, item['path'], journal_path), interrupted=report)
                continue
            report['put_back'].append(target)
    report['tmp'] = journal.get('tmp') if journal.get('tmp') and os.path.exists(journal['tmp']) else None
    if check_mode:
        return report
    if report['tmp']:
        safe_files.remove_files(temp_sidecars(report['tmp']))
    if report.get('put_back'):
        # Under the DB's exclusive lock: no connection may open the DB between its sidecars coming back.
        try:
            with db_swap.ExclusiveLock(real, lock_timeout):
                _put_back(report, by_name)
        except db_swap.SwapError as exc:
            raise BackupError(str(exc), interrupted=report, **exc.details)
    if report['action'] == 'completed':
        conn = connect_file(real, readonly=False, busy_timeout_ms=busy_timeout)
        try:
            report['integrity'] = run_check(conn, 'integrity_check')
        finally:
            conn.close()
    safe_files.remove_files([journal_path])
    safe_files.fsync_dir(os.path.dirname(real))
    return report


def check_ranges(**options):
    """BackupError naming the first integer option outside its valid range. options: name=(value, low, high)."""
    for name in sorted(options):
        value, low, high = options[name]
        problem = safe_files.check_range(name, value, low, high)
        if problem:
            raise BackupError(problem)


def _resolved_paths(path, src, backup_dir, preserve_dir):
    """Real DB path, src and preserve dir; each must be where it belongs (see safe_files.resolve_*)."""
    try:
        real = safe_files.resolve_db_path(path)
        directory = os.path.dirname(real)
        if preserve_dir:
            preserve = os.path.realpath(preserve_dir)
        else:
            preserve = safe_files.resolve_inside(os.path.join(directory, 'preserved'), directory, 'preserve dir',
                                                 'remove the link, or set preserve_dir to a directory of your own')
        if os.path.lexists(preserve) and not os.path.isdir(preserve):
            raise safe_files.UnsafePath('preserve_dir %s is not a directory; point it at a directory' % preserve)
        if src:
            src_real = os.path.realpath(src)
            problem = safe_files.regular_file_problem(src_real) if os.path.lexists(src_real) else None
            if problem:
                raise safe_files.UnsafePath('src %s: %s; point src at a backup file' % (src, problem))
            src = src_real
    except safe_files.UnsafePath as exc:
        raise BackupError(str(exc))
    return real, src, preserve


def _put_back(report, by_name):
    for target in report['put_back']:
        item = by_name[os.path.basename(target)]
        staging = target + '.putback'
        safe_files.copy_file_synced(item['path'], staging)
        if safe_files.sha256_file(staging) != item['sha256']:
            safe_files.remove_files([staging])
            raise BackupError('preserved copy %s no longer matches its recorded sha256; compare by hand'
                              % item['path'], interrupted=report)
        os.chmod(staging, 0o600)
        os.replace(staging, target)


def restore(path, src=None, backup_dir=None, pattern=DEFAULT_PATTERN, expect_profile=None, allow_unverified=False,
            force=False, preserve_dir=None, journal_mode='wal', busy_timeout=memory_db.DEFAULT_BUSY_TIMEOUT_MS,
            check_mode=False, lock_timeout=db_swap.DEFAULT_LOCK_TIMEOUT, drain_timeout=db_swap.DEFAULT_DRAIN_TIMEOUT):
    """Restore path from src or the newest verified backup under backup_dir (see module docs)."""
    if bool(src) == bool(backup_dir):
        raise BackupError('set exactly one of src (a backup file) or backup_dir (a folder to search)')
    if journal_mode not in JOURNAL_MODES:
        raise BackupError('journal_mode must be one of %s' % ', '.join(JOURNAL_MODES))
    if expect_profile is not None and expect_profile not in PROFILES:
        raise BackupError('expect_profile must be one of %s' % ', '.join(PROFILES))
    check_ranges(busy_timeout=(busy_timeout, 0, MAX_BUSY_TIMEOUT_MS), lock_timeout=(lock_timeout, 1, MAX_WAIT_S),
                 drain_timeout=(drain_timeout, 1, MAX_WAIT_S))
    if os.path.isdir(path):
        raise BackupError('path %s is a directory; point it at the memory.db file' % path)
    if not os.path.isdir(os.path.dirname(os.path.realpath(path))):
        raise BackupError('directory %s does not exist; create the application directory (e.g. .swarm) first, '
                          'or fix path' % os.path.dirname(os.path.realpath(path)))
    real, src, preserve_dir = _resolved_paths(path, src, backup_dir, preserve_dir)
    directory = os.path.dirname(real)
    if src and same_file_set(src, real):
        raise BackupError('src %s is the database itself; point src at a backup file' % src)
    result = {'changed': False, 'journal_mode': journal_mode}

    holders = safe_files.open_holders(real)
    if holders:
        result['holders'] = holders
    if os.path.exists(real + JOURNAL_SUFFIX):
        if holders and not force:
            raise BackupError(_holders_message(path, holders), holders=holders)
        interrupted = finish_interrupted(real, check_mode=check_mode, busy_timeout=busy_timeout,
                                         lock_timeout=lock_timeout)
        result['would_finish_interrupted' if check_mode else 'interrupted_restore'] = interrupted
        result['changed'] = True
    if not check_mode:
        swept = safe_files.sweep_temps(directory)
        if swept:
            result['swept_temps'] = swept

    chosen, skipped = choose_backup(src, backup_dir, pattern, expect_profile, allow_unverified, busy_timeout,
                                    exclude=real)
    result.update({'skipped_backups': skipped, 'verified': chosen['verified']})
    expected = sha256_as_restored(chosen['path'], journal_mode)
    current = safe_files.sha256_file(real) if os.path.isfile(real) else None
    sidecars = _sidecar_state(real)
    if current == expected and not sidecars.get('-wal') and '-journal' not in sidecars:
        # No -wal content: the file is the whole DB, so an immutable open checks it without side files.
        conn = connect_file(real, immutable=True, busy_timeout_ms=busy_timeout)
        try:
            integrity = run_check(conn, 'integrity_check')
        finally:
            conn.close()
        result.update({'restored_from': chosen['path'], 'sha256': current, 'integrity': integrity, 'preserved': None,
                       'msg': '%s already holds the content of %s; nothing to do' % (path, chosen['path'])})
        return result
    if holders and not force:
        raise BackupError(_holders_message(path, holders), holders=holders, skipped_backups=skipped)
    _check_restore_space(real, chosen['path'], preserve_dir)

    if check_mode:
        result.update({
            'changed': True,
            'would_restore_from': chosen['path'],
            'would_preserve': [{'name': os.path.basename(m), 'sha256': safe_files.sha256_file(m),
                                'size': os.path.getsize(m)} for m in safe_files.db_set(real)],
            'would_preserve_to': preserve_dir,
            'would_remove': [real + s for s in sidecars],
            'sha256': expected})
        return result

    run = RestoreRun(real, chosen['path'], journal_mode=journal_mode, preserve_dir=preserve_dir,
                     busy_timeout=busy_timeout, lock_timeout=lock_timeout, drain_timeout=drain_timeout)
    run.stage()  # removes its temp file when it fails: nothing was touched yet
    try:
        run.lock()
        run.preserve()
    except (OSError, db_swap.SwapError, safe_files.UnsafePath) as exc:
        run.unlock()
        safe_files.remove_files(temp_sidecars(run.tmp))
        raise BackupError('could not preserve the current DB set of %s into %s (%s); nothing was changed'
                          % (path, preserve_dir, exc), **getattr(exc, 'details', {}))
    try:
        run.write_journal()
        run.move_sidecars()
        run.swap()
        run.drain()
    except Exception as exc:
        # Settle the state the journal describes now (under the lock still held) rather than leave it.
        run.unlock()
        try:
            settled = finish_interrupted(real, busy_timeout=busy_timeout, lock_timeout=lock_timeout)
        except memory_db.MemoryDbError as undo_exc:
            settled = {'action': 'none', 'error': str(undo_exc)}
        raise BackupError('restore of %s from %s failed (%s); the interrupted restore was %s, the previous set is '
                          'preserved in %s' % (path, chosen['path'], exc, (settled or {}).get('action'),
                                               (run.preserved or {}).get('dir')),
                          interrupted_restore=settled, preserved=run.preserved)
    run.unlock()
    late = run.late_commits()
    integrity = run.verify()
    run.finish()
    drain = run.swapper.drained
    if drain.get('still_open'):
        raise BackupError('%s was restored from %s and the old set is preserved in %s, but %s still holds the replaced '
                          'database open after drain_timeout=%ss; restart it before it writes again'
                          % (path, chosen['path'], (run.preserved or {}).get('dir'),
                             ', '.join('pid %d (%s)' % (h['pid'], h['comm'] or '?') for h in drain['still_open']),
                             drain_timeout), preserved=run.preserved, late_commits=late, drain=drain)
    if integrity != 'ok':
        raise BackupError('%s was restored from %s but now fails integrity_check (%s); the previous set is preserved '
                          'in %s: check the disk (dmesg) before anything else'
                          % (path, chosen['path'], '; '.join(integrity), (run.preserved or {}).get('dir')),
                          preserved=run.preserved, restored_from=chosen['path'])
    result.update({'changed': True, 'restored_from': chosen['path'], 'preserved': run.preserved,
                   'removed': run.removed, 'integrity': integrity, 'sha256': safe_files.sha256_file(real),
                   'late_commits': late, 'lock_waited_ms': run.swapper.lock_.waited_ms if run.swapper.lock_ else 0,
                   'drain': drain})
    return result


def _check_restore_space(real, backup, preserve_dir):
    """The staged copy needs a writable dir and the backup's size beside the DB; the preserve step needs
    room only when it has to copy (preserve_dir on another filesystem)."""
    directory = os.path.dirname(real)
    # ahead of staging, so check mode names it too: a read-only filesystem is known before acting
    cannot_write = safe_files.write_problem(directory)
    if cannot_write:
        raise BackupError('cannot restore %s: %s; nothing was changed' % (real, cannot_write))
    need = os.path.getsize(backup) + SPACE_MARGIN_BYTES
    free = safe_files.free_bytes(directory)
    if free < need:
        raise BackupError('restoring needs %d bytes free in %s for the staged copy but %d are free; free space there '
                          'first; nothing was changed' % (need, directory, free), needed_bytes=need, free_bytes=free)
    problem = db_swap.preserve_space_problem(real, preserve_dir)
    if problem:
        raise BackupError(problem + '; nothing was changed')
