#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: memory_db_check
short_description: Check the integrity of a claude-flow memory.db without writing to it
version_added: 0.1.0
description:
  - Runs C(PRAGMA quick_check) (default) or C(PRAGMA integrity_check) on the database, read-only.
  - The runbook's C(sqlite3 .swarm/memory.db "PRAGMA integrity_check;"), made safe to run while the
    service holds the database open, and precise about files that are not databases at all.
  - A missing, zero-length, non-SQLite or truncated file gives RV(ok=false) with an error that says
    what is wrong and what to do; the module itself does not fail for a broken database.
extends_documentation_fragment:
  - claude_flow.runbook.attributes
  - claude_flow.runbook.memory_db
options:
  mode:
    description:
      - V(quick) runs C(quick_check) (linear time; it skips the index-to-row cross-checks).
      - V(full) runs C(integrity_check), which also verifies every index against its table.
    type: str
    choices: [quick, full]
    default: quick
  foreign_key_check:
    description: Also run C(PRAGMA foreign_key_check); violations make RV(ok) false.
    type: bool
    default: false
  max_errors:
    description: Stop after this many errors (the pragma's argument). 1 to 1000000.
    type: int
    default: 100
attributes:
  check_mode:
    details: The module never writes, so check mode runs the same read-only check.
'''

EXAMPLES = r'''
- name: P0 step 2 - is the database corrupt?
  claude_flow.runbook.memory_db_check:
    path: /opt/claude-code-production/.swarm/memory.db
  register: db_check

- name: Full integrity check including indexes and foreign keys
  claude_flow.runbook.memory_db_check:
    path: /opt/claude-code-production/.swarm/memory.db
    mode: full
    foreign_key_check: true
'''

RETURN = r'''
ok:
  description: True when the check reported C(ok) and no foreign key violation was found.
  returned: always
  type: bool
errors:
  description: The check's messages, or the reason the file could not be checked at all.
  returned: always
  type: list
  elements: str
mode:
  description: The check that ran.
  returned: always
  type: str
  sample: quick
journal_mode:
  description: The database's journal mode (C(wal), C(delete), ...); null when it could not be opened.
  returned: always
  type: str
wal_present:
  description: Whether a C(-wal) file exists beside the database.
  returned: always
  type: bool
size_bytes:
  description: Size of the main database file; null when it does not exist.
  returned: always
  type: int
page_count:
  description: Pages in the database as SQLite reports them; null when it could not be opened.
  returned: always
  type: int
schema_profile:
  description: C(runbook), C(reasoningbank), C(v3) or C(unknown); null when it could not be opened.
  returned: always
  type: str
foreign_key_errors:
  description: Rows from C(PRAGMA foreign_key_check) when O(foreign_key_check=true).
  returned: always
  type: list
  elements: dict
queries:
  description: SQL the module ran.
  returned: always
  type: list
  elements: str
'''

import os

from ansible_collections.claude_flow.runbook.plugins.module_utils import memory_db, module_envelope
from ansible_collections.claude_flow.runbook.plugins.module_utils.safe_files import regular_file_problem


def work(module, params):
    memory_db.check_ranges(module_envelope.ModuleFailure, max_errors=(params['max_errors'], 1, 1000000),
                           busy_timeout=(params['busy_timeout'], 0, memory_db.MAX_BUSY_TIMEOUT_MS))
    # A FIFO or device would block or never end a read: say what it is instead of opening it.
    special = regular_file_problem(os.path.realpath(params['path'])) if os.path.lexists(params['path']) else None
    if special:
        return dict(changed=False, ok=False, errors=['%s; point path at the memory.db file' % special],
                    mode=params['mode'], journal_mode=None, wal_present=False, size_bytes=None, page_count=None,
                    schema_profile=None, foreign_key_errors=[], queries=[])
    result = memory_db.check_integrity(params['path'], mode=params['mode'], foreign_keys=params['foreign_key_check'],
                                       max_errors=params['max_errors'], busy_timeout_ms=params['busy_timeout'])
    result.pop('page_size', None)
    result['changed'] = False
    return result


def main():
    module_envelope.run(work, memory_db.common_argument_spec(
        mode=dict(type='str', choices=['quick', 'full'], default='quick'),
        foreign_key_check=dict(type='bool', default=False),
        max_errors=dict(type='int', default=100),
    ))


if __name__ == '__main__':
    main()
