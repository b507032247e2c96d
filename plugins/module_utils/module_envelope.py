# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one main() of every module: parse the options, run the work, turn a refusal into fail_json.

Every result, success or failure, carries execution_time_ms (so MTTR can be measured), and a
failure's message is the error's own sentence (it names the problem and the fix), with the
error's ``details`` (e.g. skipped_backups, holders) next to it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible.module_utils.basic import AnsibleModule


class ModuleFailure(Exception):
    """A refusal raised from a module's work; details go into the failed result next to msg."""

    def __init__(self, message, **details):
        super(ModuleFailure, self).__init__(message)
        self.details = details


def elapsed_ms(started):
    """Milliseconds since a time.monotonic() reading."""
    return int(round((time.monotonic() - started) * 1000))


def run(work, argument_spec, errors=(), wrapped=(), wrap_msg='{exc}', **module_options):
    """Build the AnsibleModule (check mode supported), call work(module, module.params) -> result dict,
    exit_json with it, or fail_json on an error.

    errors: the collection's error classes; their message is the failure message. wrapped: other
    exceptions (OSError, sqlite3.Error ...) reported as wrap_msg.format(exc=..., **params).
    """
    started = time.monotonic()
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **module_options)
    refusals = (ModuleFailure,) + tuple(errors)
    others = tuple(wrapped)
    try:
        result = work(module, module.params)
    except refusals as exc:
        fail(module, started, str(exc), getattr(exc, 'details', None))
    except others as exc:
        fail(module, started, wrap_msg.format(exc=exc, **module.params), None)
    result['execution_time_ms'] = elapsed_ms(started)
    module.exit_json(**result)


def fail(module, started, msg, details):
    extra = dict((key, value) for key, value in (details or {}).items() if key not in ('msg', 'execution_time_ms'))
    module.fail_json(msg=msg, execution_time_ms=elapsed_ms(started), **extra)
