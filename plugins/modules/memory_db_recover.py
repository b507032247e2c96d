#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: memory_db_recover
short_description: Salvage a damaged memory.db into a new file with SQLite's .recover
version_added: "0.1.0"
description:
  - Runs the equivalent of C(sqlite3 path .recover | sqlite3 dest) (two processes joined by a pipe, no shell, with
    a timeout) and writes the result to the NEW file O(dest). The original database is only ever opened read-only
    and is never changed.
  - When no usable sqlite3 CLI exists (none on C(PATH), O(sqlite3_binary) missing, older than 3.29, or built
    without the C(sqlite_dbpage) table C(.recover) needs, as Debian's is) a Python salvage is used instead and the
    reason is returned in RV(fallback_reason). It opens the source read-only and copies each table row by row in
    rowid order; past an unreadable page it probes further rowids to find where readable rows start again. It
    cannot read raw pages, so it recovers less than C(.recover) from a broken b-tree and has no C(lost_and_found).
  - The result is checked with C(integrity_check) before it is moved to O(dest); a result that fails is discarded.
  - SQLite says C(.recover) output is suspect. Compare RV(tables) with a backup (O(backup) gives RV(deltas)) and use
    the recovered file in place of a backup only when no verified backup exists.
extends_documentation_fragment:
  - claude_flow.runbook.attributes
  - claude_flow.runbook.memory_db
options:
  backup:
    description:
      - A backup file to compare row counts with; gives RV(deltas).
    type: path
  dest:
    description:
      - The new file to write, e.g. C(.swarm/memory-recovered.db). Must not be O(path) or its C(-wal)/C(-shm).
      - Must not exist, unless O(force=true). Its directory is created (mode C(0700)) when missing.
    type: path
    required: true
  drain_timeout:
    description:
      - Seconds to wait after the swap until no process holds the replaced O(dest) open. 1 to 3600.
    type: int
    default: 30
  force:
    description:
      - Replace an existing O(dest). Its set (C(db)/C(-wal)/C(-shm)) is first preserved in O(preserve_dir), under
        SQLite's exclusive lock on O(dest) held until the new file is in place (as M(claude_flow.runbook.memory_db_restore)
        does), moved there on the same filesystem, copied (after a free-space check) otherwise.
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for the exclusive lock on an existing O(dest) (O(force=true)). 1 to 3600.
    type: int
    default: 30
  preserve_dir:
    description:
      - Where an existing O(dest) is preserved when O(force=true). Defaults to C(<directory of dest>/preserved).
    type: path
  sqlite3_binary:
    description:
      - The sqlite3 CLI to run C(.recover) with. Defaults to C(sqlite3) found on C(PATH).
      - When it is missing or unusable the Python salvage is used; the module does not fail for that.
    type: str
  timeout:
    description:
      - Seconds the C(.recover) pipeline may run before it is killed and the module fails. 1 to 86400.
    type: int
    default: 600
notes:
  - Check mode reads nothing but the source's sha256, and returns RV(would_write) and RV(would_use_method).
seealso:
  - module: claude_flow.runbook.memory_db_restore
  - module: claude_flow.runbook.memory_db_backup
  - name: SQLite recovery
    description: Recovering data from a corrupt SQLite database.
    link: https://www.sqlite.org/recovery.html
attributes:
  check_mode:
    support: partial
    details:
      - Validates the options and returns RV(would_write) and the method it would use; the salvage itself is not run,
        so whether it succeeds is only known in a real run.
'''

EXAMPLES = r'''
- name: Salvage the damaged DB beside it (runbook, database corruption)
  claude_flow.runbook.memory_db_recover:
    path: /opt/claude-code-production/.swarm/memory.db
    dest: /opt/claude-code-production/.swarm/memory-recovered.db
    backup: /opt/claude-code-backups/v2.7.46/memory.db.backup
  register: recovered

- name: Say how much the salvage got back compared with the backup
  ansible.builtin.debug:
    msg: "{{ recovered.method }} recovered {{ recovered.tables }}; vs backup {{ recovered.deltas }}"
'''

RETURN = r'''
recovered_to:
  description: The file written (O(dest)).
  returned: changed
  type: str
method:
  description: C(sqlite3_cli) or C(python).
  returned: changed
  type: str
fallback_reason:
  description: Why the sqlite3 CLI was not used; null when it was.
  returned: always
  type: str
tables:
  description: Rows per table in the recovered file (C(lost_and_found) excluded).
  returned: changed
  type: dict
  sample: {"patterns": 1200, "task_trajectories": 5000}
lost_and_found:
  description: Rows C(.recover) could not place in their table and put in C(lost_and_found).
  returned: changed
  type: int
integrity:
  description: C(ok) (a result that fails is discarded, and the module fails).
  returned: changed
  type: str
schema_profile:
  description: Schema profile of the recovered file.
  returned: changed
  type: str
backup_tables:
  description: Rows per table in O(backup).
  returned: when O(backup) is given
  type: dict
deltas:
  description: Per table, recovered rows minus O(backup) rows (negative means rows lost since or by the damage).
  returned: when O(backup) is given
  type: dict
  sample: {"patterns": -12, "task_trajectories": 0}
source_sha256:
  description: sha256 of O(path) before the run; it is checked again afterwards.
  returned: always
  type: str
sha256:
  description: sha256 of O(dest).
  returned: changed
  type: str
salvage_warnings:
  description: Errors reported while salvaging (unreadable regions, rows or indexes that could not be copied).
  returned: changed
  type: list
  elements: str
preserved:
  description: Where an existing O(dest) was preserved (O(force=true)); null otherwise.
  returned: changed
  type: dict
late_commits:
  description: Commits that reached the preserved O(dest) set after its preserve point (C(count), C(preserved_in)).
  returned: changed
  type: dict
swept_temps:
  description: Temp files of killed earlier runs that were removed beside O(dest).
  returned: when any
  type: list
  elements: str
would_write:
  description: The file that would be written.
  returned: check mode
  type: str
would_use_method:
  description: The method that would be tried first.
  returned: check mode
  type: str
would_preserve:
  description: Files of an existing O(dest) that would be preserved.
  returned: check mode
  type: list
  elements: str
would_create_dir:
  description: Whether the directory of O(dest) would be created.
  returned: check mode
  type: bool
created_dir:
  description: Whether the directory of O(dest) was created.
  returned: changed
  type: bool
'''

import sqlite3

from ansible_collections.claude_flow.runbook.plugins.module_utils import memory_db, memory_db_recover, module_envelope


def work(module, params):
    return memory_db_recover.recover(
        params['path'], params['dest'], force=params['force'], sqlite3_binary=params['sqlite3_binary'],
        timeout=params['timeout'], backup=params['backup'], preserve_dir=params['preserve_dir'],
        busy_timeout=params['busy_timeout'], check_mode=module.check_mode, lock_timeout=params['lock_timeout'],
        drain_timeout=params['drain_timeout'])


def main():
    module_envelope.run(work, memory_db.common_argument_spec(
        dest=dict(type='path', required=True),
        force=dict(type='bool', default=False),
        preserve_dir=dict(type='path'),
        sqlite3_binary=dict(type='str'),
        timeout=dict(type='int', default=memory_db_recover.DEFAULT_TIMEOUT),
        backup=dict(type='path'),
        lock_timeout=dict(type='int', default=30),
        drain_timeout=dict(type='int', default=30),
    ), errors=(memory_db.MemoryDbError,), wrapped=(OSError, sqlite3.Error),
        wrap_msg='recovery of {path} into {dest} failed: {exc}')


if __name__ == '__main__':
    main()
