# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading operator-named files without blocking, following a swap, or eating memory.

Every path an option names (a log, a registry, a state file, a package.json) may be a FIFO, a device
or a socket by mistake or by malice: opening a FIFO blocks until a writer comes, /dev/zero never ends.
So: resolve the path, stat it and refuse anything but a regular file, open it O_NONBLOCK|O_NOFOLLOW
(a FIFO swapped in after the stat cannot block, a symlink swapped in cannot redirect), fstat the open
descriptor to be sure it is still that regular file, and read at most a fixed number of bytes.

Also the range checks of numeric options, so every module words them the same way.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import os
import stat

# Caps: far above what a healthy file holds, far below what hurts a host.
STATE_FILE_MAX_BYTES = 16 * 1024 * 1024   # verification-memory.json, quarantine registry, guard history
SMALL_FILE_MAX_BYTES = 1024 * 1024        # package.json, growth samples, a lock file
LOG_TAIL_MAX_BYTES = 4 * 1024 * 1024      # what a log tail may read, whatever the line count

_KINDS = ((stat.S_ISFIFO, 'a FIFO (named pipe)'), (stat.S_ISCHR, 'a character device'),
          (stat.S_ISBLK, 'a block device'), (stat.S_ISSOCK, 'a socket'), (stat.S_ISDIR, 'a directory'))


class UnsafeFileError(Exception):
    """The path names something that is not a readable regular file of sane size; says which and the fix."""


def kind_of(mode):
    for test, name in _KINDS:
        if test(mode):
            return name
    return 'not a regular file'


def open_regular(path, what='file'):
    """(fd, stat) of path opened read-only, refused unless it is a regular file. Never blocks.

    Raises FileNotFoundError when it does not exist, UnsafeFileError when it is anything but a regular
    file, OSError (permissions...) otherwise. The caller closes fd."""
    real = os.path.realpath(path)
    info = os.stat(real)
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFileError('%s %s is %s, not a regular file; it was not read (reading it could block or never '
                              'end): point the option at the regular file' % (what, path, kind_of(info.st_mode)))
    flags = os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0) | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)
    fd = os.open(real, flags)
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
            raise UnsafeFileError('%s %s was replaced while it was being opened (now %s); it was not read: retry, and '
                                  'find what swaps it' % (what, path, kind_of(opened.st_mode)))
    except BaseException:
        os.close(fd)
        raise
    return fd, opened


def _read_fd(fd, limit):
    chunks, total = [], 0
    while total < limit:
        chunk = os.read(fd, min(1024 * 1024, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b''.join(chunks)


def read_capped(path, limit, what='file'):
    """The whole of a regular file of at most limit bytes; UnsafeFileError when it is larger."""
    fd, info = open_regular(path, what)
    try:
        if info.st_size > limit:
            raise UnsafeFileError(too_large(path, info.st_size, limit, what))
        data = _read_fd(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:  # grew while we read
        raise UnsafeFileError(too_large(path, len(data), limit, what))
    return data


def too_large(path, size, limit, what):
    return ('%s %s is %d bytes, more than the %d bytes such a file can sensibly hold; it was not read: move it aside '
            '(it is not the file this option expects, or it has been overrun)' % (what, path, size, limit))


def read_json_capped(path, limit=STATE_FILE_MAX_BYTES, what='file', default=None, errors='strict'):
    """JSON of a regular file of at most limit bytes. Missing -> default; bad JSON (or non-UTF-8 with
    errors='strict'; 'replace' reads it as node's readFile does) -> ValueError; a FIFO/device/socket/
    directory or an oversized file -> UnsafeFileError."""
    try:
        raw = read_capped(path, limit, what)
    except FileNotFoundError:
        return default
    try:
        return json.loads(raw.decode('utf-8', errors), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError('%s is not valid JSON (%s); move it aside to start a new one' % (path, exc))


def _reject_constant(name):
    raise ValueError('%s is not a JSON number' % name)


def tail_lines(path, count, limit=LOG_TAIL_MAX_BYTES, what='log'):
    """(last count lines, file size, bytes read): reads at most limit bytes from the end, never more,
    whatever the size of the file and the length of its lines. Non-UTF-8 bytes become U+FFFD."""
    fd, info = open_regular(path, what)
    try:
        size = info.st_size
        start = max(0, size - limit)
        os.lseek(fd, start, os.SEEK_SET)
        data = _read_fd(fd, limit)
    finally:
        os.close(fd)
    lines = data.splitlines()
    if start > 0 and lines:
        lines = lines[1:]  # the first line is cut at the cap: not a whole line
    return [line.decode('utf-8', 'replace') for line in lines[-count:]] if count else [], size, len(data)


# ---------------------------------------------------------------- numeric options

class RangeError(ValueError):
    """A numeric option outside its valid range; the message names the option and the range."""


def check_range(name, value, low, high=None, unit=''):
    """value when it is a finite number in [low, high] (no upper bound when high is None), else RangeError
    naming the valid range. None (an option left unset) passes."""
    suffix = (' ' + unit) if unit else ''
    if value is None:
        return value
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = float('nan')
    if isinstance(value, bool) or math.isnan(number) or math.isinf(number) or number < low \
            or (high is not None and number > high):
        valid = ('between %s and %s%s' % (_fmt(low), _fmt(high), suffix) if high is not None
                 else '%s%s or more' % (_fmt(low), suffix))
        raise RangeError('%s must be %s (got %s)' % (name, valid, _fmt(value)))
    return value


def _fmt(value):
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = str(value)
    return text if len(text) <= 40 else text[:37] + '...'
