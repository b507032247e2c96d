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
import hashlib
import json
import os
import shutil
import tempfile
import time

DB_SUFFIXES = ('', '-wal', '-shm', '-journal')


def sha256_file(path, bufsize=1024 * 1024):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        while True:
            chunk = handle.read(bufsize)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    if not os.path.exists(path):
        return default
    with open(path, 'rb') as handle:
        raw = handle.read()
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
    with open(src, 'rb') as reader, open(tmp, 'wb') as writer:
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


def open_holders(path):
    """Processes that hold path (or its -wal/-shm) open, from /proc/*/fd: [{pid, comm, fd_path}]."""
    targets = set()
    for member in [path + suffix for suffix in DB_SUFFIXES]:
        try:
            targets.add(os.path.realpath(member))
        except OSError:
            continue
    holders = []
    own = os.getpid()
    try:
        pids = [entry for entry in os.listdir('/proc') if entry.isdigit()]
    except OSError:
        return holders
    for pid in pids:
        if int(pid) == own:
            continue
        fd_dir = os.path.join('/proc', pid, 'fd')
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if link in targets:
                holders.append({'pid': int(pid), 'comm': _comm(pid), 'fd_path': link})
                break
    return holders


def _comm(pid):
    try:
        with open(os.path.join('/proc', pid, 'comm')) as handle:
            return handle.read().strip()
    except OSError:
        return ''


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
