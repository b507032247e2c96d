# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restoring memory.db from a backup: pick the backup, then the kill-safe restore transaction.

The pick: the newest candidate under one or more backup dirs that passes verification
(memory_db_backup.verify_backup, deep), each refused one reported with its reason.

Restore is kill-safe: the current db/-wal/-shm set is preserved (copied, fsynced, sha256
recorded) before anything is removed; a journal ``<db>.restore-journal.json`` is written
before the sidecars are removed and deleted after success; the new file goes in with a single
os.replace, so the DB path always holds either the complete old file or the complete new one.
A run that finds a journal first finishes (the swap happened) or rolls back (it did not)
the interrupted restore, then does its own work.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import hashlib
import os

from ansible_collections.claude_flow.runbook.plugins.module_utils import db_swap
from ansible_collections.claude_flow.runbook.plugins.module_utils import memory_db
from ansible_collections.claude_flow.runbook.plugins.module_utils import memory_db_backup as backups
from ansible_collections.claude_flow.runbook.plugins.module_utils import safe_files

DEFAULT_PATTERN = '**/' + backups.DEFAULT_NAME
JOURNAL_SUFFIX = '.restore-journal.json'
JOURNAL_MODES = ('wal', 'delete', 'keep')
PROFILES = ('runbook', 'reasoningbank', 'v3', 'unknown')
MAX_CANDIDATES = 1000


class RestoreError(memory_db.MemoryDbError):
    """A refusal or failure of a restore; details such as skipped_backups go into the failed result."""


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
    if journal_mode not in memory_db.HEADER_MODE_BYTES or len(chunk) < 20 or not chunk.startswith(memory_db.SQLITE_HEADER):
        return chunk
    return chunk[:18] + memory_db.HEADER_MODE_BYTES[journal_mode] + chunk[20:]


# ---------------------------------------------------------------------------------------------
# restoring a backup


def find_candidates(backup_dir, pattern=DEFAULT_PATTERN, skipped=None):
    """Backup files under one or more backup dirs matching pattern, merged newest first (manifest
    created_at, then mtime).

    A dir that is missing is skipped with its reason (an error when no dir of the list is one). A
    match that resolves outside its dir (a symlink), is not a regular file or whose name is not
    valid UTF-8 is left out, with the reason appended to skipped ({path, reason}); so is a dir in
    which nothing matches."""
    dirs = [backup_dir] if isinstance(backup_dir, str) else list(backup_dir or [])
    parts = pattern.replace('\\', '/').split('/') if pattern else []
    if not pattern or os.path.isabs(pattern) or '..' in parts:
        raise RestoreError('pattern %r must be a relative glob inside backup_dir without "..", e.g. %s'
                           % (pattern, DEFAULT_PATTERN))
    present = [folder for folder in dirs if os.path.isdir(folder)]
    if not present:
        raise RestoreError('backup_dir %s is not a directory; point it at the folder that holds the backups'
                           % ', '.join(dirs or ['(empty list)']))
    skipped = [] if skipped is None else skipped
    skipped.extend({'path': safe_files.printable(folder), 'reason': 'not a directory'}
                   for folder in dirs if folder not in present)
    found = []
    for folder in present:
        matches = _matches(folder, pattern, skipped)
        if not matches:
            skipped.append({'path': safe_files.printable(folder), 'reason': 'no file matches %s in it' % pattern})
        found.extend(matches)
    found.sort(key=lambda item: (item['created'], item['mtime'], item['path']), reverse=True)
    return [item['path'] for item in found]


def _matches(backup_dir, pattern, skipped):
    found = []
    for match in glob.glob(os.path.join(glob.escape(backup_dir), pattern), recursive=True):
        base = os.path.basename(match)
        if base.startswith('.') or base.endswith(backups.MANIFEST_SUFFIX) or os.path.isdir(match):
            continue
        problem = safe_files.utf8_problem(match)
        if problem is None and not safe_files.is_inside(match, backup_dir):
            problem = 'it resolves to %s, outside backup_dir' % safe_files.printable(os.path.realpath(match))
        if problem is None:
            problem = safe_files.regular_file_problem(os.path.realpath(match))
        if problem:
            skipped.append({'path': safe_files.printable(match), 'reason': problem})
            continue
        manifest, _problem = backups.load_manifest(match)
        created = backups.parse_time(manifest.get('created_at')) if manifest else None
        mtime = os.path.getmtime(match)
        found.append({'path': match, 'created': created if created is not None else mtime, 'mtime': mtime})
    return found


