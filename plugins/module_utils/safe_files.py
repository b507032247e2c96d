# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Crash-safe file operations shared by every module that writes.

Rules (SQLite's "How To Corrupt An SQLite Database File"):
write to a temp file in the same directory, fsync it, os.replace() it over
the target, fsync the directory; never place a DB over another while its
-wal/-shm remain; preserve whatever is replaced, with its sha256, first.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time

from ansible_collections.claude_flow.runbook.plugins.module_utils import safe_read

DB_SUFFIXES = ('', '-wal', '-shm', '-journal')
# Reads of small files (manifests, journals, state, /proc) never take more than this.
SMALL_FILE_CAP = 4 * 1024 * 1024
# Our temp files: .<target name>.<kind>-<pid>-<hex>.tmp (plus SQLite sidecars of a temp DB).
TEMP_NAME_RE = re.compile(r'^\.(?P<base>.+)\.(?P<kind>[a-z]+)-(?P<pid>\d+)-[0-9a-f]+\.tmp(-journal|-wal|-shm)?$')
# Temp files of older releases (mkstemp: no pid in the name): removed once older than the grace period.
LEGACY_TEMP_RE = re.compile(r'^\..+\.[A-Za-z0-9_]{8}(\.manifest)?\.tmp(-journal|-wal|-shm)?$')
TEMP_GRACE_SECONDS = 3600


class UnsafePath(ValueError):
    """A path that resolves somewhere it must not, or is not a regular file; the message says the fix."""


_KINDS = ((stat.S_ISFIFO, 'a FIFO (named pipe)'), (stat.S_ISCHR, 'a character device'),
          (stat.S_ISBLK, 'a block device'), (stat.S_ISSOCK, 'a socket'), (stat.S_ISDIR, 'a directory'),
          (stat.S_ISLNK, 'a symbolic link'))


def kind_problem(mode):
    """None for a regular file mode, else what the file is instead."""
    if stat.S_ISREG(mode):
        return None
    for test, name in _KINDS:
        if test(mode):
            return name
    return 'not a regular file'


def regular_file_problem(path):
    """None when path is a regular file (not followed if it is a link), else a sentence; never blocks."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        return '%s cannot be examined (%s)' % (path, exc.strerror)
    kind = kind_problem(mode)
    return None if kind is None else '%s is %s, not a regular file' % (path, kind)


def open_regular(path, flags=os.O_RDONLY, dir_fd=None):
    """os.open that never follows a final symlink, never blocks on a FIFO or device and returns an fd
    only for a regular file (checked with fstat on the opened fd, so a swap after a check is caught)."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        kind = kind_problem(os.fstat(fd).st_mode)
        if kind is not None:
            raise UnsafePath('%s is %s, not a regular file; refusing to use it' % (path, kind))
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_capped(path, limit=SMALL_FILE_CAP, dir_fd=None):
    """The bytes of a small regular file; UnsafePath when it is larger than limit."""
    fd = open_regular(path, dir_fd=dir_fd)
    with os.fdopen(fd, 'rb') as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UnsafePath('%s is larger than %d bytes; it is not a file this collection wrote' % (path, limit))
    return data


def sha256_file(path, bufsize=1024 * 1024, dir_fd=None):
    digest = hashlib.sha256()
    with os.fdopen(open_regular(path, dir_fd=dir_fd), 'rb') as handle:
        while True:
            chunk = handle.read(bufsize)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


def is_inside(path, root):
    """True when the real path of path is root's real path or below it."""
    real, base = os.path.realpath(path), os.path.realpath(root)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def resolve_inside(path, root, what, fix):
    """The real path of path, which must lie inside root (resolved too); else UnsafePath naming both."""
    real = os.path.realpath(path)
    if not is_inside(real, root):
        raise UnsafePath('%s %s resolves to %s, outside %s (a symbolic link or ".." leads out of it); %s'
                         % (what, path, real, os.path.realpath(root), fix))
    return real


def resolve_db_path(path):
    """Real path of a DB that must live in its own directory as configured: a final symlink may only point
    inside that directory, and an existing DB or sidecar must be a regular file (not a link, FIFO, device)."""
    parent = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    real = resolve_inside(path, parent, 'the database path', 'point path at the real file, or remove the link')
    for member in [real + suffix for suffix in DB_SUFFIXES]:
        if os.path.lexists(member):
            problem = regular_file_problem(member)
            if problem:
                raise UnsafePath('%s; move it aside (it is not part of an SQLite database) and retry' % problem)
    return real


def utf8_problem(path):
    """None when path can be reported as UTF-8 text, else why not (a name made of undecodable bytes)."""
    try:
        path.encode('utf-8')
    except UnicodeEncodeError:
        return 'its name is not valid UTF-8 (%s)' % path.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')
    return None


def printable(path):
    """path as text that can always go into a JSON result (undecodable bytes shown as U+FFFD)."""
    return path.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')


def temp_name(target, kind):
    """A hidden temp file name beside target that the next run recognises (and sweeps once pid is gone)."""
    return '.%s.%s-%d-%s.tmp' % (os.path.basename(target), kind, os.getpid(), os.urandom(4).hex())


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_temps(directory, keep=(), grace=TEMP_GRACE_SECONDS, now=None):
    """Remove our temp files in directory left by a killed run: the pid in the name is gone, or (names
    without a pid) it is older than grace. keep lists paths still needed (e.g. named by a journal).
    Returns the paths removed."""
    removed = []
    now = time.time() if now is None else now
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    keep = set(os.path.realpath(item) for item in keep)
    for name in names:
        match = TEMP_NAME_RE.match(name)
        member = os.path.join(directory, name)
        if os.path.realpath(member) in keep or os.path.realpath(re.sub(r'-(journal|wal|shm)$', '', member)) in keep:
            continue
        try:
            info = os.lstat(member)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        if match:
            stale = not pid_alive(int(match.group('pid')))
        else:
            stale = bool(LEGACY_TEMP_RE.match(name)) and now - info.st_mtime > grace
        if stale:
            removed.extend(remove_files([member]))
    if removed:
        fsync_dir(directory)
    return removed


def check_range(name, value, low, high=None):
    """A sentence when a numeric option is outside [low, high] (or not a finite number), else None."""
    try:
        safe_read.check_range(name, value, low, high)
    except safe_read.RangeError as exc:
        return str(exc)
    return None


def fsync_path(path):
    """fsync a file or a directory (a directory's fsync makes the renames and creations in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


fsync_dir = fsync_file = fsync_path


def atomic_write_bytes(path, data, mode=0o600):
    """Write data to path so that a crash leaves either the old or the new file."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def atomic_write_json(path, obj, mode=0o600):
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + '\n').encode('utf-8'), mode)


