# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replacing a live SQLite file without losing a committed write.

Every module that puts a new file where a DB is (restore, recover with force, an interrupted restore
settled) goes through swap_in():

1. Take SQLite's own EXCLUSIVE lock on the old DB file (the fcntl byte-range locks every SQLite
   connection uses: PENDING, RESERVED and the SHARED range), as an open-file-description lock. In WAL
   mode every open connection holds SHARED on the DB file, so the lock is granted only once no
   connection is open; from then on, no process can read or write it (their busy handlers wait).
2. Preserve the set as it is at that moment (the decision point): the DB file is hard-linked into a new
   folder under the preserve dir, its -wal/-shm/-journal are moved (renamed) there, each with sha256 in a
   MANIFEST.json; on another filesystem they are copied instead (after a free-space check).
3. os.replace() the new file over the path: the path never goes missing, so a new opener gets the old
   inode (and waits on the lock) or the new one.
4. Wait until no process holds the old inode (a writer that opened it before step 3 waits on the lock
   and gives up with SQLITE_BUSY when its own busy timeout ends; it never committed). SQLite finds
   -wal/-shm/-journal by path name, so a connection to the old inode that ran after the swap would use
   the NEW file's sidecars: that is why the lock is held until the old inode is drained, rather than
   released for late writers to write into the preserved set.
5. Release the lock, then compare the preserved files with their decision-time sha256: late_commits
   counts commits that reached the preserved set after the decision (0 unless the drain timed out).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import os
import shutil
import struct
import time

from ansible_collections.claude_flow.runbook.plugins.module_utils import safe_files

# sqlite3 os_unix.c: the lock bytes live at 1 GiB, whatever the file's size.
PENDING_BYTE = 0x40000000
LOCK_SPAN = 512  # PENDING, RESERVED and the 510-byte SHARED range
DEFAULT_LOCK_TIMEOUT = 30
DEFAULT_DRAIN_TIMEOUT = 30
POLL_SECONDS = 0.01
WAL_HEADER = 32
WAL_FRAME_HEADER = 24
# Room beyond the bytes themselves for a copy: directory entries, the manifest.
SPACE_MARGIN_BYTES = 64 * 1024


class SwapError(Exception):
    """The swap could not be done safely; ``details`` go into the module's failed result."""

    def __init__(self, message, **details):
        super(SwapError, self).__init__(message)
        self.details = details


_SETLK = getattr(fcntl, 'F_OFD_SETLK', fcntl.F_SETLK)


def _lock(fd, kind, start, length):
    """One non-blocking byte-range lock; True when granted. OFD locks (Linux) conflict with SQLite's POSIX
    locks and, unlike them, survive this process closing another fd of the same file."""
    data = struct.pack('hhqqi4x', kind, os.SEEK_SET, start, length, 0)
    try:
        fcntl.fcntl(fd, _SETLK, data)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


class ExclusiveLock(object):
    """SQLite's EXCLUSIVE lock on one DB file, held from acquire() to release() (or the with block)."""

    def __init__(self, path, timeout=DEFAULT_LOCK_TIMEOUT, dir_fd=None):
        self.path = path
        self.timeout = timeout
        self.dir_fd = dir_fd
        self.fd = None
        self.identity = None
        self.waited_ms = 0

    def acquire(self):
        started = time.monotonic()
        fd = safe_files.open_regular(self.path if self.dir_fd is None else os.path.basename(self.path),
                                     os.O_RDWR, dir_fd=self.dir_fd)
        try:
            deadline = started + self.timeout
            # PENDING first, as SQLite does: new readers are turned away while existing ones finish.
            while not _lock(fd, fcntl.F_WRLCK, PENDING_BYTE, 1):
                self._wait_or_fail(deadline)
            while not _lock(fd, fcntl.F_WRLCK, PENDING_BYTE + 1, LOCK_SPAN - 1):
                self._wait_or_fail(deadline)
        except BaseException:
            os.close(fd)  # closing the fd drops every lock taken through it
            raise
        info = os.fstat(fd)
        self.fd, self.identity = fd, (info.st_dev, info.st_ino)
        self.waited_ms = int((time.monotonic() - started) * 1000)
        return self

    def _wait_or_fail(self, deadline):
        if time.monotonic() >= deadline:
            holders = safe_files.open_holders(self.path)
            listed = ', '.join('pid %d (%s)' % (h['pid'], h['comm'] or '?') for h in holders) or 'no process found'
            raise SwapError('could not take the exclusive lock on %s within lock_timeout=%ss: a connection keeps it '
                            'open or busy (%s); stop the service (and whatever runs claude-flow) and retry, or raise '
                            'lock_timeout; nothing was changed' % (self.path, self.timeout, listed), holders=holders)
        time.sleep(POLL_SECONDS)

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


