#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: memory_db_info
short_description: The runbook's memory.db metrics, on any claude-flow schema profile
version_added: 0.1.0
description:
  - Gathers the metrics the runbook reads with C(sqlite3) (ops/sec, cache hit rate, truth scores,
    patterns by type, anomalous patterns, GOAP planning time, growth, indexes) in one read-only
    connection, with every parameter bound.
  - Detects the schema profile (C(runbook), C(reasoningbank) for claude-flow 2.7.x, C(v3) for 3.x)
    and reads each metric from where that profile keeps it.
  - A metric whose tables or columns are absent, or whose table has never held a row, is returned
    as null and listed in RV(unavailable) with the reason. It is never reported as zero.
  - Rows that exist but fall outside O(window) are a real zero for counts and rates.
extends_documentation_fragment:
  - claude_flow.runbook.attributes
  - claude_flow.runbook.memory_db
options:
  gather:
    description:
      - Which metrics to gather. Names, shell wildcards (V(truth_*)) and exclusions (V(!indexes)).
      - V(all) gathers everything.
    type: list
    elements: str
    default: [all]
  window:
    description:
      - The runbook's time window for rates and averages, in seconds or with a unit
        (V(15m), V(1h), V(1d)), between V(1s) and V(3650d).
      - A rate or average over no activity in the window is null and listed in RV(unavailable) as idle.
    type: str
    default: 1h
  growth_state:
    description:
      - File that keeps size samples between runs for RV(growth_bytes_per_hour).
      - Defaults to C(<path>.growth.json). Not written in check mode.
    type: path
attributes:
  check_mode:
    details: Reads only; in check mode the growth sample is not recorded.
'''

EXAMPLES = r'''
- name: P1 step 1 - performance metrics
  claude_flow.runbook.memory_db_info:
    path: /opt/claude-code-production/.swarm/memory.db
    gather: [ops_per_second, cache_hit_rate, truth_*]
    window: 1h
  register: db_metrics

- name: Everything but the index report
  claude_flow.runbook.memory_db_info:
    path: /opt/claude-code-production/.swarm/memory.db
    gather: ['all', '!indexes']
'''

RETURN = r'''
schema_profile:
  description: Detected schema profile.
  returned: when gathered
  type: str
  sample: reasoningbank
ops_per_second:
  description: Trajectories created in the window divided by the window's seconds.
  returned: when gathered
  type: float
cache_hit_rate:
  description: Percent of pattern usage on patterns used within the window (the runbook's formula).
  returned: when gathered
  type: float
truth_score_avg:
  description: Average truth score in the window, from C(verification_history) where that table exists.
  returned: when gathered
  type: float
truth_agents:
  description: Per-agent average truth score and count in the window, lowest first.
  returned: when gathered
  type: list
  elements: dict
patterns_by_type:
  description: Per pattern type, count, average confidence and average usage, lowest usage first.
  returned: when gathered
  type: list
  elements: dict
anomalous_patterns:
  description: Count of patterns with confidence below 0.3 or above 0.95, and the 20 newest.
  returned: when gathered
  type: dict
goap_planning:
  description: Average and maximum execution time and count of C(goap_planning) trajectories in the window.
  returned: when gathered
  type: dict
db_size_bytes:
  description: Size of the main database file.
  returned: when gathered
  type: int
wal_size_bytes:
  description: Size of the C(-wal) file, 0 when there is none.
  returned: when gathered
  type: int
growth_bytes_per_hour:
  description: Growth of database plus WAL per hour between the oldest sample in the last hour and now.
  returned: when gathered
  type: float
patterns_created_24h:
  description: Patterns created in the last 24 hours.
  returned: when gathered
  type: int
indexes:
  description: Index names present and the recommended indexes missing for this profile.
  returned: when gathered
  type: dict
db_state:
  description:
    - V(present), or V(not_created) when the database does not exist and nothing says it ever did (a fresh install;
      every metric is then unavailable with that reason, not a failure). A missing database that did exist (its
      C(-wal), growth samples or a dangling release symlink say so) or a missing directory fails the module.
  returned: always
  type: str
  sample: present
unavailable:
  description: Metric name to the reason it could not be measured.
  returned: always
  type: dict
  sample: {goap_planning: "column task_trajectories.task_type does not exist in this database"}
metrics:
  description: All gathered metrics in one dict (the same values as the top-level keys).
  returned: always
  type: dict
queries:
  description: The SQL that ran, with bound parameters shown.
  returned: always
  type: list
  elements: str
'''

import os

from ansible_collections.claude_flow.runbook.plugins.module_utils import memory_db, module_envelope
from ansible_collections.claude_flow.runbook.plugins.module_utils.memory_db_metrics import (
    Context, collect, select_subsets)


def work(module, params):
    path = params['path']
    memory_db.check_busy_timeout(params['busy_timeout'])
    window_s = memory_db.parse_window(params['window'])
    subsets = select_subsets(params['gather'])
    if not os.path.exists(path):
        state, reason = memory_db.missing_db_state(path)
        if state != 'not_created':
            raise memory_db.MemoryDbError(reason, db_state=state)
        # Unknown, not bad: a fresh install has no DB until the first `memory store`.
        metrics = dict((name, None) for name in subsets)
        unavailable = dict((name, reason) for name in subsets)
        queries = []
    else:
        state = 'present'
        file_info = memory_db.inspect_file(path)
        if file_info['problem']:
            raise memory_db.MemoryDbError(file_info['problem'])
        with memory_db.open_for_reading(path, params['busy_timeout']) as db:
            ctx = Context(db, window_s, growth_state=params['growth_state'], record_growth=not module.check_mode)
            metrics, unavailable = collect(ctx, subsets)
            queries = db.queries
    result = dict(metrics)
    result.update(changed=False, db_state=state, metrics=metrics, unavailable=unavailable, queries=queries,
                  window_seconds=window_s)
    return result


def main():
    module_envelope.run(work, memory_db.common_argument_spec(
        gather=dict(type='list', elements='str', default=['all']),
        window=dict(type='str', default='1h'),
        growth_state=dict(type='path'),
    ), errors=(memory_db.MemoryDbError,))


if __name__ == '__main__':
    main()