def read_json(path, default=None):
    """Read a JSON state file; a missing file gives default, a broken one raises ValueError."""
    if not os.path.lexists(path):
        return default
    try:
        raw = read_capped(path)
    except OSError as exc:
        raise ValueError('%s cannot be read (%s); move it aside to start a new one' % (path, exc))
    except UnsafePath as exc:
        raise ValueError('%s; move it aside to start a new one' % exc)
    try:
        return json.loads(raw.decode('utf-8'))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError('%s is not valid JSON (%s); move it aside to start a new one' % (path, exc))


def db_set(path):
    """The files that together make one SQLite database: db, -wal, -shm, -journal (those present)."""
    return [path + suffix for suffix in DB_SUFFIXES if os.path.lexists(path + suffix)]


def copy_file_synced(src, dest):
    """Byte copy of a file that no SQLite connection is writing (a preserved set, a side file)."""
    tmp = dest + '.partial'
    with os.fdopen(open_regular(src), 'rb') as reader, open(tmp, 'wb') as writer:
        shutil.copyfileobj(reader, writer, 1024 * 1024)
        writer.flush()
        os.fsync(writer.fileno())
    os.replace(tmp, dest)


def preserve_db_set(path, preserve_dir, label=None):
    """Copy db/-wal/-shm/-journal into a new folder under preserve_dir, with sha256 of each.

    Returns a dict: dir, files [{name, source, path, sha256, size}]. Nothing is
    moved or changed at the source. Raises OSError when the copy cannot be made
    completely (e.g. disk full); the partial folder is removed so no half set
    is ever mistaken for a full one.
    """
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
    name = '%s-%s-%d' % (label or os.path.basename(path), stamp, os.getpid())
    target = os.path.join(preserve_dir, name)
    os.makedirs(target, mode=0o700)
    files = []
    try:
        for member in db_set(path):
            dest = os.path.join(target, os.path.basename(member))
            copy_file_synced(member, dest)
            os.chmod(dest, 0o600)
            digest = sha256_file(dest)
            if digest != sha256_file(member):
                raise OSError('%s changed while it was being preserved; stop the writer and retry' % member)
            files.append({'name': os.path.basename(member), 'source': member, 'path': dest,
                          'sha256': digest, 'size': os.path.getsize(dest)})
        atomic_write_json(os.path.join(target, 'MANIFEST.json'),
                          {'source': path, 'created_at': stamp, 'files': files})
        fsync_dir(target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return {'dir': target, 'files': files}


def remove_db_sidecars(path):
    """Remove -wal/-shm/-journal of path (after the set was preserved). Returns what was removed."""
    removed = []
    for suffix in DB_SUFFIXES[1:]:
        member = path + suffix
        if os.path.lexists(member):
            os.unlink(member)
            removed.append(member)
    if removed:
        fsync_dir(os.path.dirname(os.path.abspath(path)))
    return removed


def _each_open_fd(exclude_pids=()):
    """(pid, /proc/<pid>/fd/<n>) of every fd of every other process; processes that vanish are skipped."""
    skip = set(exclude_pids) | {os.getpid()}
    try:
        pids = [int(entry) for entry in os.listdir('/proc') if entry.isdigit()]
    except OSError:
        return
    for pid in pids:
        if pid in skip:
            continue
        fd_dir = os.path.join('/proc', str(pid), 'fd')
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            yield pid, os.path.join(fd_dir, fd)


def open_holders(path):
    """Processes that hold path (or its -wal/-shm) open, from /proc/*/fd: [{pid, comm, fd_path}]."""
    targets = set(os.path.realpath(path + suffix) for suffix in DB_SUFFIXES)
    holders, found = [], set()
    for pid, fd_path in _each_open_fd():
        if pid in found:
            continue
        try:
            link = os.readlink(fd_path)
        except OSError:
            continue
        if link in targets:
            found.add(pid)
            holders.append({'pid': pid, 'comm': _comm(pid), 'fd_path': link})
    return holders


def _comm(pid):
    try:
        with open(os.path.join('/proc', str(pid), 'comm'), 'rb') as handle:
            return handle.read(64).decode('utf-8', 'replace').strip()
    except OSError:
        return ''


def file_identity(path):
    """(st_dev, st_ino) of path, not following a final symlink; None when it does not exist."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


def inode_holders(identities, exclude_pids=()):
    """Processes with an fd on any of the given (st_dev, st_ino) files, wherever they now live (a file
    renamed or unlinked still counts): [{pid, comm}]."""
    identities = set(item for item in identities if item)
    holders, found = [], set()
    if not identities:
        return holders
    for pid, fd_path in _each_open_fd(exclude_pids):
        if pid in found:
            continue
        try:
            info = os.stat(fd_path)
        except OSError:
            continue
        if (info.st_dev, info.st_ino) in identities:
            found.add(pid)
            holders.append({'pid': pid, 'comm': _comm(pid)})
    return holders


def nearest_existing(path):
    """path itself or its closest existing parent (where a new file or directory would be made)."""
    probe = path
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    return probe or '/'


def free_bytes(path):
    """Free bytes for an unprivileged writer on the filesystem that holds path."""
    stat = os.statvfs(nearest_existing(path))
    return stat.f_bavail * stat.f_frsize


def write_problem(path):
    """None when this process can create or replace path, else why not (read-only filesystem or
    permissions), worded with the fix."""
    probe = nearest_existing(path)
    if os.statvfs(probe).f_flag & os.ST_RDONLY:
        return '%s is on a read-only filesystem; remount it read-write or choose a path elsewhere' % probe
    if not os.access(probe, os.W_OK | os.X_OK):
        return ('%s is not writable by uid %d (permission denied); run the task with become: true or as the '
                'owner of %s' % (probe, os.geteuid(), probe))
    return None


def fs_usage(path):
    stat = os.statvfs(nearest_existing(path))
    total = stat.f_blocks * stat.f_frsize
    free = stat.f_bavail * stat.f_frsize
    return {'total_bytes': total, 'free_bytes': free,
            'free_ratio': round(float(free) / total, 4) if total else None}


# A file name the modules write under a directory they are given: no path separators, no
# leading dot (temp files are hidden), nothing a shell or SQL text could misread.
_PLAIN_NAME_CHARS = frozenset('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-')


def plain_filename_problem(name):
    """None when name is a plain file name, else a sentence saying what is wrong with it."""
    if not name:
        return 'it is empty'
    if len(name) > 200:
        return 'it is longer than 200 characters'
    bad = sorted(set(char for char in name if char not in _PLAIN_NAME_CHARS))
    if bad:
        return 'it contains %s; only letters, digits, ".", "_" and "-" are allowed' % ' '.join(repr(c) for c in bad)
    if name[0] in '.-':
        return 'it starts with %r (hidden or option-like names are reserved for temp files)' % name[0]
    return None


def is_disk_full(exc):
    """True for ENOSPC/EDQUOT from the OS or SQLite's 'database or disk is full'."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return 'disk is full' in str(exc).lower() or 'no space left' in str(exc).lower()


def remove_files(paths):
    """Unlink each path that exists (temp files, sidecars of a temp DB); returns those removed."""
    removed = []
    for member in paths:
        try:
            os.unlink(member)
            removed.append(member)
        except FileNotFoundError:
            continue
    return removed


def makedirs_synced(path, mode=0o700):
    """Create path (and parents) and fsync each new directory's parent; returns True if created."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return False
    parent = os.path.dirname(path)
    makedirs_synced(parent, mode)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
        return False
    fsync_dir(parent)
    return True


def owner_and_mode(path, default_mode=0o600):
    """(uid, gid, mode) a file replacing path should get: path's own, else its directory's owner."""
    if os.path.exists(path):
        stat = os.stat(path)
        return stat.st_uid, stat.st_gid, stat.st_mode & 0o7777
    stat = os.stat(os.path.dirname(os.path.abspath(path)))
    return stat.st_uid, stat.st_gid, default_mode


def apply_owner_and_mode(path, owner):
    """chmod/chown path to an owner_and_mode() triple; chown is skipped when not permitted."""
    uid, gid, mode = owner
    os.chmod(path, mode)
    try:
        os.chown(path, uid, gid)
    except PermissionError:
        pass  # not root: the file already belongs to the user running the module
