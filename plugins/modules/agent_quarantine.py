#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: agent_quarantine
short_description: Record claude-flow agents as quarantined in this collection's registry file
version_added: 0.1.0
description:
  - The runbook's C(./claude-flow verify quarantine <agent-name>) does not exist in any claude-flow release
    (2.x silently prints the status screen and exits 0; 3.x C(verify) checks installed files).
    This module keeps the collection's own quarantine registry instead, a JSON file.
  - B(claude-flow itself does not read this file.) Quarantining an agent here has no effect on the
    platform unless the platform, a wrapper around it, or your playbooks are configured to honour the
    registry. It is the record of the decision, and the source of the quarantined ratio the severity
    table uses (P1 when more than 10% of agents are quarantined).
  - Writes are atomic (temporary file, fsync, rename, fsync of the directory) under an exclusive lock, and
    keep the file's mode and owner.
extends_documentation_fragment:
  - claude_flow.runbook.attributes
options:
  agent:
    description:
      - The agent to quarantine or release, as truth scores name it (an agent type such as V(coder)).
      - 1 to 64 letters, digits, V(_), V(.) or V(-); anything else is rejected.
      - Required unless O(state=query).
    type: str
  state:
    description:
      - V(present) quarantines O(agent); V(absent) releases it; V(query) only reads the registry.
      - V(present) on an agent already quarantined changes nothing, unless O(reason) or O(incident_id) is
        given and differs from the recorded one; then the entry is updated (C(changed=true)) and keeps its
        original C(quarantined_at).
    type: str
    choices: [present, absent, query]
    default: present
  reason:
    description: Why the agent is quarantined (one line).
    type: str
  incident_id:
    description: The incident the decision belongs to, for example V(INC-20260101-120000).
    type: str
  app_dir:
    description: The claude-flow deployment directory.
    type: path
    default: /opt/claude-code-production
  registry:
    description:
      - The registry file. Defaults to C(<app_dir>/.swarm/quarantine.json).
      - Its directory is created when only that last directory is missing.
    type: path
  known_agents:
    description:
      - All agents of the deployment, to compute RV(quarantined_ratio).
      - When not given, the agent types in the truth state file (O(state_file)) and in a
        C(verification_history) table of the database (O(path)) are used.
    type: list
    elements: str
  state_file:
    description: The truth state file for RV(known_agents). Defaults to C(<app_dir>/.swarm/verification-memory.json).
    type: path
  path:
    description: The memory database for RV(known_agents). Defaults to C(<app_dir>/.swarm/memory.db); opened read-only.
    type: path
attributes:
  check_mode:
    details: Reports the action and the registry it would write (with a diff) and writes nothing.
  diff_mode:
    support: full
    details: Shows the registry entries before and after.
'''

EXAMPLES = r'''
- name: Quarantine the coder agents for this incident
  claude_flow.runbook.agent_quarantine:
    agent: coder
    reason: truth score 0.67 below 0.90
    incident_id: INC-20260101-120000

- name: Release them again
  claude_flow.runbook.agent_quarantine:
    agent: coder
    state: absent

- name: Read the registry and the quarantined share of agents
  claude_flow.runbook.agent_quarantine:
    state: query
    known_agents: [coder, tester, reviewer, backend-dev]
  register: quarantine

- name: More than 10% of agents quarantined is a P1
  ansible.builtin.debug:
    msg: "{{ (quarantine.quarantined_ratio * 100) | round(1) }}% of agents are quarantined"
  when:
    - quarantine.quarantined_ratio is not none
    - quarantine.quarantined_ratio > 0.10
'''

RETURN = r'''
action:
  description: What was (or in check mode would be) done, V(added), V(updated), V(removed) or V(none).
  returned: always
  type: str
  sample: added
entry:
  description: The registry entry of O(agent) afterwards; null when it is not quarantined or no agent was given.
  returned: always
  type: dict
  sample: {"agent": "coder", "reason": "truth score 0.67", "incident_id": "INC-1",
           "quarantined_at": "2026-11-28T07:00:00Z", "updated_at": "2026-11-28T07:00:00Z"}
