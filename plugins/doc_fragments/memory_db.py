# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Options shared by the memory_db_* modules."""

    DOCUMENTATION = r'''
options:
  path:
    description:
      - Path of the claude-flow memory database, normally C(<app_dir>/.swarm/memory.db).
      - Its C(-wal) and C(-shm) files beside it are treated as part of the same database.
    type: path
    required: true
  busy_timeout:
    description:
      - Milliseconds to wait for a lock held by another connection before giving up.
    type: int
    default: 5000
notes:
  - Supports the three schema profiles found in the wild, detected from C(sqlite_master)
    (C(runbook), C(reasoningbank) for claude-flow 2.7.x, C(v3) for claude-flow 3.x).
'''
