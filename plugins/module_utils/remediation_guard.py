# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safety rails for automatic remediation on one host.

- single flight: one lock file per host; a second run waits or is refused.
- stale locks: the lock names a keeper process on the host (pid + boot id + a
  token in its command line); a lock whose keeper is gone, whose boot id is
  from an earlier boot, that is older than its ttl, or whose lease was not
  renewed in time is stale and may be broken.
- lease: the controller cannot be watched from the host, so a run proves it is
  alive by renewing (touching the lock file) at each step; a run killed with
  SIGKILL stops renewing and its lock goes stale after one lease.
- run identity: the lock belongs to one run (run_id), not to an incident id, so
  two runs started in the same second never share it.
- cooldown: no new remediation within N seconds of the last one.
- circuit breaker: after N remediations inside a window, stop and say why;
  a human resets it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import signal
import subprocess
import sys
import time
import uuid

from ansible_collections.claude_flow.runbook.plugins.module_utils.safe_files import atomic_write_json, fsync_dir
from ansible_collections.claude_flow.runbook.plugins.module_utils.safe_read import (
    SMALL_FILE_MAX_BYTES, STATE_FILE_MAX_BYTES, UnsafeFileError, read_json_capped)

LOCK_NAME = 'lock.json'
HISTORY_NAME = 'history.json'
COUNTED_OUTCOMES = ('remediated', 'failed')
HISTORY_KEEP = 200

# The keeper holds no file open and exits as soon as its lock is gone, its ttl is over or its
# lease lapsed; its only job is to be a live pid on this boot while the lock is legitimately held.
KEEPER_CODE = r'''
import json, os, sys, time
lock, token, ttl, lease = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
start = time.time()
seen = False
while time.time() - start < ttl:
    try:
        with open(lock) as handle:
            ok = json.load(handle).get('token') == token
        renewed = os.stat(lock).st_mtime
    except (OSError, ValueError):
        ok = False
    if ok:
        seen = True
        if lease and time.time() - max(renewed, start) > lease:
            break
    elif seen or time.time() - start > 30:
        break
    time.sleep(1)
'''


class GuardError(Exception):
    """Refusal or misuse, worded for the operator; `details` goes into the module result."""

    def __init__(self, msg, **details):
        super(GuardError, self).__init__(msg)
        self.details = details


def boot_id():
    try:
        with open('/proc/sys/kernel/random/boot_id') as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def iso(epoch):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


def pid_alive_with_token(pid, token):
    """True when pid runs on this host and its command line carries the token."""
    try:
        os.kill(int(pid), 0)
    except OSError as exc:
        if exc.errno == errno.EPERM:
            return True
        return False
    except (TypeError, ValueError):
        return False
    try:
        with open('/proc/%d/cmdline' % int(pid), 'rb') as handle:
            return token.encode('utf-8') in handle.read()
    except (IOError, OSError):
        return True  # no /proc to compare with: trust the live pid


