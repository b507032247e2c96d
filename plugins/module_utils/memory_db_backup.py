# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups of memory.db: take one, describe it (manifest), verify it, prune old ones (retention).

A backup is one self-contained SQLite file (journal_mode=DELETE, no -wal/-shm) with a
``<backup>.manifest.json`` beside it. A backup is *verified* when its manifest exists, the
manifest's sha256 equals the file's, and the manifest says the copy passed integrity_check.
Nothing here ever counts a backup without a manifest, or of a corrupt source, as verified.
Restoring one is memory_db_restore's (module_utils/memory_db_restore.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import fcntl
import json
import os
import re
import sqlite3

from ansible_collections.claude_flow.runbook.plugins.module_utils import memory_db
from ansible_collections.claude_flow.runbook.plugins.module_utils import safe_files

DEFAULT_NAME = 'memory.db.backup'
MANIFEST_SUFFIX = '.manifest.json'
MANIFEST_FORMAT = 1
# Timestamped backups live in dest/<YYYYmmddTHHMMSSZ>[-N]/<name>; -N only when two share a second.
STAMP_RE = re.compile(r'^\d{8}T\d{6}Z(-\d+)?$')
# Room for the copy beyond its pages: the temp DB's rollback journal and the manifest.
SPACE_MARGIN_BYTES = 64 * 1024
MAX_KEEP = 10000


class BackupError(memory_db.MemoryDbError):
    """A refusal or failure of a backup or of its retention."""


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
            conn = memory_db.connect(path, immutable=True, busy_timeout_ms=busy_timeout_ms)
        except memory_db.MemoryDbError as exc:
            result['reason'] = str(exc)
            return result
        try:
            verdict = memory_db.run_check(conn, pragma)
            result['profile'] = memory_db.profile_of(conn)
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
    """dest/<stamp> when dest has no folder of that second yet, else dest/<stamp>-<microseconds now>. With
    create, the folder is made here with an exclusive mkdir, so two runs at the same second never share one.
    Not "the first free name": retention may just have removed dest/<stamp>, and handing that name out
    again would give two runs the same backup_path."""
    base = moment.strftime('%Y%m%dT%H%M%SZ')
    for _attempt in range(1000):
        if _same_second(dest, base):
            folder = os.path.join(dest, '%s-%06d' % (base, datetime.datetime.now().microsecond))
        else:
            folder = os.path.join(dest, base)
        if not create:
            return folder
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            continue  # another run took that name this very moment: look again
        safe_files.fsync_dir(dest)
        return folder
    raise BackupError('could not find a free timestamped folder under %s; remove old backups' % dest)


def _same_second(dest, base):
    """Whether dest holds a folder named for this second (<base> or <base>-N)."""
    if not os.path.isdir(dest):
        return False
    return any(entry == base or entry.startswith(base + '-') for entry in os.listdir(dest))


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
    if check_mode and memory_db.header_mode(path) == 'wal' and not os.path.exists(path + '-wal'):
        return memory_db.connect(path, immutable=True, busy_timeout_ms=busy_timeout)
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
    memory_db.check_ranges(BackupError, keep=(keep, 1, MAX_KEEP),
                           busy_timeout=(busy_timeout, 0, memory_db.MAX_BUSY_TIMEOUT_MS))
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
    if memory_db.same_file_set(backup_path, source):
        raise BackupError('the backup %s would overwrite the database itself; choose another dest or name'
                          % backup_path)

    src = _source_connection(source, busy_timeout, check_mode)
    try:
        page_size = src.execute('PRAGMA page_size').fetchone()[0]
        page_count = src.execute('PRAGMA page_count').fetchone()[0]
        source_check = memory_db.run_check(src, 'quick_check')
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
        # The copy inherits WAL from the header; DELETE makes it one self-contained file.
        integrity, counts, profile = memory_db.settle_copy(tmp)
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
        safe_files.remove_files(memory_db.file_set(tmp) + ([manifest_tmp] if manifest_tmp else []))
        if isinstance(exc, (OSError, sqlite3.Error)) and safe_files.is_disk_full(exc):
            raise BackupError(_disk_full_message(target_dir, need), needed_bytes=need,
                              free_bytes=safe_files.free_bytes(target_dir))
        if isinstance(exc, sqlite3.Error):
            raise BackupError(memory_db.describe_sqlite_error(source, exc))
        raise
    return manifest