def wal_commits(path, start=0):
    """Commit frames of a WAL file from byte offset start on (frames whose salts match the header)."""
    try:
        fd = safe_files.open_regular(path)
    except (OSError, safe_files.UnsafePath):
        return 0
    with os.fdopen(fd, 'rb') as handle:
        header = handle.read(WAL_HEADER)
        if len(header) < WAL_HEADER:
            return 0
        page_size = struct.unpack('>I', header[8:12])[0]
        salts = header[16:24]
        frame = WAL_FRAME_HEADER + page_size
        offset = max(WAL_HEADER, start)
        offset += (frame - (offset - WAL_HEADER) % frame) % frame
        count = 0
        while True:
            handle.seek(offset)
            head = handle.read(WAL_FRAME_HEADER)
            if len(head) < WAL_FRAME_HEADER or head[8:16] != salts:
                return count
            if struct.unpack('>I', head[4:8])[0]:
                count += 1
            offset += frame


def _measure(real):
    """The set at the decision point: {suffix: {name, sha256, size, identity}}."""
    state = {}
    for member in safe_files.db_set(real):
        suffix = member[len(real):]
        state[suffix] = {'name': os.path.basename(member), 'sha256': safe_files.sha256_file(member),
                         'size': os.lstat(member).st_size, 'identity': safe_files.file_identity(member)}
    return state


def preserve_space_problem(real, preserve_root, copy=False):
    """None when the preserve step can be done, else why not: a rename on the same filesystem needs no
    room, a copy (onto another filesystem, or asked for) needs the set's size there."""
    probe = safe_files.nearest_existing(preserve_root)
    if not copy and os.stat(probe).st_dev == os.stat(os.path.dirname(real)).st_dev:
        return None
    need = sum(os.lstat(member).st_size for member in safe_files.db_set(real)) + SPACE_MARGIN_BYTES
    free = safe_files.free_bytes(probe)
    if free < need:
        return ('preserving the current set of %s needs %d bytes free at %s (%s) but %d are free; free space there '
                'or set preserve_dir elsewhere' % (real, need, probe, 'a copy' if copy else
                                                   'another filesystem, so it is copied', free))
    return None


def preserve_copy(real, preserve_root, label, lock_timeout=DEFAULT_LOCK_TIMEOUT):
    """Copy the DB set (it stays in place) into a new folder under preserve_root with sha256 and a
    MANIFEST.json, under the DB's exclusive lock so no commit lands halfway through the copy."""
    problem = preserve_space_problem(real, preserve_root, copy=True)
    if problem:
        raise SwapError(problem + '; nothing was changed')
    swap = Swap(real, None, preserve_root, label, lock_timeout=lock_timeout, copy=True)
    try:
        swap.lock()
        return swap.preserve()
    finally:
        swap.abort()


def _new_folder(preserve_root, label):
    """A new folder under preserve_root (which must be a real directory, not a link), opened as a dir fd."""
    safe_files.makedirs_synced(preserve_root)
    root_fd = os.open(preserve_root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
        for attempt in range(100):
            name = '%s-%s-%d%s' % (label, stamp, os.getpid(), '' if not attempt else '-%d' % attempt)
            try:
                os.mkdir(name, 0o700, dir_fd=root_fd)
                break
            except FileExistsError:
                continue
        os.fsync(root_fd)
        folder_fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=root_fd)
    finally:
        os.close(root_fd)
    return os.path.join(preserve_root, name), folder_fd


def _copy_into(member, folder_fd, name):
    with os.fdopen(safe_files.open_regular(member), 'rb') as reader:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=folder_fd)
        with os.fdopen(fd, 'wb') as writer:
            shutil.copyfileobj(reader, writer, 1024 * 1024)
            writer.flush()
            os.fsync(writer.fileno())


