#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: neural
short_description: claude-flow neural status, patterns and training, on 2.x and 3.x alike
version_added: 0.1.0
description:
  - The runbook's C(npx claude-flow neural status), C(neural patterns) and C(training neural-train), run
    against the local install with a hard timeout, with their output parsed.
  - On claude-flow 3.x, V(status) and V(patterns) parse the printed tables. claude-flow 2.x has neither
    (its C(neural) knows only C(init)); there they return C(status=unsupported) with the reason, and the
    CLI is not called.
  - V(train) runs C(training neural-train --data DATA --epochs N) on 2.x and C(neural train --epochs N) on 3.x
    (which has no C(--data)). Training is never idempotent, so it always reports C(changed).
  - Success is decided from the output, not the exit code. 2.x training exits 0 when it fails; the texts
    C(❌ ruv-swarm is not available), C(Unknown neural subcommand), C([ERROR] Unknown command) and the
    2.x crash texts make the task fail with that text.
  - 2.x training calls C(npx ruv-swarm --version), which can never exit, and children of it ignored SIGTERM.
    When O(timeout) runs out, the whole process group is killed and the task fails with
    C(timed out after N s; process group killed) and RV(orphans) (processes of the group still alive
    afterwards; 0 expected).
extends_documentation_fragment:
  - claude_flow.runbook.attributes
  - claude_flow.runbook.claude_flow
options:
  command:
    description: What to run.
    type: str
    choices: [status, patterns, train]
    default: status
  data:
    description:
      - Training data set for O(command=train) on 2.x (C(--data)). Defaults to V(recent) there.
      - Ignored, with a warning, on 3.x, which has no such option.
      - Letters, digits, V(_), V(.) and V(-), not starting with V(-).
    type: str
  epochs:
    description: Training epochs for O(command=train), between 1 and 10000.
    type: int
    default: 50
notes:
  - 3.x C(neural status) reports the C(Embedding Model) row as C(Loaded) even offline; it is returned as
    printed and is no health signal.
  - Accuracy figures printed by 2.x training may be synthesised by claude-flow; they are returned as text,
    not judged.
  - C(neural patterns --rebuild-cache) from the runbook exists in no release and is not offered.
attributes:
  check_mode:
    details:
      - With O(command=train), check mode runs nothing and returns the command line in RV(would_run), with
        C(changed=true). V(patterns) and 2.x V(status) only read and run in check mode too.
      - 3.x V(status) downloads an embedding model on first use and caches it; check mode runs nothing and
        returns V(not_run) with the command line in RV(would_run).
'''

EXAMPLES = r'''
- name: Neural status (3.x; unsupported on 2.x)
  claude_flow.runbook.neural:
    command: status
  register: neural

- name: Components that are not running
  ansible.builtin.debug:
    msg: "{{ neural.components | dict2items | rejectattr('value.status', 'in', ['Active', 'Available', 'Loaded'])
             | map(attribute='key') | list }}"
  when: neural.status == 'ok'

- name: Retrain patterns after a low truth score, never for more than 10 minutes
  claude_flow.runbook.neural:
    command: train
    data: recent
    epochs: 50
    timeout: 600
'''

RETURN = r'''
status:
  description:
    - V(ok) when the command ran and its output was understood, V(unsupported) when this release lacks it,
      V(error) (with the task failed) when it failed, timed out or printed something not understood,
      V(not_run) for 3.x O(command=status) in check mode (see RV(would_run)).
  returned: always
  type: str
  sample: ok
reason:
  description: Why the status is V(unsupported) or V(not_run); else null.
  returned: always
  type: str
  sample: null
cli_version:
  description: The claude-flow version (from C(--version)).
  returned: always
  type: str
  sample: 3.43.0
cli_command:
  description: The command line that was run; null when nothing was run.
  returned: always
  type: list
  elements: str
  sample: ["/opt/claude-code-production/node_modules/.bin/claude-flow", "neural", "status"]
would_run:
  description: In check mode with O(command=train), or with O(command=status) on 3.x, the command line that
    would be run.
  returned: always
  type: list
  elements: str
  sample: ["/opt/claude-code-production/node_modules/.bin/claude-flow", "neural", "train", "--epochs", "50"]
components:
  description: O(command=status) on 3.x, the component table keyed by component name.
  returned: always
  type: dict
  sample: {"ReasoningBank": {"status": "Active", "details": "2 patterns stored"}}
summary:
  description: O(command=status) on 3.x, how many components have each status.
  returned: always
  type: dict
  sample: {"Active": 5, "Available": 5, "Not loaded": 2}
patterns:
  description: O(command=patterns) on 3.x, the pattern table; C(confidence) as a ratio 0..1, C(usage) a number.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "step_1795849448722", "type": "action", "confidence": 1.0, "usage": 9}]
total_patterns:
  description: O(command=patterns), the total the CLI prints (or the rows counted).
  returned: always
  type: int
  sample: 2
trajectories:
  description: O(command=patterns), the trajectory count the CLI prints, when it does.
  returned: always
  type: int
  sample: 3
