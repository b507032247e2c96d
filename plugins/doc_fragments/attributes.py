# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The attributes of every module: read-only modules and full check mode are the default; a module states
    its check mode details, and overrides support where it differs."""

    DOCUMENTATION = r'''
attributes:
  check_mode:
    description: Can run in check mode and report what it would change (or why it would fail) without changing anything.
    support: full
  diff_mode:
    description: Returns what changed (or would change in check mode) when run in diff mode.
    support: none
  platform:
    description: Target OS families the module runs on.
    support: full
    platforms: posix
author:
  - claude_flow.runbook maintainers (!UNKNOWN)
notes:
  - Every result, a failed one too, has C(execution_time_ms), the wall time of the module's work in milliseconds,
    so response times can be measured.
'''
