"""The triage exporter's cost per run against the runbook's own SQL for the same metrics, side by side.

For each size, generates a runbook-profile memory.db (tests/lab/memory_db_gen.py), adds
memory_db_optimize's indexes, builds the exporter runner (roles/monitoring/files/build_exporter.py,
the zip application the monitoring role installs) and times, alternating within each round:

  * exporter     one run of the runner as the timer starts it: a fresh Python process, triage.run()
                 (integrity_check up to 64 MiB, quick_check above, every DB metric, truth, disk, log),
                 rendering, and the atomic write of claude_flow.prom
  * runbook SQL  the runbook's statements for the same metrics (ops/sec, cache hit rate, truth score,
                 per-agent truth, GOAP planning, PRAGMA integrity_check), one sqlite3 process each as an
                 operator's shell runs them (bench/bench_memory_db_info.py's RUNBOOK_SQL, verbatim)
  * runbook SQL, quick_check   the same with PRAGMA quick_check, the check the exporter uses above 64 MiB

Health is not probed (no service here; a health request costs the same either way). Prints best and
median wall ms and exporter / runbook.

  python bench/bench_exporter.py [--sizes 100000 1000000 10000000] [--repeat 3] [--out FILE]
"""

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, '.collections'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'lab'))

import memory_db_gen  # noqa: E402
from bench_memory_db_info import RUNBOOK_SQL  # noqa: E402
from ansible_collections.claude_flow.runbook.plugins.module_utils.memory_db_maintenance import optimize  # noqa: E402

SAME_METRICS = ('ops_per_second', 'cache_hit_rate', 'truth_score_avg', 'truth_agents', 'goap_planning')
BUILD = os.path.join(REPO, 'roles', 'monitoring', 'files', 'build_exporter.py')
PYTHON = '/usr/bin/python3' if os.path.exists('/usr/bin/python3') else sys.executable


def runbook_session(path, check):
    statements = [RUNBOOK_SQL[name] for name in SAME_METRICS] + ['PRAGMA %s;' % check]

    def run():
        for sql in statements:
            subprocess.run(['sqlite3', path, sql], check=True, capture_output=True)
    return run


def exporter_run(runner, config, textfile):
    def run():
        proc = subprocess.run([PYTHON, runner, '--config', config], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError('exporter failed: %s' % proc.stderr)
    return run


def timed(func):
    started = time.perf_counter()
    func()
    return (time.perf_counter() - started) * 1000.0


def measure(size, workdir, repeat, runner):
    app = os.path.join(workdir, 'app-%d' % size)
    os.makedirs(os.path.join(app, '.swarm'))
    path = os.path.join(app, '.swarm', 'memory.db')
    started = time.perf_counter()
    memory_db_gen.generate(path, profile='runbook', rows=size, wal=False, seed=1)
    optimize(path)
    elapsed = time.perf_counter() - started
    print('%d rows: generated and indexed in %.1f s, %.0f MB' % (size, elapsed, os.path.getsize(path) / 1e6),
          file=sys.stderr)
    textfile = os.path.join(workdir, 'tf', 'claude_flow.prom')
    os.makedirs(os.path.dirname(textfile), exist_ok=True)
    config = os.path.join(workdir, 'exporter-%d.json' % size)
    with open(config, 'w') as handle:
        json.dump({'host': 'bench', 'textfile': textfile, 'triage': {
            'app_dir': app, 'health_url': '', 'log_path': os.path.join(workdir, 'none.log'), 'window': '1h'}},
            handle)
    approaches = [('exporter', exporter_run(runner, config, textfile)),
                  ('runbook SQL', runbook_session(path, 'integrity_check')),
                  ('runbook SQL, quick_check', runbook_session(path, 'quick_check'))]
    for dummy, func in approaches:   # warm the page cache and the growth sample
        func()
    times = {name: [] for name, dummy in approaches}
    for dummy in range(repeat):
        for name, func in approaches:
            times[name].append(timed(func))
    with open(textfile) as handle:
        exported = handle.read()
    assert 'claude_flow_triage_up{host="bench"} 1' in exported, exported
    assert 'claude_flow_cache_hit_rate{' in exported and 'claude_flow_truth_score{' in exported, exported
    for suffix in ('', '-wal', '-shm'):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    shutil.rmtree(app)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[100000, 1000000, 10000000])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--out')
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='bench-exporter-', dir=os.path.join(REPO, 'bench', 'results')
                               if os.path.isdir(os.path.join(REPO, 'bench', 'results')) else None)
    runner = os.path.join(workdir, 'claude-flow-exporter.pyz')
    subprocess.run([sys.executable, BUILD, REPO, runner], check=True, capture_output=True)
    lines = ['Measured %s on %s, %d cores, Python %s, SQLite %s, load average %s; best (median) of %d rounds, ms.'
             % (time.strftime('%Y-%m-%d'), platform.machine(), os.cpu_count(), platform.python_version(),
                sqlite3.sqlite_version, ' '.join('%.1f' % x for x in os.getloadavg()), args.repeat),
             '', '| rows | exporter run | runbook SQL (integrity_check) | exporter / runbook | '
                 'runbook SQL (quick_check) | exporter / runbook quick |', '|---|---|---|---|---|---|']
    try:
        for size in args.sizes:
            times = measure(size, workdir, args.repeat, runner)
            best = {name: min(values) for name, values in times.items()}
            med = {name: statistics.median(values) for name, values in times.items()}
            lines.append('| %d | %.0f (%.0f) | %.0f (%.0f) | %.2f | %.0f (%.0f) | %.2f |' % (
                size, best['exporter'], med['exporter'], best['runbook SQL'], med['runbook SQL'],
                best['exporter'] / best['runbook SQL'], best['runbook SQL, quick_check'],
                med['runbook SQL, quick_check'], best['exporter'] / best['runbook SQL, quick_check']))
            print(lines[-1], file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = '\n'.join(lines) + '\n'
    print(text)
    if args.out:
        with open(args.out, 'w') as handle:
            handle.write(text)


if __name__ == '__main__':
    main()
