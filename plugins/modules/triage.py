#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: triage
short_description: The runbook's P0/P1 assessment in one read-only call, classified P0-P3
version_added: 0.1.0
description:
  - Gathers, on the host and in one module call, everything the runbook's assessment steps read with
    C(systemctl), C(curl), C(sqlite3), C(claude-flow) and C(tail) - database integrity (the runbook's
    C(integrity_check), or C(quick_check) above O(integrity_check_max_bytes)),
    the memory.db metrics, truth scores, service health, free disk space on the database's filesystem,
    error/critical/fatal counts in the application log, the quarantined-agent ratio and the growth rate.
  - Classifies them with the runbook's severity table and returns the most severe level, with one reason
    per breached threshold that quotes the runbook and names its recommended action.
  - A metric that cannot be measured is listed in RV(unknown) with the reason and never raises the severity.
extends_documentation_fragment:
  - claude_flow.runbook.attributes
  - claude_flow.runbook.claude_flow
options:
  path:
    description: The memory database. Defaults to C(<app_dir>/.swarm/memory.db).
    type: path
  busy_timeout:
    description: Milliseconds to wait for a database lock, between 0 and 600000.
    type: int
    default: 5000
  integrity_check_max_bytes:
    description:
      - Databases (with their C(-wal)) up to this size get C(PRAGMA integrity_check), as in the runbook, which
        also finds index entries that do not match their table. Larger ones get C(quick_check), which skips
        that comparison, so the assessment stays fast; C(memory_db_check) with O(claude_flow.runbook.memory_db_check#module:mode=full)
        is the full check for those.
      - V(0) always uses C(quick_check). C(check) in RV(details)C(.integrity) says which one ran.
      - At most 1 TiB (1099511627776).
      - Measured with the indexes memory_db_optimize creates, warm page cache, 2 cores - 100k rows (22 MB)
        integrity_check 0.12 s vs quick_check 0.01 s; 1M rows (166 MB) 2.0 s vs 0.16 s. The default
        (64 MiB) keeps the full check under about half a second.
    type: int
    default: 67108864
  health_url:
    description: Health endpoint of the service; an empty value skips the probe (service state unknown).
    type: str
    default: http://localhost:8080/health
  health_timeout:
    description: Seconds to wait for the health endpoint, between 1 and 300.
    type: int
    default: 3
  log_path:
    description:
      - The application log whose last O(log_lines) lines are searched for critical, error and fatal.
      - Only a regular file is read, and only its last 4 MiB however long its lines; a FIFO, a device or a socket
        is not opened for reading and C(log_size_bytes) is then unknown with the reason.
    type: path
    default: /var/log/claude-code/application.log
  log_lines:
    description: How many lines from the end of the log to read (the runbook's C(tail -500)), between 1 and 100000.
    type: int
    default: 500
  window:
    description:
      - Time window for rates and averages, in seconds or with a unit (V(15m), V(1h)), between V(1s) and V(3650d).
      - A rate or average over no activity in the window (no pattern lookups, fewer than two trajectories, no
        GOAP planning rows) is unknown ("idle"), never 0.
    type: str
    default: 1h
  thresholds:
    description:
      - Overrides merged over the runbook's thresholds, keyed by metric (C(truth_score), C(agent_score),
        C(ops_per_second), C(cache_hit_rate), C(quarantined_ratio), C(growth_mb_per_hour), C(goap_planning_ms),
        C(db_size_bytes), C(log_size_bytes), C(disk_free_ratio)), each a dict of C(P0)..C(P3) values (any subset).
      - A metric set to null is switched off.
    type: dict
    default: {}
  registry:
    description: The collection's quarantine registry. Defaults to C(<app_dir>/.swarm/quarantine.json).
    type: path
  known_agents:
    description: Agents the quarantined ratio is measured against; by default those seen in the truth data.
    type: list
    elements: str
  backup_dir:
    description:
      - Where backups of the database are kept. Only read, to tell a database that is gone (a backup of it exists)
        from one that was never created.
      - A missing database is C(db_missing) (P0, data loss) only when something says it existed - its C(-wal)/C(-shm),
        its growth samples (C(<path>.growth.json)), a dangling symlink on its path, a backup in O(backup_dir) or a
        copy in O(preserve_dir). Otherwise it is unknown - "not created yet" (a fresh install, claude-flow creates it
        on the first C(memory store)) or a configuration problem when its directory does not exist - and
        RV(details)C(.db_state) says which.
    type: path
    default: /var/backups/claude-code
  preserve_dir:
    description: Where the collection preserves replaced databases; only read, as for O(backup_dir).
    type: path
    default: /var/lib/claude-flow-runbook/preserved
attributes:
  check_mode:
    details:
      - Reads only; in check mode the growth sample is not recorded.
      - A claude-flow 2.x CLI rewrites files under C(<app_dir>/.claude-flow/metrics/) on every call, so in check mode
        the truth score is read from C(.swarm/verification-memory.json) and the CLI is not run.
'''

EXAMPLES = r'''
- name: P0 step 1 - Acknowledge and Assess
  claude_flow.runbook.triage:
    app_dir: /opt/claude-code-production
  register: triage

- name: Stricter truth thresholds for this group, ops/sec switched off
  claude_flow.runbook.triage:
    app_dir: /opt/claude-code-production
    thresholds:
      truth_score: {P1: 0.92}
      ops_per_second: null
'''

RETURN = r'''
severity:
  description: The most severe level breached, C(P0)..C(P3), or C(none).
  returned: always
  type: str
  sample: P1
reasons:
  description: One entry per breach, most severe first, each with C(metric), C(value), C(threshold),
    C(severity), C(runbook) (the runbook's wording) and C(action) (its recommended response).
  returned: always
  type: list
  elements: dict
  sample: [{metric: cache_hit_rate, value: 41.2, threshold: 60.0, severity: P1,
            runbook: "Cache hit rate < 60.0%", action: "clear stale patterns and VACUUM (P1 step 3, Common issue 4)"}]
metrics:
  description: The measured numbers the classification used (null when unknown).
  returned: always
  type: dict
conditions:
  description: C(db_corrupt), C(db_missing), C(service_down) as measured (absent when not measured).
  returned: always
  type: dict
unknown:
  description: Metric to the reason it could not be measured.
  returned: always
  type: dict
details:
  description: What each probe saw (integrity errors, health status, log counts, truth source, disk usage).
  returned: always
  type: dict
recommended_playbook:
  description: The response playbook for RV(severity), null for C(none).
  returned: always
  type: str
plan:
  description:
    - The ordered actions the response procedure for RV(severity) takes on this host (empty for C(none)), from the
      remediation table; the same list the C(claude_flow.runbook.remediation_plan) filter gives for this result.
    - Each item has C(action), C(why) (the findings that call for it), C(metrics), C(runbook) (the step it performs)
      and C(fallback) (the action taken when it fails, or null).
  returned: always
  type: list
  elements: dict
  sample: [{action: recover_db, why: ['Database corruption detected'], metrics: [db_corrupt],
            runbook: 'P0 step 2: If database corruption detected', fallback: null}]
window_seconds:
  description: The window used, in seconds.
  returned: always
  type: int
path:
  description: The database path probed.
  returned: always
  type: str
'''

from ansible_collections.claude_flow.runbook.plugins.module_utils import module_envelope
from ansible_collections.claude_flow.runbook.plugins.module_utils.claude_flow import (
    ClaudeFlowError, check_timeout, common_argument_spec, reject_npx)
from ansible_collections.claude_flow.runbook.plugins.module_utils.memory_db import MemoryDbError, check_busy_timeout
from ansible_collections.claude_flow.runbook.plugins.module_utils.safe_read import RangeError, check_range
from ansible_collections.claude_flow.runbook.plugins.module_utils.severity import ThresholdError, merge_thresholds
from ansible_collections.claude_flow.runbook.plugins.module_utils.triage import run

# (option, lowest, highest, unit): a value outside is refused with this range named.
RANGES = (
    ('integrity_check_max_bytes', 0, 1 << 40, 'bytes'),
    ('health_timeout', 1, 300, 'seconds'),
    ('log_lines', 1, 100000, 'lines'),
)


def work(module, params):
    for name, low, high, unit in RANGES:
        check_range(name, params[name], low, high, unit)
    check_busy_timeout(params['busy_timeout'])
    reject_npx(params['executable'])
    check_timeout(params['timeout'])
    merge_thresholds(params['thresholds'])
    verdict = run(params, check_mode=module.check_mode)
    verdict['changed'] = False
    return verdict


def main():
    module_envelope.run(work, common_argument_spec(
        path=dict(type='path'),
        busy_timeout=dict(type='int', default=5000),
        integrity_check_max_bytes=dict(type='int', default=67108864),
        health_url=dict(type='str', default='http://localhost:8080/health'),
        health_timeout=dict(type='int', default=3),
        log_path=dict(type='path', default='/var/log/claude-code/application.log'),
        log_lines=dict(type='int', default=500),
        window=dict(type='str', default='1h'),
        thresholds=dict(type='dict', default={}),
        registry=dict(type='path'),
        known_agents=dict(type='list', elements='str'),
        backup_dir=dict(type='path', default='/var/backups/claude-code'),
        preserve_dir=dict(type='path', default='/var/lib/claude-flow-runbook/preserved'),
    ), errors=(MemoryDbError, ClaudeFlowError, ThresholdError, RangeError))


if __name__ == '__main__':
    main()
