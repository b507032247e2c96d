#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: remediation_guard
short_description: Single-flight lock, cooldown and circuit breaker for automatic remediation on a host
version_added: 0.1.0
description:
  - Keeps automatic remediation from fighting itself. The response playbooks acquire the lock at their
    start and release it in C(always), so two runs against one host are serialised.
  - The lock belongs to one run, named by O(incident_id) and O(run_id). Two runs started in the same second
    can share an incident id; with a random O(run_id) each they never share the lock.
  - The host cannot see the controller, so a run with a O(lease) proves it is alive by renewing the lock
    (O(state=renewed)) at every step. A run killed with SIGKILL stops renewing and its lock goes stale
    one lease later, so the next run takes over instead of waiting for the O(ttl).
  - The lock also names a small keeper process on the host (its pid, the host's boot id and a random token
    in its command line). A lock is stale, and is broken, when that process is gone, when the host has
    rebooted since, when its lease lapsed, or when the lock is older than its O(ttl).
  - O(state=check) enforces the remediation budget. Cooldown refuses a new remediation within
    O(cooldown) seconds of the last one. The circuit breaker refuses once O(max_remediations)
    remediations ended inside O(window) seconds, and says which ones. The fixes are evidently not
    holding at that point, so a human has to look. O(state=reset) closes the breaker again.
  - Only runs released with O(outcome=remediated) or O(outcome=failed) count and are recorded in the
    history; a run that found nothing to do leaves no trace, so it stays idempotent.
extends_documentation_fragment:
  - claude_flow.runbook.attributes