class Guard(object):
    def __init__(self, state_dir, now=None):
        self.state_dir = state_dir
        self.lock_path = os.path.join(state_dir, LOCK_NAME)
        self.history_path = os.path.join(state_dir, HISTORY_NAME)
        self.now = now or time.time

    # ----- reading -----
    def read_lock(self):
        try:
            return read_json_capped(self.lock_path, SMALL_FILE_MAX_BYTES, what='guard lock', default=None)
        except UnsafeFileError as exc:
            raise GuardError('%s; remove it so a lock can be taken' % exc)
        except (IOError, OSError) as exc:
            raise GuardError('cannot read %s (%s); check permissions of %s' % (self.lock_path, exc, self.state_dir))
        except ValueError:
            # A lock is linked into place complete, so garbage here was written by something else.
            return {'unreadable': True, 'acquired_epoch': os.path.getmtime(self.lock_path)}

    def history(self):
        try:
            data = read_json_capped(self.history_path, STATE_FILE_MAX_BYTES, what='guard history',
                                    default={'entries': [], 'reset_epoch': 0})
        except (ValueError, UnsafeFileError) as exc:
            raise GuardError(str(exc))
        if not isinstance(data, dict):
            raise GuardError('%s is not a guard history (a JSON object); move it aside to start a new one'
                             % self.history_path)
        data.setdefault('entries', [])
        data.setdefault('reset_epoch', 0)
        return data

    def renewed_epoch(self, lock):
        """When the holder last proved it is alive: the lock file's mtime (renew touches it)."""
        try:
            touched = os.stat(self.lock_path).st_mtime
        except OSError:
            touched = 0
        return max(float(lock.get('acquired_epoch', 0) or 0), touched)

    def stale_reason(self, lock):
        """Why a lock no longer protects anything, or None when it is live."""
        if lock.get('unreadable'):
            if self.now() - lock['acquired_epoch'] > 60:
                return 'the lock file is not valid JSON and over a minute old'
            return None
        current_boot = boot_id()
        if lock.get('boot_id') and current_boot and lock['boot_id'] != current_boot:
            return 'the host rebooted since the lock was taken (boot id %s, now %s)' % (lock['boot_id'], current_boot)
        age = self.now() - float(lock.get('acquired_epoch', 0))
        if age > float(lock.get('ttl', 0) or 0):
            return 'the lock is %d s old, older than its ttl of %s s' % (age, lock.get('ttl'))
        lease = float(lock.get('lease', 0) or 0)
        silent = self.now() - self.renewed_epoch(lock)
        if lease and silent > lease:
            return ('the lock was not renewed for %d s, longer than its lease of %d s: the run holding it stopped '
                    'without releasing it (killed?)' % (silent, lease))
        if lock.get('pid') and not pid_alive_with_token(lock['pid'], lock.get('token', '')):
            return 'its keeper process %s is gone' % lock['pid']
        return None

    # ----- budget: cooldown and circuit breaker -----
    def budget(self, cooldown, window, max_remediations):
        now = self.now()
        data = self.history()
        counted = [e for e in data['entries'] if e.get('outcome') in COUNTED_OUTCOMES
                   and float(e.get('released_epoch', 0)) > float(data['reset_epoch'])]
        in_window = [e for e in counted if now - float(e['released_epoch']) <= window]
        last = counted[-1] if counted else None
        since_last = now - float(last['released_epoch']) if last else None
        result = {'remediations_in_window': len(in_window), 'window_seconds': window,
                  'max_remediations': max_remediations, 'cooldown_seconds': cooldown,
                  'last_remediation': last, 'seconds_since_last': int(since_last) if last else None,
                  'circuit_open': bool(max_remediations and len(in_window) >= max_remediations),
                  'cooldown_active': bool(last and cooldown and since_last < cooldown), 'reason': None}
        if result['circuit_open']:
            result['reason'] = (
                'circuit breaker open: %d remediations on this host in the last %d s (%s); the fixes are not '
                'holding, so automatic remediation stops here. A human must find the cause, then reset the '
                'breaker with claude_flow.runbook.remediation_guard state=reset'
                % (len(in_window), window, ', '.join('%s %s at %s' % (e.get('incident_id'), e.get('outcome'),
                                                                      e.get('released_at')) for e in in_window)))
        elif result['cooldown_active']:
            result['reason'] = (
                'cooldown: the last remediation (%s, %s) ended %d s ago and the cooldown is %d s; wait %d s '
                'or run with force to remediate again now'
                % (last.get('incident_id'), last.get('outcome'), since_last, cooldown, cooldown - since_last))
        return result

    # ----- acquire / release -----
    def acquire(self, incident_id, owner, ttl, wait_timeout, poll_interval, check_mode=False, run_id=None, lease=0):
        start = self.now()
        waited_for = None
        broken = []
        while True:
            lock = self.read_lock()
            if lock is not None:
                reason = self.stale_reason(lock)
                if reason:
                    if check_mode:
                        return {'acquired': False, 'would_acquire': True, 'stale_lock': lock,
                                'msg': 'would break a stale lock (%s) and acquire' % reason}
                    self._break(lock, reason)
                    broken.append({'lock': lock, 'reason': reason})
                    continue
                if self._ours(lock, incident_id, run_id) and lock.get('boot_id') == boot_id():
                    lock['reentered'] = True
                    return {'acquired': True, 'lock': lock, 'waited_seconds': 0, 'waited_for': None,
                            'broken_stale': broken, 'changed': False,
                            'msg': 'lock already held by this run (%s)' % incident_id}
                if check_mode:
                    return {'acquired': False, 'would_acquire': False, 'held_by': lock,
                            'msg': 'would wait up to %d s for the lock held by %s' % (
                                wait_timeout, lock.get('incident_id'))}
                waited_for = lock
                if self.now() - start >= wait_timeout:
                    raise GuardError(
                        'another remediation holds this host: %s (owner %s, since %s, keeper pid %s); waited %d s. '
                        'Let it finish, or if it is dead its lock goes stale by pid/boot id or after its ttl '
                        '(%s s); raise wait_timeout to queue behind it'
                        % (lock.get('incident_id'), lock.get('owner'), lock.get('acquired_at'), lock.get('pid'),
                           int(self.now() - start), lock.get('ttl')), held_by=lock)
                time.sleep(poll_interval)
                continue
            if check_mode:
                return {'acquired': False, 'would_acquire': True, 'msg': 'the lock is free; would acquire it'}
            taken = self._take(incident_id, owner, ttl, run_id, lease)
            if taken is None:
                continue  # lost a race with another run; look again
            waited = int(round(self.now() - start))
            return {'acquired': True, 'lock': taken, 'waited_seconds': waited,
                    'waited_for': waited_for, 'broken_stale': broken, 'changed': False,
                    'msg': 'lock acquired for %s%s' % (incident_id, (' after waiting %d s for %s' % (
                        waited, waited_for.get('incident_id'))) if waited_for else '')}

    @staticmethod
    def _ours(lock, incident_id, run_id):
        """The lock was taken by this run: same incident id and same run id (two runs started in the
        same second share an incident id, never a run id)."""
        return lock.get('incident_id') == incident_id and lock.get('run_id') == run_id

    def _take(self, incident_id, owner, ttl, run_id=None, lease=0):
        if not os.path.isdir(self.state_dir):
            os.makedirs(self.state_dir, mode=0o700)
        token = uuid.uuid4().hex
        # A detached keeper must outlive this module run; run_command waits for its process.
        keeper = subprocess.Popen([sys.executable, '-c', KEEPER_CODE, self.lock_path, token, str(ttl), str(lease)],  # pylint: disable=ansible-bad-function
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True)
        now = self.now()
        lock = {'incident_id': incident_id, 'owner': owner, 'pid': keeper.pid, 'boot_id': boot_id(),
                'token': token, 'acquired_epoch': now, 'acquired_at': iso(now), 'ttl': ttl,
                'run_id': run_id, 'lease': lease}
        tmp = '%s.%s.tmp' % (self.lock_path, token)
        with open(tmp, 'w') as handle:
            json.dump(lock, handle)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # link() fails when the name exists: the atomic "create only if absent" of a complete file.
            os.link(tmp, self.lock_path)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                self._stop_keeper(keeper.pid)
                raise GuardError('cannot create %s (%s)' % (self.lock_path, exc))
            self._stop_keeper(keeper.pid)
            return None
        finally:
            os.unlink(tmp)
        fsync_dir(self.state_dir)
        return lock

    def _break(self, lock, reason):
        aside = '%s.stale-%d' % (self.lock_path, int(self.now()))
        try:
            os.rename(self.lock_path, aside)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        if lock.get('pid') and not lock.get('unreadable') and not reason.startswith('its keeper'):
            self._stop_keeper(lock['pid'], lock.get('token'))

    @staticmethod
    def _stop_keeper(pid, token=None):
        if token and not pid_alive_with_token(pid, token):
            return
        try:
            os.kill(int(pid), signal.SIGTERM)
        except OSError:
            pass

    def renew(self, incident_id, run_id=None, check_mode=False):
        """Prove this run is alive (touch the lock); refuse when the lock is no longer ours."""
        if check_mode:
            # A check-mode run never took the lock, so there is nothing of its own to renew.
            return {'renewed': False, 'changed': False, 'msg': 'would renew the lock of %s' % incident_id}
        lock = self.read_lock()
        if lock is None or not self._ours(lock, incident_id, run_id):
            raise GuardError(
                'this run (%s) no longer holds the remediation lock (%s); it was probably broken as stale after '
                'the lease lapsed. Stop here: another run may be remediating this host. Raise the lease '
                '(claude_flow_guard_lease) if a step legitimately takes longer'
                % (incident_id, 'now held by %s' % lock.get('incident_id') if lock else 'no lock is held'),
                held_by=lock)
        os.utime(self.lock_path, None)
        return {'renewed': True, 'changed': False, 'renewed_at': iso(self.now()),
                'msg': 'lock of %s renewed (lease %s s)' % (incident_id, lock.get('lease') or 'none')}

    def release(self, incident_id, outcome, actions, check_mode=False, run_id=None):
        lock = self.read_lock()
        if lock is None:
            return {'released': False, 'changed': False,
                    'msg': 'no lock was held (nothing to release)'}
        if not self._ours(lock, incident_id, run_id):
            return {'released': False, 'changed': False, 'held_by': lock,
                    'msg': 'the lock belongs to another run (%s, run %s), not this one (%s, run %s); left in place'
                           % (lock.get('incident_id'), lock.get('run_id'), incident_id, run_id)}
        if check_mode:
            return {'released': False, 'changed': False, 'msg': 'would release the lock of %s' % incident_id}
        now = self.now()
        changed = False
        if outcome in COUNTED_OUTCOMES:
            data = self.history()
            data['entries'].append({'incident_id': incident_id, 'owner': lock.get('owner'),
                                    'acquired_at': lock.get('acquired_at'),
                                    'acquired_epoch': lock.get('acquired_epoch'),
                                    'released_at': iso(now), 'released_epoch': now,
                                    'outcome': outcome, 'actions': list(actions or [])})
            data['entries'] = data['entries'][-HISTORY_KEEP:]
            atomic_write_json(self.history_path, data)
            changed = True
        os.unlink(self.lock_path)
        fsync_dir(self.state_dir)
        self._stop_keeper(lock.get('pid'), lock.get('token'))
        return {'released': True, 'changed': changed, 'released_at': iso(now),
                'msg': 'lock of %s released (outcome %s)' % (incident_id, outcome)}

    def reset(self, check_mode=False):
        data = self.history()
        if check_mode:
            return {'changed': True, 'msg': 'would reset the circuit breaker'}
        data['reset_epoch'] = self.now()
        data['reset_at'] = iso(data['reset_epoch'])
        if not os.path.isdir(self.state_dir):
            os.makedirs(self.state_dir, mode=0o700)
        atomic_write_json(self.history_path, data)
        return {'changed': True, 'msg': 'circuit breaker reset; earlier remediations no longer count'}
