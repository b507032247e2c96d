#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: memory_db_restore
short_description: Restore claude-flow's memory.db from a verified backup, without losing the current one
version_added: "0.1.0"
description:
  - Restores from an explicit backup file O(src), or from the newest I(verified) backup found under O(backup_dir)
    (see M(claude_flow.runbook.memory_db_backup) for what verified means). Candidates that fail verification are
    skipped and listed in RV(skipped_backups) with the reason for each.
  - Refuses while any process holds the database (or its C(-wal)/C(-shm)) open, naming the processes, unless
    O(force=true). Stop the service first.
  - The backup is copied to a temp file beside the database, fsynced and checked with C(integrity_check).
  - Then SQLite's own EXCLUSIVE lock is taken on the database (waiting up to O(lock_timeout) for open connections
    to finish) and held until the new file is in place, so no commit can land between the preserve point and the
    swap, also from writers that open, commit and close per write (claude-flow hooks and CLI calls).
  - Under the lock the current C(db)/C(-wal)/C(-shm) set is preserved in a new folder under O(preserve_dir) with the
    sha256 of each file in a C(MANIFEST.json), moved there (the DB hard-linked, its sidecars renamed) when
    O(preserve_dir) is on the same filesystem, copied otherwise (after a free-space check). The temp file is then
    renamed over O(path) in one atomic step (the path never goes missing), and the module waits up to
    O(drain_timeout) until no process holds the replaced file open (writers that opened it wait on the lock and give
    up with C(SQLITE_BUSY); they never committed). RV(late_commits) counts commits that still reached the preserved
    set (0 unless the drain timed out, which fails the module).
  - O(path) must resolve inside its own directory (a final symbolic link pointing elsewhere is refused), and the
    database and its sidecars must be regular files (a FIFO, device or socket is refused without opening it).
    The default O(preserve_dir) must resolve inside the database's directory. Candidates under O(backup_dir) must
    resolve inside it; names that are not valid UTF-8 are skipped with a reason.
  - The restored database is checked with C(integrity_check) again. Temp files of a killed earlier run are removed.
  - Idempotent. When the database already holds the chosen backup's content, nothing is done and C(changed) is false.
  - Kill-safe. At every instant O(path) holds the complete old file or the complete new one. A journal
    C(<path>.restore-journal.json) is written after the preserve step and before the sidecars are removed, and
    deleted after success. A later run that finds it first settles the interrupted restore, reported in
    RV(interrupted_restore) - C(completed) when the rename had happened (O(path) equals the backup; the journal is
    dropped after an integrity check), C(rolled_back) when it had not (the removed C(-wal)/C(-shm) are put back
    from the preserved set, checked by sha256) - and then does its own work.
extends_documentation_fragment:
  - claude_flow.runbook.attributes
  - claude_flow.runbook.memory_db
options:
  src:
    description:
      - The backup file to restore. Mutually exclusive with O(backup_dir).
      - Its manifest C(<src>.manifest.json) must verify, unless O(allow_unverified=true).
    type: path
  backup_dir:
    description:
      - One or more directories searched (recursively, with O(pattern)) for backups. The matches of all of them are
        merged, newest first, and the newest one that verifies is restored. Newest means the manifest's
        C(created_at), then the file's modification time.
      - A directory that does not exist, or in which nothing matches, is listed in RV(skipped_backups); the module
        fails only when none of them is a directory.
      - Mutually exclusive with O(src).
    type: list
    elements: path
  pattern:
    description:
      - Glob relative to each O(backup_dir); C(**) matches any number of folders.
    type: str
    default: "**/memory.db.backup"
  max_candidates:
    description:
      - Verify at most this many of the newest candidates; older ones are listed in RV(skipped_backups) as not
        checked. Unset verifies every candidate until one passes. 1 to 1000.
    type: int
  dry_run:
    description:
      - Only pick the backup. Returns RV(would_restore_from) and RV(skipped_backups) and changes nothing, in a
        real run as in check mode; O(path) is then only the live database, which is never a candidate.
      - Fails like a real run when no candidate passes, with the message naming each skipped candidate and why.
      - Lets a role show its plan and choose once, before it stops a service.
    type: bool
    default: false
  expect_profile:
    description:
      - Skip backups whose schema profile differs (e.g. a claude-flow 3.x backup for a 2.7 release).
    type: str
    choices: [runbook, reasoningbank, v3, unknown]
  allow_unverified:
    description:
      - Accept backups that have no manifest, after a full C(integrity_check) of the file.
      - Backups whose manifest exists but does not match are never accepted.
    type: bool
    default: false
  force:
    description:
      - Do not refuse when processes hold the database open. The exclusive lock is still required, so a process
        that keeps a connection open makes the restore fail after O(lock_timeout) with nothing changed.
    type: bool
    default: false
  preserve_dir:
    description:
      - Where the current C(db)/C(-wal)/C(-shm) set is copied before it is replaced; one new folder per run.
      - Defaults to C(<directory of path>/preserved). Not used when there is no current database.
    type: path
  lock_timeout:
    description:
      - Seconds to wait for SQLite's exclusive lock on the database (open connections must finish) before failing
        with nothing changed. 1 to 3600.
    type: int
    default: 30
  drain_timeout:
    description:
      - Seconds to wait, after the swap and with the lock still held, until no process holds the replaced file open.
        Set it above the busy timeout of the application's writers (claude-flow uses 5 s). 1 to 3600.
    type: int
    default: 30
  journal_mode:
    description:
      - Journal mode the restored file starts in. Backups are single files in C(delete) mode; C(wal) (the default)
        sets the restored file to WAL, as claude-flow 2.7+ uses it; C(delete) keeps rollback mode; C(keep)
        leaves whatever the backup file has.
    type: str
    choices: [wal, delete, keep]
    default: wal