def choose_backup(src=None, backup_dir=None, pattern=DEFAULT_PATTERN, expect_profile=None, allow_unverified=False,
                  busy_timeout=memory_db.DEFAULT_BUSY_TIMEOUT_MS, exclude=None, max_candidates=None):
    """(chosen verification dict, skipped [{path, reason}]); exclude is the live DB, never a candidate.

    Only the newest max_candidates are verified; older ones are listed in skipped as not checked.
    When none passes, the RestoreError names every skipped candidate with its reason."""
    def verify(path):
        return backups.verify_backup(path, deep=True, allow_unverified=allow_unverified,
                                     expect_profile=expect_profile, busy_timeout_ms=busy_timeout)

    if src:
        verdict = verify(src)
        if not verdict['ok']:
            raise RestoreError('src %s cannot be restored: %s' % (src, verdict['reason']),
                               skipped_backups=[{'path': src, 'reason': verdict['reason']}])
        return verdict, []
    skipped = []
    candidates = [path for path in find_candidates(backup_dir, pattern, skipped)
                  if not (exclude and memory_db.same_file_set(path, exclude))]
    for index, candidate in enumerate(candidates):
        if max_candidates is not None and index >= max_candidates:
            skipped.append({'path': candidate, 'reason': 'not checked: older than the newest max_candidates=%d'
                            % max_candidates})
            continue
        verdict = verify(candidate)
        if verdict['ok']:
            return verdict, skipped
        skipped.append({'path': candidate, 'reason': verdict['reason']})
    dirs = [backup_dir] if isinstance(backup_dir, str) else list(backup_dir)
    raise RestoreError('no verified backup matches %s under %s (%d candidates skipped: %s); take one with '
                       'memory_db_backup, or salvage the current DB with memory_db_recover'
                       % (pattern, ', '.join(dirs), len(skipped), skipped_summary(skipped)), skipped_backups=skipped)