class Swap(object):
    """One swap of staged over real, in steps (tests drive them one by one to reproduce a kill):
    lock() -> preserve() -> [caller's journal] -> move_sidecars() -> replace() -> drain() -> unlock() -> late()."""

    def __init__(self, real, staged, preserve_root, label, lock_timeout=DEFAULT_LOCK_TIMEOUT,
                 drain_timeout=DEFAULT_DRAIN_TIMEOUT, copy=False):
        self.real = real
        self.directory = os.path.dirname(real)
        self.staged = staged
        self.preserve_root = preserve_root
        self.label = label
        self.lock_timeout = lock_timeout
        self.drain_timeout = drain_timeout
        self.lock_ = None
        self.decision = {}
        self.preserved = None
        self.folder_fd = None
        self.copied = copy
        self.removed = []
        self.drained = {'waited_ms': 0, 'holders_waited_out': []}

    def lock(self):
        if os.path.lexists(self.real):
            self.lock_ = ExclusiveLock(self.real, self.lock_timeout).acquire()
        return self.lock_

    def preserve(self):
        """Hard-link (or copy) the DB into the preserve folder and record the set's sha256 (MANIFEST.json)."""
        self.decision = _measure(self.real)
        if not self.decision:
            return None
        folder, self.folder_fd = _new_folder(self.preserve_root, self.label)
        self.copied = self.copied or os.fstat(self.folder_fd).st_dev != os.stat(self.directory).st_dev
        files = []
        try:
            for suffix, item in sorted(self.decision.items()):
                member = self.real + suffix
                if suffix == '' and not self.copied:
                    os.link(member, item['name'], dst_dir_fd=self.folder_fd, follow_symlinks=False)
                elif self.copied:
                    _copy_into(member, self.folder_fd, item['name'])
                    if safe_files.sha256_file(item['name'], dir_fd=self.folder_fd) != item['sha256']:
                        raise SwapError('the copy of %s does not match it; nothing was changed' % member)
                files.append({'name': item['name'], 'source': member, 'path': os.path.join(folder, item['name']),
                              'sha256': item['sha256'], 'size': item['size']})
            manifest = {'source': self.real, 'created_at': time.strftime('%Y%m%dT%H%M%SZ', time.gmtime()),
                        'files': files, 'method': 'copy' if self.copied else 'move'}
            safe_files.atomic_write_json(os.path.join(folder, 'MANIFEST.json'), manifest)
            os.fsync(self.folder_fd)
        except BaseException:
            self.close_folder()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self.preserved = {'dir': folder, 'files': files, 'method': manifest['method']}
        return self.preserved

    def move_sidecars(self):
        """-wal/-shm/-journal leave the path (renamed into the preserve folder, or removed once copied)."""
        for suffix in safe_files.DB_SUFFIXES[1:]:
            if suffix not in self.decision:
                continue
            member = self.real + suffix
            if self.copied:
                os.unlink(member)
            else:
                os.rename(member, self.decision[suffix]['name'], dst_dir_fd=self.folder_fd)
            self.removed.append(member)
        if self.folder_fd is not None:
            os.fsync(self.folder_fd)
        safe_files.fsync_dir(self.directory)

    def replace(self):
        if self.lock_ is None:
            # Nothing was there: create it only if it is still absent (link fails if a writer made one).
            try:
                os.link(self.staged, self.real)
            except FileExistsError:
                raise SwapError('%s appeared while this run was working (a writer created it); nothing was replaced, '
                                'run it again' % self.real)
            os.unlink(self.staged)
        else:
            os.replace(self.staged, self.real)
        safe_files.fsync_dir(self.directory)

    def drain(self):
        """Wait until no other process has the replaced inode (or its moved sidecars) open."""
        identities = [item['identity'] for item in self.decision.values()]
        started = time.monotonic()
        seen = {}
        while True:
            holders = safe_files.inode_holders(identities)
            for holder in holders:
                seen[holder['pid']] = holder
            if not holders:
                break
            if time.monotonic() - started >= self.drain_timeout:
                self.drained['still_open'] = holders
                break
            time.sleep(POLL_SECONDS * 5)
        self.drained['waited_ms'] = int((time.monotonic() - started) * 1000)
        self.drained['holders_waited_out'] = [seen[pid] for pid in sorted(seen)
                                              if pid not in [h['pid'] for h in self.drained.get('still_open', [])]]
        return self.drained

    def unlock(self):
        if self.lock_ is not None:
            self.lock_.release()

    def close_folder(self):
        if self.folder_fd is not None:
            os.close(self.folder_fd)
            self.folder_fd = None

    def late(self):
        """Commits that reached the preserved set after the decision point."""
        self.close_folder()
        if not self.preserved:
            return {'count': 0, 'preserved_in': None, 'changed_files': []}
        changed, count = [], 0
        for item in self.preserved['files']:
            now = safe_files.sha256_file(item['path']) if os.path.isfile(item['path']) else None
            if now == item['sha256']:
                continue
            changed.append(item['name'])
            if item['name'].endswith('-wal'):
                count += wal_commits(item['path'], item['size'])
            elif not item['name'].endswith('-shm'):
                count += 1  # a rollback-mode commit rewrites the file itself: at least one
        return {'count': count, 'preserved_in': self.preserved['dir'] if count else None, 'changed_files': changed}

    def abort(self):
        self.unlock()
        self.close_folder()

    def run(self, before_move=None):
        """All steps; before_move(preserved) runs after the preserve and before anything leaves the path."""
        try:
            self.lock()
            self.preserve()
            if before_move:
                before_move(self.preserved)
            self.move_sidecars()
            self.replace()
            self.drain()
        finally:
            self.abort()
        result = {'preserved': self.preserved, 'removed': self.removed, 'late_commits': self.late(),
                  'lock_waited_ms': self.lock_.waited_ms if self.lock_ else 0, 'drain': self.drained}
        if self.drained.get('still_open'):
            listed = ', '.join('pid %d (%s)' % (h['pid'], h['comm'] or '?') for h in self.drained['still_open'])
            where = (self.preserved or {}).get('dir')
            raise SwapError('the new file is in place and the old set is preserved in %s, but %s still holds the '
                            'replaced database open after drain_timeout=%ss; restart it before it writes again (its '
                            'next write would meet the new file\'s -wal)' % (where, listed, self.drain_timeout),
                            swap=result)
        return result
