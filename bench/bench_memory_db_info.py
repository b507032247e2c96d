"""memory_db_info against the runbook's own SQL through the sqlite3 CLI, side by side, in one run.

For each size: generate a runbook-profile memory.db, then time
  * each runbook query as the runbook runs it (`sqlite3 memory.db "SQL"`, one process per query),
  * the same metric through the collection's collectors (the code memory_db_info runs), in-process,
  * the whole memory_db_info module as a process (what a playbook task pays),
first without and then with memory_db_optimize's indexes. Prints ratios; asserts nothing.

  python bench/bench_memory_db_info.py --sizes 100000 1000000 10000000 [--repeat 3] [--out docs/...md]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, '.collections'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'lab'))

import memory_db_gen  # noqa: E402
from ansible_collections.claude_flow.runbook.plugins.module_utils import memory_db  # noqa: E402
from ansible_collections.claude_flow.runbook.plugins.module_utils import memory_db_metrics as metrics  # noqa: E402
from ansible_collections.claude_flow.runbook.plugins.module_utils.memory_db_maintenance import optimize  # noqa: E402

# The runbook's statements, verbatim where they run on this profile (P0 step 4/5, P1 steps 1-2, issues 2-5).
RUNBOOK_SQL = {
    'ops_per_second': ("SELECT COUNT(*) * 1.0 / (julianday('now') - julianday(MIN(created_at))) / 86400.0 "
                       "FROM task_trajectories WHERE created_at > datetime('now', '-1 hour');"),
    'cache_hit_rate': ("SELECT ROUND(100.0 * SUM(CASE WHEN last_used > datetime('now', '-1 hour') THEN usage_count "
                       "ELSE 0 END) / NULLIF(SUM(usage_count), 0), 2) FROM patterns;"),
    'truth_score_avg': ("SELECT AVG(truth_score) FROM verification_history "
                        "WHERE timestamp > datetime('now', '-1 hour');"),
    'truth_agents': ("SELECT agent_name, AVG(truth_score) as avg_score, COUNT(*) as verifications "
                     "FROM verification_history WHERE timestamp > datetime('now', '-1 hour') "
                     "GROUP BY agent_name ORDER BY avg_score ASC;"),
    'patterns_by_type': ("SELECT type, COUNT(*) as count, ROUND(AVG(confidence), 3) as avg_confidence, "
                         "ROUND(AVG(usage_count), 1) as avg_usage FROM patterns GROUP BY type "
                         "ORDER BY avg_usage ASC LIMIT 10;"),
    'anomalous_patterns': ("SELECT created_at, type, confidence, pattern_data FROM patterns "
                           "WHERE confidence < 0.3 OR confidence > 0.95 ORDER BY created_at DESC LIMIT 20;"),
    'goap_planning': ("SELECT AVG(execution_time_ms), MAX(execution_time_ms), COUNT(*) FROM task_trajectories "
                      "WHERE task_type = 'goap_planning' AND created_at > datetime('now', '-1 hour');"),
    'patterns_created_24h': "SELECT COUNT(*) FROM patterns WHERE created_at > datetime('now', '-1 day');",
    'integrity_check': 'PRAGMA integrity_check;',
}
WINDOWED = ('ops_per_second', 'truth_score_avg', 'truth_agents', 'goap_planning', 'patterns_created_24h')
WHOLE_TABLE = ('cache_hit_rate', 'patterns_by_type', 'anomalous_patterns', 'integrity_check')


def best_of(repeat, func):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        times.append((time.perf_counter() - started) * 1000.0)
    return min(times)


def cli_time(path, sql, repeat):
    return best_of(repeat, lambda: subprocess.run(['sqlite3', path, sql], check=True, capture_output=True))


def ours_time(path, name, repeat):
    def run():
        if name == 'integrity_check':
            memory_db.check_integrity(path, mode='full')
            return
        with memory_db.Database(path) as db:
            metrics.COLLECTORS[name](metrics.Context(db, 3600, record_growth=False))
    return best_of(repeat, run)


def module_time(path, repeat):
    args = os.path.join(os.path.dirname(path), 'args.json')
    with open(args, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': {'path': path, 'growth_state': path + '.bench-growth.json'}}, handle)
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, '.collections'))
    module = os.path.join(REPO, 'plugins', 'modules', 'memory_db_info.py')
    return best_of(repeat, lambda: subprocess.run([sys.executable, module, args], check=True,
                                                  capture_output=True, env=env))


def runbook_script_time(path, repeat):
    """All runbook metric queries, one sqlite3 process each, as an operator's shell session runs them."""
    def run():
        for name, sql in RUNBOOK_SQL.items():
            if name != 'integrity_check':
                subprocess.run(['sqlite3', path, sql], check=True, capture_output=True)
    return best_of(repeat, run)


def db_for(size, workdir):
    path = os.path.join(workdir, 'bench-%d.db' % size)
    if not os.path.exists(path):
        started = time.perf_counter()
        memory_db_gen.generate(path, profile='runbook', rows=size, wal=False, seed=1)
        print('generated %d rows in %.1f s' % (size, time.perf_counter() - started), file=sys.stderr)
    return path


def measure(size, workdir, repeat):
    path = db_for(size, workdir)
    rows = []
    for indexed in (False, True):
        work = os.path.join(workdir, 'run-%d-%s.db' % (size, 'idx' if indexed else 'raw'))
        subprocess.run(['cp', path, work], check=True)  # a closed file nobody writes: cp is safe here
        if indexed:
            optimize(work)
        for name, sql in RUNBOOK_SQL.items():
            rows.append({'size': size, 'indexed': indexed, 'metric': name,
                         'cli_ms': cli_time(work, sql, repeat), 'ours_ms': ours_time(work, name, repeat)})
        rows.append({'size': size, 'indexed': indexed, 'metric': 'ALL (module vs shell session)',
                     'cli_ms': runbook_script_time(work, repeat), 'ours_ms': module_time(work, repeat)})
        os.unlink(work)
    return rows


def render(rows, sizes):
    out = ['| rows | indexes | metric | sqlite3 CLI ms | ours ms | ours / CLI |', '|---:|:---:|---|---:|---:|---:|']
    for r in rows:
        out.append('| %d | %s | %s | %.1f | %.1f | %.2f |' % (
            r['size'], 'yes' if r['indexed'] else 'no', r['metric'], r['cli_ms'], r['ours_ms'],
            r['ours_ms'] / r['cli_ms'] if r['cli_ms'] else float('nan')))
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        out += ['', 'Growth from %d to %d rows (time at largest / time at smallest), with indexes:' % (small, large),
                '', '| metric | kind | sqlite3 CLI | ours |', '|---|---|---:|---:|']
        by = dict(((r['size'], r['indexed'], r['metric']), r) for r in rows)
        for name in RUNBOOK_SQL:
            a, b = by[(small, True, name)], by[(large, True, name)]
            kind = 'windowed' if name in WINDOWED else 'whole table'
            out.append('| %s | %s | %.2fx | %.2fx |' % (name, kind, b['cli_ms'] / a['cli_ms'],
                                                        b['ours_ms'] / a['ours_ms']))
    return '\n'.join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', type=int, nargs='+', default=[100000, 1000000, 10000000])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--workdir', default=os.path.join(HERE, 'results'))
    parser.add_argument('--out', help='also write the table (Markdown) to this file')
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    rows = []
    for size in args.sizes:
        rows.extend(measure(size, args.workdir, args.repeat))
    table = render(rows, args.sizes)
    print(table)
    if args.out:
        with open(args.out, 'w') as handle:
            handle.write(table + '\n')


if __name__ == '__main__':
    main()
