"""Independent /proc scans the process tests use to prove nothing of a CLI call survived."""

import os


def _live_processes(with_environ=False):
    """(pid, stat fields after the command name, environ bytes or None) of every live, non-zombie process."""
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry, 'rb') as handle:
                fields = handle.read().rsplit(b')', 1)[1].split()
            environ = None
            if with_environ:
                with open('/proc/%s/environ' % entry, 'rb') as handle:
                    environ = handle.read()
        except OSError:
            continue
        if fields[0] != b'Z':
            yield int(entry), fields, environ


def processes_with(marker):
    """Pids of live processes whose environment holds marker, whatever group or session they moved to."""
    return [pid for pid, _fields, environ in _live_processes(with_environ=True) if marker.encode() in environ]


def processes_in_group(pgid):
    """Pids of live processes whose process group is pgid (/proc/<pid>/stat, field 5)."""
    return [pid for pid, fields, _environ in _live_processes() if fields[2] == str(pgid).encode()]
