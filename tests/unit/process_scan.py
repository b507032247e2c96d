"""Independent /proc scans the process tests use to prove nothing of a CLI call survived."""

import os


def processes_with(marker):
    """Pids of live processes whose environment holds marker, whatever group or session they moved to."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/environ' % entry, 'rb') as handle:
                environ = handle.read()
            with open('/proc/%s/stat' % entry, 'rb') as handle:
                state = handle.read().rsplit(b')', 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in environ and state != b'Z':
            found.append(int(entry))
    return found
