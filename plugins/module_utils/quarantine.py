# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's own agent quarantine registry.

claude-flow has no quarantine command in any release (2.x `verify quarantine <agent>` silently prints
the status screen and exits 0). This registry is a JSON file, `<app_dir>/.swarm/quarantine.json` by
default, that records which agents (agent types, as truth scores name them) an operator took out of
service, why, and for which incident. claude-flow itself does not read it: it only has an effect
where the platform, a wrapper or a playbook is configured to honour it.

Format: {"format": 1, "quarantined": [{"agent", "reason", "incident_id", "quarantined_at",
"updated_at"}]} sorted by agent, written atomically (temp file, fsync, rename, fsync dir).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import fcntl
import os
import re
import time

from ansible_collections.claude_flow.runbook.plugins.module_utils import truth
from ansible_collections.claude_flow.runbook.plugins.module_utils.safe_files import atomic_write_json
from ansible_collections.claude_flow.runbook.plugins.module_utils.safe_read import (
    STATE_FILE_MAX_BYTES, UnsafeFileError, read_json_capped)

REGISTRY_FILE = os.path.join('.swarm', 'quarantine.json')
FORMAT = 1
AGENT_RE = re.compile(r'[A-Za-z0-9_.-]{1,64}')
DEFAULT_MODE = 0o644  # readable by the service user, for a platform configured to honour it
_CONTROL = re.compile(r'[\x00-\x1f\x7f]')


class QuarantineError(Exception):
    """A bad agent name, a broken registry file: the message says what to do."""


def validate_agent(name):
    # fullmatch: `$` would let a trailing newline through.
    if not isinstance(name, str) or not AGENT_RE.fullmatch(name) or name in ('.', '..'):
        raise QuarantineError('agent %r is not a valid agent name; use 1 to 64 letters, digits, `_`, `.` or `-` '
                              '(an agent type such as coder or tester)' % (name,))
    return name


def validate_text(name, value, limit=1000):
    if value is None:
        return None
    if _CONTROL.search(value) or len(value) > limit:
        raise QuarantineError('%s must be one line of at most %d characters without control characters'
                              % (name, limit))
    return value


def now_iso():
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


def load(path):
    """The registry's entries (a list, sorted by agent). A missing file is an empty registry."""
    try:
        data = read_json_capped(path, STATE_FILE_MAX_BYTES, what='quarantine registry', default=None)
    except UnsafeFileError as exc:
        raise QuarantineError(str(exc))
    except ValueError as exc:
        raise QuarantineError('quarantine registry %s: %s' % (path, exc))
    except (IOError, OSError) as exc:
        raise QuarantineError('cannot read quarantine registry %s (%s); check its permissions' % (path, exc))
    if data is None:
        return []
    entries = data.get('quarantined') if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get('agent'), str)
                                                for e in entries):
        raise QuarantineError('quarantine registry %s is not in this collection\'s format (a `quarantined` list of '
                              'entries with an `agent`); move it aside and re-run' % path)
    return sorted(entries, key=lambda e: e['agent'])


def apply(entries, state, agent, reason=None, incident_id=None, stamp=None):
    """(new entries, action) for state present|absent|query; entries is not modified.

    present adds the agent; on an agent already quarantined, a reason or incident_id that differs
    from the recorded one updates the entry (keeping quarantined_at) and counts as a change; leaving
    them unset changes nothing. absent removes the agent. action: added|updated|removed|none.
    """
    stamp = stamp or now_iso()
    new = copy.deepcopy(entries)
    current = [e for e in new if e['agent'] == agent]
    if state == 'present':
        if not current:
            new.append({'agent': agent, 'reason': reason, 'incident_id': incident_id, 'quarantined_at': stamp,
                        'updated_at': stamp})
            return sorted(new, key=lambda e: e['agent']), 'added'
        entry = current[0]
        updates = dict((key, value) for key, value in (('reason', reason), ('incident_id', incident_id))
                       if value is not None and entry.get(key) != value)
        if not updates:
            return new, 'none'
        entry.update(updates)
        entry['updated_at'] = stamp
        return new, 'updated'
    if state == 'absent' and current:
        return [e for e in new if e['agent'] != agent], 'removed'
    return new, 'none'


def save(path, entries):
    """Write the registry atomically, keeping an existing file's mode and owner."""
    mode, owner = DEFAULT_MODE, None
    if os.path.exists(path):
        info = os.stat(path)
        mode, owner = info.st_mode & 0o7777, (info.st_uid, info.st_gid)
    atomic_write_json(path, {'format': FORMAT, 'quarantined': entries}, mode=mode)
    if owner and owner != (os.geteuid(), os.getegid()):
        try:
            os.chown(path, owner[0], owner[1])
        except OSError:
            pass  # not permitted (not root): the file stays ours, readable per its mode


def ensure_directory(path):
    """Create the registry's directory (normally <app_dir>/.swarm) when only it is missing."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(directory):
        return
    if not os.path.isdir(os.path.dirname(directory)):
        raise QuarantineError('directory %s does not exist; check app_dir or set registry to a file in an '
                              'existing directory' % os.path.dirname(directory))
    os.mkdir(directory, 0o755)


class Locked(object):
    """An exclusive flock on the registry's directory, so that two runs do not lose each other's change."""

    def __init__(self, path):
        self.directory = os.path.dirname(os.path.abspath(path))
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.directory, os.O_RDONLY)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        return False


def known_agents(option=None, state_file=None, db_path=None):
    """(agents or None, source, reason): the agents the quarantined ratio is measured against.

    From the known_agents option when given; else the agent types in the truth state file and in a
    verification_history table together. None (with the reason) when neither has any.
    """
    if option:
        return sorted(set(validate_agent(a) for a in option)), 'option', None
    names, sources, why = set(), [], []
    if state_file:
        res = truth.from_state_file(state_file)
        found = [a['agent'] for a in res['agents'] if a['agent'] != 'unknown']
        if found:
            names.update(found)
            sources.append('state_file')
        else:
            why.append(res['reason'] or 'no agents in %s' % state_file)
    if db_path:
        if os.path.isfile(db_path):
            found = [a for a in truth.db_agents(db_path) if a != 'unknown']
            if found:
                names.update(found)
                sources.append('db')
            else:
                why.append('no agents in a verification_history table of %s' % db_path)
        else:
            why.append('database %s does not exist' % db_path)
    if not names:
        return None, None, ('the set of agents is unknown (%s); set known_agents to measure the quarantined ratio'
                            % '; '.join(why))
    return sorted(names), '+'.join(sources), None


def ratio(quarantined_names, known):
    """Quarantined share of all agents (known ones plus any quarantined agent not in that list)."""
    if known is None:
        return None
    population = set(known) | set(quarantined_names)
    if not population:
        return None
    return round(len(set(quarantined_names)) / float(len(population)), 4)
