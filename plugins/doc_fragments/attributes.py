# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The attributes every module documents; each module states its support and the details."""

    DOCUMENTATION = r'''
attributes:
  check_mode:
    description: Can run in check mode and report what it would change (or why it would fail) without changing anything.
  diff_mode:
    description: Returns what changed (or would change in check mode) when run in diff mode.
  platform:
    description: Target OS families the module runs on.
    support: full
    platforms: posix
'''