notes:
  - The restored file keeps the owner and mode of the file it replaces (or gets the directory's owner and C(0600)).
seealso:
  - module: claude_flow.runbook.memory_db_backup
  - module: claude_flow.runbook.memory_db_recover
  - module: claude_flow.runbook.memory_db_preserve
    description: Copies the current set the same way (exclusive lock, sha256, C(MANIFEST.json)) without replacing it.
attributes:
  check_mode:
    details:
      - Verifies the candidates, checks for processes holding the database, and returns RV(would_restore_from),
        RV(skipped_backups), the files it would preserve (with sha256) and the sidecars it would remove; writes nothing.
      - When no candidate passes it fails with the same message as a real run.
'''

EXAMPLES = r'''
- name: Stop the service before touching the DB
  ansible.builtin.systemd_service:
    name: claude-code-production
    state: stopped

- name: Restore the newest verified backup (runbook P0 database corruption)
  claude_flow.runbook.memory_db_restore:
    path: /opt/claude-code-production/.swarm/memory.db
    backup_dir: /opt/claude-code-backups
    expect_profile: reasoningbank
  register: restored

- name: Show what was skipped and why
  ansible.builtin.debug:
    var: restored.skipped_backups

- name: Pick the backup over two places, newest first, without touching anything
  claude_flow.runbook.memory_db_restore:
    path: /opt/claude-code-production/.swarm/memory.db
    backup_dir:
      - /opt/claude-code-backups
      - /var/backups/claude-code
    max_candidates: 5
    allow_unverified: true
    dry_run: true
  register: pick

- name: Restore one backup file, keeping the current set elsewhere
  claude_flow.runbook.memory_db_restore:
    path: /opt/claude-code-production/.swarm/memory.db
    src: /opt/claude-code-backups/v2.7.46/memory.db.backup
    preserve_dir: /var/lib/claude-code/preserved
'''

RETURN = r'''
restored_from:
  description: The backup file whose content O(path) now holds (also when nothing had to be done).
  returned: success, not in check mode
  type: str
  sample: /opt/claude-code-backups/v2.7.46/memory.db.backup
verified:
  description: Whether the chosen backup was verified by its manifest (false only with O(allow_unverified)).
  returned: success
  type: bool
preserved:
  description: Where the previous set was preserved; null when nothing was replaced.
  returned: success, not in check mode
  type: dict
  contains:
    dir:
      description: Folder holding the preserved copies and a MANIFEST.json.
      type: str
    files:
      description: One entry per preserved file with C(name), C(source), C(path), C(sha256) and C(size).
      type: list
      elements: dict
    method:
      description: C(move) (same filesystem) or C(copy).
      type: str
late_commits:
  description:
    - Commits that reached the preserved set after the preserve point, C(count) and C(preserved_in) (the folder
      that holds them, null when none), and C(changed_files).
  returned: changed
  type: dict
  sample: {count: 0, preserved_in: null, changed_files: []}
lock_waited_ms:
  description: How long the module waited for the exclusive lock.
  returned: changed
  type: int
drain:
  description: C(waited_ms) and C(holders_waited_out) (processes that had the replaced file open after the swap).
  returned: changed
  type: dict
swept_temps:
  description: Temp files of killed earlier runs that were removed.
  returned: when any
  type: list
  elements: str
removed:
  description: Sidecar files (C(-wal), C(-shm), C(-journal)) of the old database that were removed.
  returned: changed
  type: list
  elements: str
skipped_backups:
  description:
    - Candidates that were newer than the chosen one but failed verification, each with C(path) and C(reason); also
      the O(backup_dir) entries that are missing or hold no match, and candidates beyond O(max_candidates).
  returned: always
  type: list
  elements: dict
integrity:
  description: C(ok), or the problems C(integrity_check) reports on the restored database.
  returned: success, not in check mode
  type: raw
sha256:
  description: sha256 of the database file after the restore (in check mode, what it would be).
  returned: success
  type: str
journal_mode:
  description: The O(journal_mode) applied.
  returned: always
  type: str
holders:
  description: Processes holding the database open, each with C(pid), C(comm) and C(fd_path).
  returned: when any
  type: list
  elements: dict
interrupted_restore:
  description: What was done about an interrupted earlier restore (C(action) is C(completed) or C(rolled_back)).
  returned: when a restore journal was found
  type: dict
would_finish_interrupted:
  description: In check mode, what would be done about an interrupted earlier restore.
  returned: check mode, when a restore journal was found
  type: dict
would_restore_from:
  description: The backup that would be restored.
  returned: check mode when a restore is needed, and always with O(dry_run=true)
  type: str
dry_run:
  description: True when the module only picked the backup (O(dry_run=true)).
  returned: with O(dry_run=true)
  type: bool
msg:
  description: What the run did or, with O(dry_run=true), would do.
  returned: sometimes
  type: str
would_preserve:
  description: Files that would be preserved, with C(name), C(sha256) and C(size).
  returned: check mode, when a restore is needed
  type: list
  elements: dict
would_preserve_to:
  description: The O(preserve_dir) that would receive them.
  returned: check mode, when a restore is needed
  type: str
would_remove:
  description: Sidecar files that would be removed.
  returned: check mode, when a restore is needed
  type: list
  elements: str
'''

import sqlite3

from ansible_collections.claude_flow.runbook.plugins.module_utils import (
    db_swap, memory_db, memory_db_restore, module_envelope, safe_files)


def work(module, params):
    return memory_db_restore.restore(
        params['path'], src=params['src'], backup_dir=params['backup_dir'], pattern=params['pattern'],
        expect_profile=params['expect_profile'], allow_unverified=params['allow_unverified'],
        force=params['force'], preserve_dir=params['preserve_dir'], journal_mode=params['journal_mode'],
        busy_timeout=params['busy_timeout'], check_mode=module.check_mode, lock_timeout=params['lock_timeout'],
        drain_timeout=params['drain_timeout'], max_candidates=params['max_candidates'], dry_run=params['dry_run'])


def main():
    module_envelope.run(work, memory_db.common_argument_spec(
        src=dict(type='path'),
        backup_dir=dict(type='list', elements='path'),
        pattern=dict(type='str', default=memory_db_restore.DEFAULT_PATTERN),
        max_candidates=dict(type='int'),
        dry_run=dict(type='bool', default=False),
        expect_profile=dict(type='str', choices=list(memory_db_restore.PROFILES)),
        allow_unverified=dict(type='bool', default=False),
        force=dict(type='bool', default=False),
        preserve_dir=dict(type='path'),
        journal_mode=dict(type='str', default='wal', choices=list(memory_db_restore.JOURNAL_MODES)),
        lock_timeout=dict(type='int', default=db_swap.DEFAULT_LOCK_TIMEOUT),
        drain_timeout=dict(type='int', default=db_swap.DEFAULT_DRAIN_TIMEOUT),
    ), errors=(memory_db.MemoryDbError, db_swap.SwapError), wrapped=(OSError, sqlite3.Error, safe_files.UnsafePath),
        wrap_msg='restore of {path} failed: {exc}; if a %s file is left, the next run settles it'
        % memory_db_restore.JOURNAL_SUFFIX,
        mutually_exclusive=[('src', 'backup_dir')], required_one_of=[('src', 'backup_dir')])


if __name__ == '__main__':
    main()
