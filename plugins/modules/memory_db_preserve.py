#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: memory_db_preserve
short_description: Keep a verified copy of claude-flow's memory.db set, leaving the database in place
version_added: "1.0.0"
description:
  - Copies the current C(db)/C(-wal)/C(-shm)/C(-journal) set into a new folder under O(preserve_dir), with the
    sha256 and size of each file in a C(MANIFEST.json), fsynced. The database itself is not changed or moved.
  - The copy is made under SQLite's own EXCLUSIVE lock on the database (waiting up to O(lock_timeout) for open
    connections to finish), so no commit can land halfway through it, also from writers that open, commit and
    close per write; each copy is checked against its source's sha256 before the lock is released.
  - Checks free space at O(preserve_dir) first. O(path) must resolve inside its own directory, and the set must
    be regular files (a FIFO, device or socket is refused without opening it).
  - Used by the rollback role before it switches away from a release, so that release's DB set is kept exactly
    as it was.
extends_documentation_fragment:
  - claude_flow.runbook.attributes
  - claude_flow.runbook.memory_db
options:
  preserve_dir:
    description:
      - Directory that receives one new folder per run, named C(<label>-<time>-<pid>).
    type: path
    required: true
  label:
    description:
      - Prefix of the new folder's name; a plain file name (letters, digits, C(.), C(_), C(-)).
    type: str
    default: preserved
  lock_timeout:
    description:
      - Seconds to wait for the exclusive lock on the database before failing with nothing written. 1 to 3600.
    type: int
    default: 30
notes:
  - Check mode lists the files that would be copied (with sha256 and size) and writes nothing.
  - A missing database is not an error; nothing is copied and C(changed) is false.
seealso:
  - module: claude_flow.runbook.memory_db_restore
  - module: claude_flow.runbook.memory_db_backup
attributes:
  check_mode:
    details: Returns the files it would copy with their sha256 (RV(would_preserve)) and copies nothing.
'''

EXAMPLES = r'''
- name: Keep the DB set of the release about to be rolled back from
  claude_flow.runbook.memory_db_preserve:
    path: /opt/claude-code-backups/v2.7.47/.swarm/memory.db
    preserve_dir: /var/lib/claude-flow-runbook/preserved/INC-20250131-120000
    label: rollback-from-v2.7.47
  register: kept
'''

RETURN = r'''
preserved:
  description: Where the set was copied; null when there was no database.
  returned: success, not in check mode
  type: dict
  contains:
    dir:
      description: Folder holding the copies and a MANIFEST.json.
      type: str
    files:
      description: One entry per file with C(name), C(source), C(path), C(sha256) and C(size).
      type: list
      elements: dict
    method:
      description: Always C(copy).
      type: str
would_preserve:
  description: Files that would be copied, with C(name), C(sha256) and C(size).
  returned: check mode
  type: list
  elements: dict
'''

import os

from ansible_collections.claude_flow.runbook.plugins.module_utils import db_swap, memory_db, module_envelope, safe_files


def work(module, params):
    memory_db.check_ranges(module_envelope.ModuleFailure, lock_timeout=(params['lock_timeout'], 1, memory_db.MAX_WAIT_S),
                           busy_timeout=(params['busy_timeout'], 0, memory_db.MAX_BUSY_TIMEOUT_MS))
    name_problem = safe_files.plain_filename_problem(params['label'])
    if name_problem:
        raise module_envelope.ModuleFailure('label %r is not usable: %s' % (params['label'], name_problem))
    real = safe_files.resolve_db_path(params['path'])
    if not os.path.lexists(real):
        return dict(changed=False, preserved=None, msg='%s does not exist; nothing to preserve' % real)
    if module.check_mode:
        return dict(changed=True, would_preserve=[
            {'name': os.path.basename(m), 'sha256': safe_files.sha256_file(m), 'size': os.path.getsize(m)}
            for m in safe_files.db_set(real)])
    preserved = db_swap.preserve_copy(real, os.path.realpath(params['preserve_dir']), params['label'],
                                      lock_timeout=params['lock_timeout'])
    return dict(changed=True, preserved=preserved)


def main():
    module_envelope.run(work, memory_db.common_argument_spec(
        preserve_dir=dict(type='path', required=True),
        label=dict(type='str', default='preserved'),
        lock_timeout=dict(type='int', default=db_swap.DEFAULT_LOCK_TIMEOUT),
    ), wrapped=(db_swap.SwapError, safe_files.UnsafePath, OSError), wrap_msg='could not preserve {path}: {exc}')


if __name__ == '__main__':
    main()