quarantined:
  description: All registry entries afterwards, sorted by agent.
  returned: always
  type: list
  elements: dict
  sample: [{"agent": "coder", "reason": "truth score 0.67", "incident_id": "INC-1",
            "quarantined_at": "2026-11-28T07:00:00Z", "updated_at": "2026-11-28T07:00:00Z"}]
quarantined_agents:
  description: The names in RV(quarantined).
  returned: always
  type: list
  elements: str
  sample: [coder]
known_agents:
  description: The agents RV(quarantined_ratio) is measured against; null when unknown.
  returned: always
  type: list
  elements: str
  sample: [backend-dev, coder, reviewer, tester]
known_agents_source:
  description: Where RV(known_agents) came from, V(option), V(state_file), V(db) or V(state_file+db); null when unknown.
  returned: always
  type: str
  sample: state_file
quarantined_ratio:
  description:
    - Quarantined agents divided by all agents (RV(known_agents) plus any quarantined agent not among them).
    - Null, with RV(quarantined_ratio_reason), when the set of agents is unknown. Unknown is not a breach.
  returned: always
  type: float
  sample: 0.25
quarantined_ratio_reason:
  description: Why RV(quarantined_ratio) is null.
  returned: always
  type: str
  sample: null
unknown_quarantined:
  description: Quarantined agents that are not in RV(known_agents) (a typo, or an agent type that no longer runs).
  returned: always
  type: list
  elements: str
  sample: []
registry:
  description: The registry file.
  returned: always
  type: str
  sample: /opt/claude-code-production/.swarm/quarantine.json
'''

import os

from ansible_collections.claude_flow.runbook.plugins.module_utils import module_envelope, quarantine, truth


def work(module, params):
    app_dir = params['app_dir']
    registry = params['registry'] or os.path.join(app_dir, quarantine.REGISTRY_FILE)
    try:
        agent = quarantine.validate_agent(params['agent']) if params['agent'] is not None else None
        reason = quarantine.validate_text('reason', params['reason'])
        incident_id = quarantine.validate_text('incident_id', params['incident_id'], limit=128)
        known, known_source, known_why = quarantine.known_agents(
            params['known_agents'], params['state_file'] or os.path.join(app_dir, truth.STATE_FILE),
            params['path'] or os.path.join(app_dir, truth.DB_FILE))
        before = quarantine.load(registry)
        after, action = quarantine.apply(before, params['state'], agent, reason, incident_id)
        if action != 'none' and not module.check_mode:
            quarantine.ensure_directory(registry)
            with quarantine.Locked(registry):
                # Re-read under the lock: another run may have written since.
                before = quarantine.load(registry)
                after, action = quarantine.apply(before, params['state'], agent, reason, incident_id)
                if action != 'none':
                    quarantine.save(registry, after)
    except quarantine.QuarantineError as exc:
        raise module_envelope.ModuleFailure(str(exc), registry=registry)
    except (IOError, OSError) as exc:
        raise module_envelope.ModuleFailure('cannot write quarantine registry %s (%s); check the directory permissions '
                                            'and free space' % (registry, exc), registry=registry)

    names = [e['agent'] for e in after]
    entry = [e for e in after if e['agent'] == agent]
    ratio = quarantine.ratio(names, known)
    result = dict(
        changed=action != 'none',
        action=action,
        entry=entry[0] if entry else None,
        quarantined=after,
        quarantined_agents=names,
        known_agents=known,
        known_agents_source=known_source,
        quarantined_ratio=ratio,
        quarantined_ratio_reason=known_why if ratio is None else None,
        unknown_quarantined=sorted(set(names) - set(known)) if known is not None else [],
        registry=registry,
    )
    if action != 'none':
        result['diff'] = {'before': {'quarantined': before}, 'after': {'quarantined': after},
                          'before_header': registry, 'after_header': registry}
    return result


def main():
    module_envelope.run(work, dict(
        agent=dict(type='str'),
        state=dict(type='str', default='present', choices=['present', 'absent', 'query']),
        reason=dict(type='str'),
        incident_id=dict(type='str'),
        app_dir=dict(type='path', default='/opt/claude-code-production'),
        registry=dict(type='path'),
        known_agents=dict(type='list', elements='str'),
        state_file=dict(type='path'),
        path=dict(type='path'),
    ), required_if=[('state', 'present', ['agent']), ('state', 'absent', ['agent'])])


if __name__ == '__main__':
    main()