def skipped_summary(skipped):
    """'path: reason; ...' for a message; 'none found' for an empty list."""
    return '; '.join('%s: %s' % (item['path'], item['reason']) for item in skipped) or 'none found'


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
            'started_at': backups.iso(backups.utc_now()), 'pid': os.getpid()})

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
                raise RestoreError('the staged copy of %s does not match it (the backup changed while it was being '
                                   'copied); retry' % self.backup)
            conn = memory_db.connect(self.tmp, immutable=True)
            try:
                verdict = memory_db.run_check(conn, 'integrity_check')
            finally:
                conn.close()
            if verdict != 'ok':
                raise RestoreError('the staged copy of %s fails integrity_check (%s); nothing was replaced'
                                   % (self.backup, '; '.join(verdict)))
        except BaseException:
            safe_files.remove_files(memory_db.file_set(self.tmp))
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
        conn = memory_db.connect(self.path, readonly=False, busy_timeout_ms=self.busy_timeout)
        try:
            self.integrity = memory_db.run_check(conn, 'integrity_check')
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
        raise RestoreError('interrupted restore journal %s is unreadable (%s); compare the DB with the preserved '
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
            raise RestoreError('interrupted restore journal %s found, but %s matches neither the preserved copy nor '
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
                    raise RestoreError('interrupted restore: %s differs from its preserved copy %s, so something wrote '
                                       'to the DB after the interruption; compare by hand, then move %s aside'
                                       % (target, item['path'], journal_path), interrupted=report)
                continue
            report['put_back'].append(target)
    report['tmp'] = journal.get('tmp') if journal.get('tmp') and os.path.exists(journal['tmp']) else None
    if check_mode:
        return report
    if report['tmp']:
        safe_files.remove_files(memory_db.file_set(report['tmp']))
    if report.get('put_back'):
        # Under the DB's exclusive lock: no connection may open the DB between its sidecars coming back.
        try:
            with db_swap.ExclusiveLock(real, lock_timeout):
                _put_back(report, by_name)
        except db_swap.SwapError as exc:
            raise RestoreError(str(exc), interrupted=report, **exc.details)
    if report['action'] == 'completed':
        conn = memory_db.connect(real, readonly=False, busy_timeout_ms=busy_timeout)
        try:
            report['integrity'] = memory_db.run_check(conn, 'integrity_check')
        finally:
            conn.close()
    safe_files.remove_files([journal_path])
    safe_files.fsync_dir(os.path.dirname(real))
    return report


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
        raise RestoreError(str(exc))
    return real, src, preserve


def _put_back(report, by_name):
    for target in report['put_back']:
        item = by_name[os.path.basename(target)]
        staging = target + '.putback'
        safe_files.copy_file_synced(item['path'], staging)
        if safe_files.sha256_file(staging) != item['sha256']:
            safe_files.remove_files([staging])
            raise RestoreError('preserved copy %s no longer matches its recorded sha256; compare by hand'
                               % item['path'], interrupted=report)
        os.chmod(staging, 0o600)
        os.replace(staging, target)


def restore(path, src=None, backup_dir=None, pattern=DEFAULT_PATTERN, expect_profile=None, allow_unverified=False,
            force=False, preserve_dir=None, journal_mode='wal', busy_timeout=memory_db.DEFAULT_BUSY_TIMEOUT_MS,
            check_mode=False, lock_timeout=db_swap.DEFAULT_LOCK_TIMEOUT, drain_timeout=db_swap.DEFAULT_DRAIN_TIMEOUT,
            max_candidates=None, dry_run=False):
    """Restore path from src or the newest verified backup under backup_dir (see module docs).

    dry_run only picks the backup (would_restore_from, skipped_backups) and touches nothing; path is then
    only the live DB that is never a candidate."""
    if backup_dir is not None and not src and not backup_dir:
        raise RestoreError('backup_dir is an empty list: there is nothing to search; give at least one directory')
    if bool(src) == bool(backup_dir):
        raise RestoreError('set exactly one of src (a backup file) or backup_dir (a folder to search)')
    if journal_mode not in JOURNAL_MODES:
        raise RestoreError('journal_mode must be one of %s' % ', '.join(JOURNAL_MODES))
    if expect_profile is not None and expect_profile not in PROFILES:
        raise RestoreError('expect_profile must be one of %s' % ', '.join(PROFILES))
    memory_db.check_ranges(RestoreError, busy_timeout=(busy_timeout, 0, memory_db.MAX_BUSY_TIMEOUT_MS),
                           lock_timeout=(lock_timeout, 1, memory_db.MAX_WAIT_S),
                           drain_timeout=(drain_timeout, 1, memory_db.MAX_WAIT_S),
                           max_candidates=(max_candidates, 1, MAX_CANDIDATES))
    if dry_run:
        chosen, skipped = choose_backup(src, backup_dir, pattern, expect_profile, allow_unverified, busy_timeout,
                                        exclude=os.path.realpath(path), max_candidates=max_candidates)
        return {'changed': False, 'dry_run': True, 'would_restore_from': chosen['path'], 'verified': chosen['verified'],
                'skipped_backups': skipped, 'sha256': sha256_as_restored(chosen['path'], journal_mode),
                'msg': 'would restore %s from %s' % (path, chosen['path'])}
    if os.path.isdir(path):
        raise RestoreError('path %s is a directory; point it at the memory.db file' % path)
    if not os.path.isdir(os.path.dirname(os.path.realpath(path))):
        raise RestoreError('directory %s does not exist; create the application directory (e.g. .swarm) first, '
                           'or fix path' % os.path.dirname(os.path.realpath(path)))
    real, src, preserve_dir = _resolved_paths(path, src, backup_dir, preserve_dir)
    directory = os.path.dirname(real)
    if src and memory_db.same_file_set(src, real):
        raise RestoreError('src %s is the database itself; point src at a backup file' % src)
    result = {'changed': False, 'journal_mode': journal_mode}

    holders = safe_files.open_holders(real)
    if holders:
        result['holders'] = holders
    if os.path.exists(real + JOURNAL_SUFFIX):
        if holders and not force:
            raise RestoreError(_holders_message(path, holders), holders=holders)
        interrupted = finish_interrupted(real, check_mode=check_mode, busy_timeout=busy_timeout,
                                         lock_timeout=lock_timeout)
        result['would_finish_interrupted' if check_mode else 'interrupted_restore'] = interrupted
        result['changed'] = True
    if not check_mode:
        swept = safe_files.sweep_temps(directory)
        if swept:
            result['swept_temps'] = swept

    chosen, skipped = choose_backup(src, backup_dir, pattern, expect_profile, allow_unverified, busy_timeout,
                                    exclude=real, max_candidates=max_candidates)
    result.update({'skipped_backups': skipped, 'verified': chosen['verified']})
    expected = sha256_as_restored(chosen['path'], journal_mode)
    current = safe_files.sha256_file(real) if os.path.isfile(real) else None
    sidecars = _sidecar_state(real)
    if current == expected and not sidecars.get('-wal') and '-journal' not in sidecars:
        # No -wal content: the file is the whole DB, so an immutable open checks it without side files.
        conn = memory_db.connect(real, immutable=True, busy_timeout_ms=busy_timeout)
        try:
            integrity = memory_db.run_check(conn, 'integrity_check')
        finally:
            conn.close()
        result.update({'restored_from': chosen['path'], 'sha256': current, 'integrity': integrity, 'preserved': None,
                       'msg': '%s already holds the content of %s; nothing to do' % (path, chosen['path'])})
        return result
    if holders and not force:
        raise RestoreError(_holders_message(path, holders), holders=holders, skipped_backups=skipped)
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
        safe_files.remove_files(memory_db.file_set(run.tmp))
        raise RestoreError('could not preserve the current DB set of %s into %s (%s); nothing was changed'
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
        raise RestoreError('restore of %s from %s failed (%s); the interrupted restore was %s, the previous set is '
                           'preserved in %s' % (path, chosen['path'], exc, (settled or {}).get('action'),
                                                (run.preserved or {}).get('dir')),
                           interrupted_restore=settled, preserved=run.preserved)
    run.unlock()
    late = run.late_commits()
    integrity = run.verify()
    run.finish()
    drain = run.swapper.drained
    if drain.get('still_open'):
        raise RestoreError('%s was restored from %s and the old set is preserved in %s, but %s still holds the replaced '
                           'database open after drain_timeout=%ss; restart it before it writes again'
                           % (path, chosen['path'], (run.preserved or {}).get('dir'),
                              ', '.join('pid %d (%s)' % (h['pid'], h['comm'] or '?') for h in drain['still_open']),
                              drain_timeout), preserved=run.preserved, late_commits=late, drain=drain)
    if integrity != 'ok':
        # A -wal/-shm that another process made a link or special file since the swap is not followed; SQLite
        # then cannot open the file at all. Say that rather than blame the disk.
        swapped = [problem for problem in (safe_files.regular_file_problem(real + suffix) for suffix in ('-wal', '-shm')
                                           if os.path.lexists(real + suffix)) if problem]
        if swapped:
            cause = 'a sidecar was replaced while the restore ran (%s); remove it, then check again' % '; '.join(swapped)
        elif any('unable to open' in line for line in integrity):
            cause = ('the file could not be opened for the check: a -wal/-shm that was a symbolic link or special file '
                     'for a moment is not followed; look for a process replacing them, then check again')
        else:
            cause = 'check the disk (dmesg) before anything else'
        raise RestoreError('%s was restored from %s but now fails integrity_check (%s); the previous set is preserved '
                           'in %s: %s' % (path, chosen['path'], '; '.join(integrity), (run.preserved or {}).get('dir'), cause),
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
        raise RestoreError('cannot restore %s: %s; nothing was changed' % (real, cannot_write))
    need = os.path.getsize(backup) + backups.SPACE_MARGIN_BYTES
    free = safe_files.free_bytes(directory)
    if free < need:
        raise RestoreError('restoring needs %d bytes free in %s for the staged copy but %d are free; free space there '
                           'first; nothing was changed' % (need, directory, free), needed_bytes=need, free_bytes=free)
    problem = db_swap.preserve_space_problem(real, preserve_dir)
    if problem:
        raise RestoreError(problem + '; nothing was changed')
