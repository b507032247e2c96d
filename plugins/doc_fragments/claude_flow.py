# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Options of the modules that run or read a claude-flow deployment."""

    DOCUMENTATION = r'''
options:
  app_dir:
    description:
      - The claude-flow deployment directory, the one holding C(node_modules/) and C(.swarm/).
      - The CLI always runs with this directory as its working directory.
    type: path
    default: /opt/claude-code-production
  executable:
    description:
      - The claude-flow executable. A relative path is taken relative to O(app_dir).
      - Defaults to C(<app_dir>/node_modules/.bin/claude-flow), the local install.
      - A value that runs C(npx) is rejected. Bare C(npx claude-flow), and the C(./claude-flow) wrapper that
        2.x C(init) writes, fall through to C(npx claude-flow@latest) (the 3.x product line, with different
        commands) when no local install is found, and C(npx) hung for 60 seconds offline.
    type: path
  timeout:
    description:
      - Seconds one claude-flow call may run. When they are up, the call's whole process group is
        killed (SIGTERM, a short grace, then SIGKILL) and checked to be gone.
      - Defaults to 30 seconds; C(claude_flow.runbook.neural) training defaults to 600 seconds.
      - Between 1 and 86400 seconds.
    type: int
notes:
  - The CLI runs in its own process group with C(NO_COLOR=1) and C(RUFLO_DAEMON_AUTOSTART=0) (so 3.x starts
    no background daemon); ANSI escapes are stripped from its output.
  - Exit codes of claude-flow 2.x do not tell success (C(truth), C(verify) and C(training) exit 0 on internal
    errors), so success is decided by parsing the output and by known failure texts.
  - The product line (2.x or 3.x) is read from C(<app_dir>/node_modules/claude-flow/package.json) when O(executable)
    is the local install (no node start-up), else from the first line of C(claude-flow --version).
  - Every claude-flow 2.x call but C(--version) rewrites files under C(<app_dir>/.claude-flow/metrics/); in check mode
    no module runs such a call.
'''