options:
  state:
    description:
      - V(acquired) takes the lock, waiting up to O(wait_timeout) seconds for another holder.
      - V(renewed) proves this run is still alive (restarts its O(lease)); it fails when the lock is no
        longer this run's, so a run whose lock was broken stops before changing more.
      - V(released) gives it back and records the outcome.
      - V(check) fails when cooldown or the circuit breaker forbid remediating now.
      - V(status) reports the lock and the budget. V(reset) closes the circuit breaker.
    type: str
    choices: [acquired, renewed, released, check, status, reset]
    default: status
  state_dir:
    description: Directory on the host for C(lock.json) and C(history.json).
    type: path
    default: /var/lib/claude-flow-runbook/guard
  incident_id:
    description:
      - The incident the lock is taken for. Required for O(state=acquired), O(state=renewed) and
        O(state=released).
    type: str
  run_id:
    description:
      - A value unique to this run (the playbooks pass a random one). A lock is re-entered, renewed or
        released only by the run with the same O(incident_id) and O(run_id).
      - Without it, two runs with the same O(incident_id) would count as one.
    type: str
  lease:
    description:
      - Seconds the lock stays valid without a renewal (O(state=renewed)); V(0) switches the lease off, so
        only the keeper, the boot id and O(ttl) decide staleness.
      - Must be longer than the longest step between two renewals. Between 0 and 604800 (a week).
    type: int
    default: 0
  owner:
    description: Who holds the lock (e.g. C(user@controller playbook)); shown to anyone who has to wait.
    type: str
    default: ansible
  ttl:
    description: Seconds after which a lock counts as stale even if its keeper still runs. Between 1 and 604800 (a week).
    type: int
    default: 3600
  wait_timeout:
    description: Seconds to wait for a lock held by another live run before failing. Between 0 and 86400.
    type: int
    default: 0
  poll_interval:
    description: Seconds between looks at a held lock while waiting. Between 0.05 and 60.
    type: float
    default: 1.0
  cooldown:
    description: Minimum seconds between the end of one counted remediation and the start of the next. Between 0 and 2592000 (30 days).
    type: int
    default: 300
  window:
    description: The circuit breaker's window in seconds. Between 1 and 31536000 (365 days).
    type: int
    default: 3600
  max_remediations:
    description: Counted remediations inside O(window) that open the circuit breaker; V(0) switches it off. Between 0 and 1000.
    type: int
    default: 3
  outcome:
    description: How the run ended, for O(state=released). V(noop) is not recorded and does not count.
    type: str
    choices: [remediated, failed, noop]
    default: noop
  actions:
    description: What the run did, stored in the history with the outcome.
    type: list
    elements: str
    default: []
  force:
    description: With O(state=check), pass despite cooldown or an open circuit breaker (an operator's decision).
    type: bool
    default: false
attributes:
  check_mode:
    details: Reports whether the lock could be taken and what the budget allows; writes nothing.
  diff_mode:
    support: none
    details: The lock and history files are bookkeeping; no diff is shown.
  platform:
    details: Linux hosts (the stale-lock check reads /proc and the boot id).
'''

EXAMPLES = r'''
- name: Take the host's remediation lock (queue behind another run for up to 5 minutes)
  claude_flow.runbook.remediation_guard:
    state: acquired
    incident_id: INC-20260101-120000-web1
    run_id: "{{ remediation_lock_run_id }}"
    owner: "{{ lookup('ansible.builtin.env', 'USER') }} p0_response"
    wait_timeout: 300
    lease: 900

- name: Prove the run is alive between steps (fails when the lock was broken meanwhile)
  claude_flow.runbook.remediation_guard:
    state: renewed
    incident_id: INC-20260101-120000-web1
    run_id: "{{ remediation_lock_run_id }}"

- name: Refuse when cooldown or the circuit breaker say stop
  claude_flow.runbook.remediation_guard:
    state: check
    cooldown: 300
    window: 3600
    max_remediations: 3

- name: Give the lock back and record what happened
  claude_flow.runbook.remediation_guard:
    state: released
    incident_id: INC-20260101-120000-web1
    run_id: "{{ remediation_lock_run_id }}"
    outcome: remediated
    actions: [rollback to release 2026-01-01]

- name: Close the circuit breaker after a human fixed the cause
  claude_flow.runbook.remediation_guard:
    state: reset
'''

RETURN = r'''
acquired:
  description: Whether this run now holds the lock (O(state=acquired)).
  returned: state is acquired
  type: bool
lock:
  description: The lock record (incident_id, run_id, owner, pid, boot_id, acquired_at, ttl, lease).
  returned: when a lock was acquired
  type: dict
waited_seconds:
  description: How long this run waited for another holder.
  returned: state is acquired
  type: int
waited_for:
  description: The lock record of the run waited for, if any.
  returned: state is acquired
  type: dict
broken_stale:
  description: Stale locks that were broken, each with the reason.
  returned: state is acquired
  type: list
  elements: dict
renewed:
  description: Whether the lease was renewed.
  returned: state is renewed
  type: bool
released:
  description: Whether the lock was released.
  returned: state is released
  type: bool
budget:
  description:
    - remediations_in_window, window_seconds, max_remediations, cooldown_seconds, last_remediation,
      seconds_since_last, circuit_open, cooldown_active, reason.
  returned: always
  type: dict
history:
  description: Recorded remediations, oldest first.
  returned: state is status
  type: list
  elements: dict
'''

from ansible_collections.claude_flow.runbook.plugins.module_utils import module_envelope
from ansible_collections.claude_flow.runbook.plugins.module_utils.remediation_guard import Guard, GuardError
from ansible_collections.claude_flow.runbook.plugins.module_utils.safe_read import RangeError, check_range

WEEK = 7 * 86400
# (option, lowest, highest, unit): a value outside is refused with this range named.
RANGES = (
    ('ttl', 1, WEEK, 'seconds'),
    ('lease', 0, WEEK, 'seconds'),
    ('wait_timeout', 0, 86400, 'seconds'),
    ('poll_interval', 0.05, 60, 'seconds'),
    ('cooldown', 0, 30 * 86400, 'seconds'),
    ('window', 1, 365 * 86400, 'seconds'),
    ('max_remediations', 0, 1000, ''),
)


def check_options(p):
    for name, low, high, unit in RANGES:
        try:
            check_range(name, p[name], low, high, unit)
        except RangeError as exc:
            raise module_envelope.ModuleFailure('%s%s' % (exc, ' (ttl bounds how long a dead run can block the host)'
                                                          if name == 'ttl' else ''))
    if p['lease'] > p['ttl']:
        raise module_envelope.ModuleFailure('lease (%d s) must not be longer than ttl (%d s); lower the lease or raise '
                                            'the ttl' % (p['lease'], p['ttl']))


def work(module, p):
    check_options(p)
    guard = Guard(p['state_dir'])
    result = {'changed': False}
    budget = guard.budget(p['cooldown'], p['window'], p['max_remediations'])
    if p['state'] == 'acquired':
        result.update(guard.acquire(p['incident_id'], p['owner'], p['ttl'], p['wait_timeout'],
                                    p['poll_interval'], module.check_mode, p['run_id'], p['lease']))
    elif p['state'] == 'renewed':
        result.update(guard.renew(p['incident_id'], p['run_id'], module.check_mode))
    elif p['state'] == 'released':
        result.update(guard.release(p['incident_id'], p['outcome'], p['actions'], module.check_mode, p['run_id']))
        budget = guard.budget(p['cooldown'], p['window'], p['max_remediations'])
    elif p['state'] == 'check':
        if (budget['circuit_open'] or budget['cooldown_active']) and not p['force']:
            raise module_envelope.ModuleFailure(budget['reason'], budget=budget)
        result['msg'] = 'remediation allowed%s' % (' (forced past: %s)' % budget['reason'] if budget['reason'] else '')
    elif p['state'] == 'reset':
        result.update(guard.reset(module.check_mode))
        if not module.check_mode:
            budget = guard.budget(p['cooldown'], p['window'], p['max_remediations'])
    else:
        lock = guard.read_lock()
        result['lock'] = lock
        result['stale_reason'] = guard.stale_reason(lock) if lock else None
        result['history'] = guard.history()['entries']
    result['budget'] = budget
    return result


def main():
    module_envelope.run(work, dict(
        state=dict(type='str', default='status', choices=['acquired', 'renewed', 'released', 'check', 'status', 'reset']),
        state_dir=dict(type='path', default='/var/lib/claude-flow-runbook/guard'),
        incident_id=dict(type='str'),
        run_id=dict(type='str'),
        lease=dict(type='int', default=0),
        owner=dict(type='str', default='ansible'),
        ttl=dict(type='int', default=3600),
        wait_timeout=dict(type='int', default=0),
        poll_interval=dict(type='float', default=1.0),
        cooldown=dict(type='int', default=300),
        window=dict(type='int', default=3600),
        max_remediations=dict(type='int', default=3),
        outcome=dict(type='str', default='noop', choices=['remediated', 'failed', 'noop']),
        actions=dict(type='list', elements='str', default=[]),
        force=dict(type='bool', default=False),
    ), errors=(GuardError,), wrapped=(IOError, OSError),
        wrap_msg='cannot use the guard state in {state_dir} ({exc}); check that the directory is writable',
        required_if=[('state', 'acquired', ['incident_id']), ('state', 'renewed', ['incident_id']),
                     ('state', 'released', ['incident_id'])])


if __name__ == '__main__':
    main()
