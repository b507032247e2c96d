#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: truth_info
short_description: Truth verification scores of a claude-flow deployment, overall and per agent
version_added: 0.1.0
description:
  - Reads the truth (verification) scores the runbook gets with C(./claude-flow truth --json), from wherever
    this deployment keeps them, and returns them in one shape with scores between 0 and 1.
  - The runbook's C(jq -r '.overall.score') and C(.agents[]) do not match any real release. Real claude-flow 2.x
    prints C(averageScore) and an C(agentReliability) dict keyed by agent type; 3.x has no truth command at all.
  - When there is no data (no verifications, a missing or corrupted state file, a null average) the status is
    C(no_data) and RV(overall) is null, never 0. claude-flow itself prints C(averageScore 0) in all of
    these cases; that 0 is not a score.
  - Never changes anything.
extends_documentation_fragment:
  - claude_flow.runbook.attributes
  - claude_flow.runbook.claude_flow
options:
  source:
    description:
      - Where to read the scores.
      - V(cli) runs C(truth --json) (claude-flow 2.x only). Per-agent verification counts are unknown.
      - V(state_file) reads O(state_file) directly, the file C(truth --json) reads itself; it allows O(window)
        and per-agent verification counts.
      - V(db) reads a C(verification_history) table in the database at O(path) (the runbook's schema; no
        claude-flow release has this table).
      - V(auto) uses V(db) when that table exists and has rows; else V(cli) on 2.x (V(state_file) when
        O(window) is set, because the CLI cannot filter by time); else V(state_file) when it exists;
        on 3.x without a state file the status is C(unsupported).
    type: str
    choices: [auto, cli, state_file, db]
    default: auto
  state_file:
    description:
      - The verification memory of claude-flow 2.x.
      - Defaults to C(<app_dir>/.swarm/verification-memory.json).
    type: path
  path:
    description:
      - The memory database for O(source=db).
      - Defaults to C(<app_dir>/.swarm/memory.db). Opened read-only.
    type: path
  window:
    description:
      - Only count verifications newer than this, for example V(1h), V(15m), V(2d) or a number of seconds.
      - Works with V(state_file) and V(db); an error with V(cli).
      - Between V(1s) and V(3650d); anything else (V(0), negative, V(inf), V(1e400h)) is refused.
    type: str
  threshold:
    description:
      - Agents whose score is below this are returned in RV(agents_below) (the runbook's
        C(select(.score < 0.90))). Agents without a score are never below it.
      - A ratio, more than 0 and at most 1.
    type: float
    default: 0.90
notes:
  - Unknown is not bad. A status other than C(ok) is not a breach; act on RV(overall) only when it is a number.
attributes:
  check_mode:
    details:
      - Never changes anything. A claude-flow 2.x CLI rewrites files under C(<app_dir>/.claude-flow/metrics/) on every
        call but C(--version), so in check mode C(truth --json) is not run - V(auto) reads O(state_file) instead,
        V(cli) returns C(no_data) saying so.
'''

EXAMPLES = r'''
- name: Truth scores, from wherever this deployment keeps them
  claude_flow.runbook.truth_info:
    app_dir: /opt/claude-code-production
  register: truth

- name: Roll back only on a measured score below 0.85
  ansible.builtin.debug:
    msg: "truth score {{ truth.overall }} is below 0.85"
  when:
    - truth.status == 'ok'
    - truth.overall < 0.85

- name: Agents below 0.90 in the last hour, from the state file itself
  claude_flow.runbook.truth_info:
    source: state_file
    window: 1h
    threshold: 0.90
  register: last_hour

- name: The runbook's verification_history query, where such a table exists
  claude_flow.runbook.truth_info:
    source: db
    path: /opt/claude-code-production/.swarm/memory.db
    window: 1h
'''

RETURN = r'''
status:
  description:
    - V(ok) scores were measured; V(no_data) there is nothing to score; V(unsupported) this release or
      database keeps no truth scores; V(error) the source could not be read (see RV(reason)).
  returned: always
  type: str
  sample: ok
reason:
  description: Why the status is not V(ok), or a caveat about the data (for example verifications without a score).
  returned: always
  type: str
  sample: null
overall:
  description: The overall truth score, 0..1; null unless measured.
  returned: always
  type: float
  sample: 0.8178571428571428
agents:
  description:
    - One item per agent (an agent type for claude-flow sources), sorted by name.
    - C(verifications) is null for V(cli), which does not report it.
  returned: always
  type: list
  elements: dict
  sample: [{"agent": "coder", "score": 0.8416666666666667, "verifications": 3}]
agents_below:
  description: The items of RV(agents) with a score below O(threshold), lowest first.
  returned: always
  type: list
  elements: dict
  sample: [{"agent": "tester", "score": 0.75, "verifications": 2}]
threshold:
  description: The threshold RV(agents_below) was computed with.
  returned: always
  type: float
  sample: 0.9
total_verifications:
  description: Verifications counted (within O(window) when set); null when the source does not say.
  returned: always
  type: int
  sample: 7
passed_verifications:
  description: Of those, how many passed; null when the source does not say.
  returned: always
  type: int
  sample: 5
history:
  description:
    - The newest verifications (at most 50), newest first, for V(state_file) and V(db); empty for V(cli).
  returned: always
  type: list
  elements: dict
  sample: [{"task_id": "task-107", "agent": "coder", "score": 0.9, "passed": true,
            "timestamp": "2026-11-28T05:47:26.134Z"}]
source:
  description: The source the scores came from (V(auto) only when no source could be used).
  returned: always
  type: str
  sample: state_file
cli_version:
  description: The claude-flow version, when the CLI was asked.
  returned: always
  type: str
  sample: 2.7.47
cli_command:
  description: The command line run for V(cli), else null.
  returned: always
  type: list
  elements: str
  sample: ["/opt/claude-code-production/node_modules/.bin/claude-flow", "truth", "--json"]
attempts:
  description: With O(source=auto), the sources tried before the one used, and why they were passed over.
  returned: always
  type: list
  elements: dict
  sample: [{"source": "db", "outcome": "table verification_history does not exist in this database"}]
'''

from ansible_collections.claude_flow.runbook.plugins.module_utils import claude_flow, module_envelope, truth
from ansible_collections.claude_flow.runbook.plugins.module_utils.memory_db import MemoryDbError, parse_window

RETURNED = ('status', 'reason', 'overall', 'agents', 'agents_below', 'threshold', 'total_verifications',
            'passed_verifications', 'history', 'source', 'cli_version', 'cli_command')


def work(module, params):
    window = parse_window(params['window']) if params['window'] else None
    claude_flow.check_timeout(params['timeout'])
    res = truth.collect(params['source'], params['app_dir'], executable=params['executable'],
                        timeout=params['timeout'], state_file=params['state_file'], db_path=params['path'],
                        window=window, threshold=params['threshold'], check_mode=module.check_mode)
    result = dict((key, res[key]) for key in RETURNED)
    result.update(changed=False, attempts=res.get('attempts', []))
    return result


def main():
    module_envelope.run(work, claude_flow.common_argument_spec(
        source=dict(type='str', default='auto', choices=['auto', 'cli', 'state_file', 'db']),
        state_file=dict(type='path'),
        path=dict(type='path'),
        window=dict(type='str'),
        threshold=dict(type='float', default=truth.DEFAULT_THRESHOLD),
    ), errors=(MemoryDbError, truth.TruthError, claude_flow.ClaudeFlowError))


if __name__ == '__main__':
    main()
