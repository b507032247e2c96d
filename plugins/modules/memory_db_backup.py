#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: memory_db_backup
short_description: Take a verified online backup of claude-flow's memory.db
version_added: "0.1.0"
description:
  - Copies the database with SQLite's online backup API while the service keeps it open and writes to it
    (in WAL mode writers are not blocked); never with C(cp).
  - The copy is written to a temp file in O(dest), fsynced, checked with C(PRAGMA integrity_check), turned into a
    single self-contained file (C(journal_mode=DELETE), no C(-wal)/C(-shm)), then moved into place with an atomic
    rename and the directory fsynced. Mode C(0600).
  - Writes C(<backup>.manifest.json) beside it with sha256, size, source, creation time, schema profile, integrity,
    SQLite version and per-table row counts. A backup is I(verified) when its manifest exists, the sha256 matches
    the file and the integrity is C(ok); M(claude_flow.runbook.memory_db_restore) restores only verified backups
    unless told otherwise.
  - Refuses a source that fails C(PRAGMA quick_check), so that a corrupt copy cannot rotate good backups out.
  - Checks free space first; on a full disk the partial file is removed and the module fails saying how many bytes
    are free and needed. Previous backups are never touched by a failed run.
extends_documentation_fragment:
  - claude_flow.runbook.attributes
  - claude_flow.runbook.memory_db
options:
  dest:
    description:
      - Directory that receives the backup, e.g. the release directory C(/opt/claude-code-backups/<release>)
        of the runbook. Created (mode C(0700)) when missing.
    type: path
    required: true
  name:
    description:
      - File name of the backup inside O(dest) (or inside the timestamped folder).
      - A plain file name only (letters, digits, C(.), C(_), C(-)); anything else is refused.
    type: str
    default: memory.db.backup
  timestamped:
    description:
      - Put the backup in C(<dest>/<YYYYmmddTHHMMSSZ>/<name>) so that several are kept side by side.
      - A second run within the same second gets C(<YYYYmmddTHHMMSSZ>-<microseconds>); no two runs ever get one folder.
    type: bool
    default: false
  keep:
    description:
      - With O(timestamped=true), delete the oldest timestamped backups under O(dest) beyond this many (the new
        one included).
      - The newest I(verified) backup is never deleted, even when it is older than the O(keep) newest.
      - Omit to keep everything.
    type: int
  allow_corrupt_source:
    description:
      - Back up a source that fails C(quick_check) anyway (e.g. to keep its bytes before a repair attempt).
      - The manifest then records the failed integrity, and the backup never counts as verified.
    type: bool
    default: false
seealso:
  - module: claude_flow.runbook.memory_db_restore
  - module: claude_flow.runbook.memory_db_recover
  - module: claude_flow.runbook.memory_db_check
    description: Check the live database first; a corrupt source is refused unless O(allow_corrupt_source=true).
attributes:
  check_mode:
    details:
      - Checks the source (quick_check), the free space and the retention, and returns RV(would_backup_to) and
        RV(would_delete); writes nothing.
      - An idle WAL-mode source is opened immutable, so not even C(-wal)/C(-shm) files appear beside it.
'''

EXAMPLES = r'''
- name: Back up the DB next to the release, as the runbook expects
  claude_flow.runbook.memory_db_backup:
    path: /opt/claude-code-production/.swarm/memory.db
    dest: /opt/claude-code-backups/{{ release }}
  register: db_backup

- name: Keep the last 7 timestamped backups (never losing the newest verified one)
  claude_flow.runbook.memory_db_backup:
    path: /opt/claude-code-production/.swarm/memory.db
    dest: /var/backups/claude-code
    timestamped: true
    keep: 7

- name: Keep the bytes of a damaged DB before trying to repair it
  claude_flow.runbook.memory_db_backup:
    path: /opt/claude-code-production/.swarm/memory.db
    dest: /var/backups/claude-code/damaged
    allow_corrupt_source: true
'''

RETURN = r'''
backup_path:
  description: Path of the backup file written.
  returned: changed
  type: str
  sample: /opt/claude-code-backups/v2.7.47/memory.db.backup
manifest_path:
  description: Path of the manifest written beside the backup.
  returned: changed
  type: str
  sample: /opt/claude-code-backups/v2.7.47/memory.db.backup.manifest.json
manifest:
  description: The manifest's content.
  returned: changed
  type: dict
  contains:
    sha256:
      description: sha256 of the backup file.
      type: str
    size_bytes:
      description: Size of the backup file.
      type: int
    source:
      description: Real path of the database that was copied.
      type: str
    created_at:
      description: When the copy was taken, ISO 8601 UTC.
      type: str
      sample: "2025-01-31T12:00:00.123456Z"
    schema_profile:
      description: C(runbook), C(reasoningbank), C(v3) or C(unknown).
      type: str
    integrity:
      description: C(ok), or the list of problems C(integrity_check) reported on the copy.
      type: raw
    source_quick_check:
      description: C(ok), or the problems C(quick_check) reported on the source.
      type: raw
    source_journal_mode:
      description: Journal mode of the source (C(wal) for claude-flow 2.7+).
      type: str
    journal_mode:
      description: Journal mode of the backup file, always C(delete).
      type: str
    sqlite_version:
      description: SQLite library version that made the copy.
      type: str
    tables:
      description: Row count per table in the copy.
      type: dict
verified:
  description: Whether the new backup counts as verified (false for a corrupt source).
  returned: changed
  type: bool
deleted:
  description: Backups removed by O(keep).
  returned: changed
  type: list
  elements: str
created_dest:
  description: Whether O(dest) had to be created.
  returned: changed
  type: bool
would_backup_to:
  description: Where the backup would be written.
  returned: check mode
  type: str
would_write_manifest:
  description: Where the manifest would be written.
  returned: check mode
  type: str
would_create_dest:
  description: Whether O(dest) would be created.
  returned: check mode
  type: bool
would_delete:
  description: Backups O(keep) would remove.
  returned: check mode
  type: list
  elements: str
source_integrity:
  description: Result of C(quick_check) on the source.
  returned: check mode, or failure on a corrupt source
  type: raw
needed_bytes:
  description: Free bytes the copy needs at O(dest).
  returned: check mode, or failure on a full disk
  type: int
free_bytes:
  description: Free bytes at O(dest).
  returned: check mode, or failure on a full disk
  type: int
'''

import sqlite3

from ansible_collections.claude_flow.runbook.plugins.module_utils import memory_db, memory_db_backup, module_envelope


def work(module, params):
    return memory_db_backup.take_backup(
        params['path'], params['dest'], name=params['name'], timestamped=params['timestamped'],
        keep=params['keep'], allow_corrupt_source=params['allow_corrupt_source'],
        busy_timeout=params['busy_timeout'], check_mode=module.check_mode)


def main():
    module_envelope.run(work, memory_db.common_argument_spec(
        dest=dict(type='path', required=True),
        name=dict(type='str', default=memory_db_backup.DEFAULT_NAME),
        timestamped=dict(type='bool', default=False),
        keep=dict(type='int'),
        allow_corrupt_source=dict(type='bool', default=False),
    ), errors=(memory_db.MemoryDbError,), wrapped=(OSError, sqlite3.Error),
        wrap_msg='backup of {path} into {dest} failed: {exc}')


if __name__ == '__main__':
    main()
