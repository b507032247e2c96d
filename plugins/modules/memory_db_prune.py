#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: memory_db_prune
short_description: Delete stale or low-confidence patterns from memory.db, in batches, with a safety cap
version_added: 0.1.0
description:
  - The runbook's C(DELETE FROM patterns WHERE last_used < datetime('now', '-30 days') AND usage_count < 5)
    and its siblings, with every value bound, in batches so the service's writers are never blocked long.
  - Counts what each rule matches first; when the total exceeds O(max_rows) nothing is deleted.
  - Refuses to write to a database that fails C(quick_check).
  - Back up first (M(claude_flow.runbook.memory_db_backup)); the maintenance role does.
extends_documentation_fragment:
  - claude_flow.runbook.attributes
  - claude_flow.runbook.memory_db
options:
  rules:
    description:
      - Rules, ORed together. Each is a runbook rule name or a dict whose conditions are ANDed.
      - V(stale_patterns) - last used over 30 days ago and used fewer than 5 times (P1 step 3, Common issue 4).
      - V(old_patterns) - last used over 90 days ago and used fewer than 3 times (Common issue 2).
      - V(goap_low_confidence) - type C(goap_planning) with confidence below 0.5 (Common issue 5).
      - "A dict may have C(name), C(older_than) (duration such as V(30d), compared with the last-used time),
        C(usage_below), C(type), C(confidence_below), C(confidence_above)."
      - Patterns never used (no last-used time) never match C(older_than), as in the runbook's SQL.
    type: list
    elements: raw
    default: [stale_patterns]
  max_rows:
    description: Fail before deleting anything when the rules match more rows than this. 0 or more.
    type: int
    default: 100000
  batch_size:
    description: Rows deleted per transaction. 1 to 1000000.
    type: int
    default: 5000
  vacuum:
    description:
      - Run C(VACUUM) afterwards (needs free space about the size of the database).
      - In check mode VACUUM does not run; the result says it would.
    type: bool
    default: false
attributes:
  check_mode:
    details: Counts per rule and deletes nothing; VACUUM is reported, not run.
'''

EXAMPLES = r'''
- name: P1 step 3 - clear stale patterns and VACUUM
  claude_flow.runbook.memory_db_prune:
    path: /opt/claude-code-production/.swarm/memory.db
    rules: [stale_patterns]
    vacuum: true

- name: Common issue 5 - clear stale planning patterns, custom rule
  claude_flow.runbook.memory_db_prune:
    path: /opt/claude-code-production/.swarm/memory.db
    rules:
      - name: goap_low
        type: goap_planning
        confidence_below: 0.5
    max_rows: 20000
'''

RETURN = r'''
matched:
  description: Rows each rule matches (before deletion).
  returned: always
  type: dict
  sample: {stale_patterns: 120}
total_matched:
  description: Rows matched by any rule.
  returned: always
  type: int
deleted:
  description: Rows deleted (0 in check mode).
  returned: always
  type: int
would_delete:
  description: Rows that would be deleted.
  returned: in check mode
  type: int
batches:
  description: Delete transactions run.
  returned: always
  type: int
vacuum:
  description: What VACUUM did or would do (C(ran), C(would_run), sizes, free space); null when not asked.
  returned: always
  type: dict
schema_profile:
  description: Detected schema profile; it maps each rule to this schema's tables and columns.
  returned: always
  type: str
queries:
  description: SQL run, with bound parameters shown.
  returned: always
  type: list
  elements: str
'''

from ansible_collections.claude_flow.runbook.plugins.module_utils import memory_db, module_envelope
from ansible_collections.claude_flow.runbook.plugins.module_utils.memory_db_maintenance import prune


def work(module, params):
    return prune(params['path'], params['rules'], params['max_rows'], params['batch_size'], vacuum=params['vacuum'],
                 check_mode=module.check_mode, busy_timeout_ms=params['busy_timeout'])


def main():
    module_envelope.run(work, memory_db.common_argument_spec(
        rules=dict(type='list', elements='raw', default=['stale_patterns']),
        max_rows=dict(type='int', default=100000),
        batch_size=dict(type='int', default=5000),
        vacuum=dict(type='bool', default=False),
    ), errors=(memory_db.MemoryDbError,))


if __name__ == '__main__':
    main()