metrics:
  description: O(command=train), the metrics the CLI printed, as text.
  returned: always
  type: dict
  sample: {"Epochs": "50", "Final Loss": "1.616e-3"}
rc:
  description:
    - Exit code of the CLI (it does not decide success).
    - Absent when nothing was run (V(status)/V(patterns) on 2.x, V(train) in check mode); Ansible reads any
      C(rc) other than 0, null included, as a failure.
  returned: when the CLI ran
  type: int
  sample: 0
stdout:
  description: What the CLI printed, ANSI escapes removed.
  returned: always
  type: str
  sample: ""
stderr:
  description: What the CLI printed on stderr, ANSI escapes removed.
  returned: always
  type: str
  sample: ""
timed_out:
  description: Whether O(timeout) ran out and the process group was killed.
  returned: always
  type: bool
  sample: false
orphans:
  description: Processes of the CLI's process group still alive after it was done or killed (0 expected).
  returned: always
  type: int
  sample: 0
duration_ms:
  description: How long the CLI ran.
  returned: always
  type: int
  sample: 1490
'''

import re

from ansible_collections.claude_flow.runbook.plugins.module_utils import claude_flow, module_envelope
from ansible_collections.claude_flow.runbook.plugins.module_utils.safe_read import RangeError, check_range

EPOCHS_MAX = 10000
DATA_RE = re.compile(r'[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}')


def work(module, params):
    command = params['command']
    out = dict(changed=False, status='ok', reason=None, cli_version=None, cli_command=None, would_run=None,
               components=None, summary=None, patterns=None, total_patterns=None, trajectories=None, metrics=None,
               stdout='', stderr='', timed_out=False, orphans=None, duration_ms=None)
    check_range('epochs', params['epochs'], 1, EPOCHS_MAX)
    if params['data'] is not None and not DATA_RE.fullmatch(params['data']):
        raise module_envelope.ModuleFailure('data %r is not a data set name; use letters, digits, _, . or - (for '
                                            'example recent or goap_heuristics)' % params['data'])
    default_timeout = claude_flow.TRAIN_TIMEOUT if command == 'train' else claude_flow.DEFAULT_TIMEOUT
    try:
        claude_flow.check_timeout(params['timeout'])
        cli = claude_flow.ClaudeFlow(params['app_dir'], params['executable'], params['timeout'] or default_timeout)
        version = cli.version()
    except claude_flow.ClaudeFlowError as exc:
        out['status'] = 'error'
        raise module_envelope.ModuleFailure(str(exc), **out)
    out['cli_version'] = version['version']

    unsupported = claude_flow.neural_unsupported_reason(command, version)
    if unsupported:
        out.update(status='unsupported', reason=unsupported)
        return out

    if command == 'train':
        args = claude_flow.neural_train_args(version['major'], params['data'], params['epochs'])
        if version['major'] != 2 and params['data'] is not None:
            module.warn('data is ignored: claude-flow %s `neural train` has no --data option' % version['version'])
        if module.check_mode:
            out.update(changed=True, would_run=[cli.executable] + args)
            return out
    elif command == 'status':
        args = claude_flow.NEURAL_STATUS_ARGS
        if module.check_mode and version['major'] >= 3:
            out.update(status='not_run', would_run=[cli.executable] + args, reason=(
                'check mode: claude-flow %s `neural status` downloads an embedding model on first use and writes '
                'its cache, so it is not run' % version['version']))
            return out
    else:
        args = claude_flow.NEURAL_PATTERNS_ARGS

    run = cli.run(args)
    out.update(changed=command == 'train', cli_command=run['command'], rc=run['rc'], stdout=run['stdout'],
               stderr=run['stderr'], timed_out=run['timed_out'], orphans=run['orphans'], duration_ms=run['duration_ms'])
    problem = claude_flow.describe_failure(run, 'neural %s' % command)
    if problem:
        out['status'] = 'error'
        if run['timed_out'] and version['major'] == 2 and command == 'train':
            problem += ' (2.x training waits on `npx ruv-swarm --version`, which can hang for ever offline)'
        raise module_envelope.ModuleFailure(problem, **out)

    if command == 'status':
        parsed = claude_flow.parse_neural_status(run['stdout'])
        if not parsed['components']:
            out['status'] = 'error'
            raise module_envelope.ModuleFailure('claude-flow neural status printed no component table; see stdout',
                                                **out)
        out.update(components=parsed['components'], summary=parsed['summary'])
    elif command == 'patterns':
        parsed = claude_flow.parse_neural_patterns(run['stdout'])
        out.update(patterns=parsed['patterns'], total_patterns=parsed['total_patterns'],
                   trajectories=parsed['trajectories'])
    else:
        out['metrics'] = claude_flow.parse_train_output(run['stdout'])
    return out


def main():
    module_envelope.run(work, claude_flow.common_argument_spec(
        command=dict(type='str', default='status', choices=['status', 'patterns', 'train']),
        data=dict(type='str'),
        epochs=dict(type='int', default=50),
    ), errors=(RangeError,))


if __name__ == '__main__':
    main()
