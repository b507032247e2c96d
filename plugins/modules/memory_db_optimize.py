#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: memory_db_optimize
short_description: ANALYZE, recommended indexes, WAL mode and optional VACUUM for memory.db, idempotently
version_added: 0.1.0
description:
  - The runbook's Common issue 2 resolution (C(ANALYZE), C(VACUUM), C(CREATE INDEX IF NOT EXISTS ...)) and
    its prevention advice (enable WAL mode), reporting a change only when something changed.
  - Creates the indexes the runbook's queries need for the detected schema profile
    (for example C(patterns(confidence)), C(patterns(last_used)) and the time columns windows filter on).
  - Runs C(ANALYZE) when statistics are missing or an index was created (or always, see O(analyze)),
    then C(PRAGMA optimize).
  - Refuses to write to a database that fails C(quick_check).
extends_documentation_fragment:
  - claude_flow.runbook.attributes
  - claude_flow.runbook.memory_db
options:
  create_indexes:
    description: Create the recommended indexes that are missing.
    type: bool
    default: true
  wal:
    description: Switch the database to C(journal_mode=WAL) when it is not.
    type: bool
    default: true
  analyze:
    description:
      - V(auto) runs C(ANALYZE) when C(sqlite_stat1) is missing or an index was created;
        V(always) every run (then the module always reports a change); V(never) skips it.
    type: str
    choices: [auto, always, never]
    default: auto
  vacuum:
    description:
      - Run C(VACUUM) after checking that about the database's size is free on its filesystem.
      - VACUUM always rewrites the file, so a run with it reports a change.
    type: bool
    default: false
attributes:
  check_mode:
    details: Lists the statements it would run and runs none.
'''

EXAMPLES = r'''
- name: Common issue 2 - optimize the database
  claude_flow.runbook.memory_db_optimize:
    path: /opt/claude-code-production/.swarm/memory.db

- name: Scheduled maintenance with VACUUM
  claude_flow.runbook.memory_db_optimize:
    path: /opt/claude-code-production/.swarm/memory.db
    vacuum: true
'''

RETURN = r'''
actions:
  description: Statements run (or, in check mode, that would run), VACUUM and PRAGMA optimize aside.
  returned: always
  type: list
  elements: str
would_run:
  description: Same as RV(actions), in check mode.
  returned: in check mode
  type: list
  elements: str
indexes_created:
  description: Names of indexes created.
  returned: always
  type: list
  elements: str
journal_mode_before:
  description: Journal mode before the run.
  returned: always
  type: str
journal_mode:
  description: Journal mode after the run.
  returned: always
  type: str
vacuum:
  description: What VACUUM did or would do; null when not asked.
  returned: always
  type: dict
schema_profile:
  description: Detected schema profile; it decides which indexes are recommended.
  returned: always
  type: str
queries:
  description: SQL run.
  returned: always
  type: list
  elements: str
'''

from ansible_collections.claude_flow.runbook.plugins.module_utils import memory_db, module_envelope
from ansible_collections.claude_flow.runbook.plugins.module_utils.memory_db_maintenance import optimize


def work(module, params):
    return optimize(params['path'], create_indexes=params['create_indexes'], wal=params['wal'],
                    vacuum=params['vacuum'], analyze=params['analyze'], check_mode=module.check_mode,
                    busy_timeout_ms=params['busy_timeout'])


def main():
    module_envelope.run(work, memory_db.common_argument_spec(
        create_indexes=dict(type='bool', default=True),
        wal=dict(type='bool', default=True),
        analyze=dict(type='str', choices=['auto', 'always', 'never'], default='auto'),
        vacuum=dict(type='bool', default=False),
    ), errors=(memory_db.MemoryDbError,))


if __name__ == '__main__':
    main()
