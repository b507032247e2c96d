"""The triage module against the runbook's own assessment commands, side by side, on one host and one DB.

Sets up a real app directory: a runbook-profile memory.db from tests/lab/memory_db_gen.py, the
claude-flow stand-in (as ./claude-flow, where the runbook calls it, and node_modules/.bin/claude-flow,
where the collection finds it) with the reference .swarm/verification-memory.json, an application
log, and the app stand-in serving /health on a free loopback port. Then, in interleaved rounds, times

  * runbook        P0 step 1 + P1 step 1 as a bash script: process check, curl -f /health,
                   ./claude-flow verify status, neural status, truth --report, truth --json | jq,
                   tail -500 | grep, the P1 metrics SQL (ops/sec, cache hit rate, truth score) and
                   PRAGMA integrity_check via sqlite3
  * runbook, quick the same script with PRAGMA quick_check (the depth triage checks above 64 MiB), for reference
  * module         plugins/modules/triage.py as one process (what the task costs on the host)
  * ansible        `ansible localhost -c local -m claude_flow.runbook.triage` (one ad-hoc task)
  * playbook       `ansible-playbook` with one play of one triage task, connection local
  * ping           `ansible localhost -m ansible.builtin.ping`: what any one task costs here (reference)

The runbook script, the module, the ad-hoc task and the play run twice: against the claude-flow
stand-in and against the real release (--real-cli, default 2.7.47, from tests/lab/real_claude_flow.py's
cache; installed there when the cache is cold), in a second app dir with the same DB and state; the table
says which CLI each row used. `./claude-flow` is the local install there (what the 2.x wrapper runs when
one exists) and the runbook's `npx claude-flow neural status` is node_modules/.bin/claude-flow (npx
resolves the local install to it; offline, npx without one hangs). Last, `--version` of the real CLI
against reading node_modules/claude-flow/package.json: what asking node for the version costs.

Both ansible runs use the repository's ansible.cfg (ANSIBLE_CONFIG), so the controller's own
start-up, module packaging and result callback are in the numbers. Prints best and median wall ms
and ours/runbook, checks that every approach really ran (exit codes, what it read), and then times
each of the module's probes in-process, to show where its own work goes.

  python bench/bench_triage.py [--rows 100000] [--repeat 5] [--real-cli 2.7.47|''] [--out FILE]
"""

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, 'tests', 'lab'))

import memory_db_gen  # noqa: E402
import real_claude_flow  # noqa: E402

CLAUDE_FLOW = os.path.join(REPO, 'tests', 'lab', 'standins', 'claude-flow')
APP = os.path.join(REPO, 'tests', 'lab', 'standins', 'app.py')
STATE = os.path.join(REPO, 'tests', 'fixtures', 'claude-flow-reference', 'state__history.json')
MODULE = os.path.join(REPO, 'plugins', 'modules', 'triage.py')
BIN = os.path.dirname(sys.executable)

# P1 step 1's metrics query, verbatim.
RUNBOOK_METRICS_SQL = """
SELECT
  'Ops/sec' as metric,
  COUNT(*) * 1.0 / (julianday('now') - julianday(MIN(created_at))) / 86400.0 as value
FROM task_trajectories
WHERE created_at > datetime('now', '-1 hour')
UNION ALL
SELECT
  'Cache Hit Rate',
  ROUND(
    100.0 * SUM(CASE WHEN last_used > datetime('now', '-1 hour') THEN usage_count ELSE 0 END) /
    NULLIF(SUM(usage_count), 0),
    2
  )
FROM patterns
UNION ALL
SELECT
  'Truth Score',
  (SELECT AVG(truth_score) FROM verification_history WHERE timestamp > datetime('now', '-1 hour'));
"""

# The runbook's commands as an operator pastes them, in the app dir. `systemctl status
# claude-code-production` becomes pgrep: the app stand-in is a plain process here, not a unit.
SCRIPT = r"""#!/usr/bin/env bash
# Runbook P0 step 1 + P1 step 1 (assessment), as written; paths and port filled in by bench_triage.py.
cd {app}
pgrep -af 'app.py --app-dir {app} '
curl -f http://127.0.0.1:{port}/health
echo
./claude-flow verify status
{neural_status} || echo "neural status exited $?"
./claude-flow truth --report
./claude-flow truth --json | jq -r '.overall.score'
tail -500 {log} | grep -i "critical\|error\|fatal"
sqlite3 .swarm/memory.db "{metrics_sql}"
sqlite3 .swarm/memory.db "PRAGMA {integrity};"
"""

COVERS = {
    'runbook': 'process up, /health, verify status, neural status, truth report, truth score via jq, error lines '
               '(printed, not counted), ops/sec, cache hit rate, truth score (SQL), full integrity_check; '
               'no classification',
    'runbook_quick': 'as above with quick_check (the depth triage checks on DBs above 64 MiB)',
    'module': 'ours: /health, integrity_check (quick_check above 64 MiB), ops/sec, cache hit rate, truth score + per-agent scores, GOAP avg, '
              'patterns created 24h, DB+WAL size, growth rate, disk free, log size + error/critical/fatal counts, '
              'quarantined ratio, P0-P3 with reasons and the response playbook',
    'ansible': 'the module as one ad-hoc task (controller start-up, AnsiballZ, callback included)',
    'playbook': 'the module as a one-task play (playbook parsing included)',
    'ping': 'reference, not triage: the cost of any one ad-hoc task here',
}
LABELS = {
    'runbook': 'runbook commands (bash script)',
    'runbook_quick': 'runbook commands, quick_check instead of integrity_check',
    'module': 'triage module as a process',
    'ansible': 'triage via `ansible` ad-hoc, 1 task',
    'playbook': 'triage via `ansible-playbook`, 1 task',
    'ping': '`ansible localhost -m ansible.builtin.ping`',
}
# The same approaches against the real release (--real-cli): name + REAL.
REAL = '_real'
WITH_REAL = ('runbook', 'module', 'ansible', 'playbook')


def free_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def write_log(path, lines=3000):
    """An application log in the app's format, with some error/critical/fatal lines in its last 500."""
    levels = ['INFO'] * 90 + ['WARN'] * 6 + ['ERROR'] * 3 + ['CRITICAL']
    start = time.time() - lines
    with open(path, 'w') as handle:
        for i in range(lines):
            stamp = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(start + i))
            level = levels[(i * 37) % len(levels)]
            handle.write('%s %s %s task-%d handled in %d ms\n' % (stamp, level, 'swarm', i, 5 + i % 40))
        handle.write('%s FATAL neural worker exited (bench fixture)\n' % time.strftime(
            '%Y-%m-%dT%H:%M:%SZ', time.gmtime()))


def make_app(work, rows):
    app = os.path.join(work, 'app')
    os.makedirs(os.path.join(app, 'node_modules', '.bin'))
    os.makedirs(os.path.join(app, '.swarm'))
    for dest in (os.path.join(app, 'claude-flow'), os.path.join(app, 'node_modules', '.bin', 'claude-flow')):
        shutil.copy2(CLAUDE_FLOW, dest)
    with open(os.path.join(app, '.claude-flow-standin-version'), 'w') as handle:
        handle.write('2.7.47\n')
    shutil.copy(STATE, os.path.join(app, '.swarm', 'verification-memory.json'))
    started = time.perf_counter()
    summary = memory_db_gen.generate(os.path.join(app, '.swarm', 'memory.db'), profile='runbook', rows=rows, seed=1)
    print('generated %d rows (%s) in %.1f s' % (rows, summary['journal_mode'], time.perf_counter() - started),
          file=sys.stderr)
    log = os.path.join(work, 'application.log')
    write_log(log)
    return app, log


def make_real_app(work, app, version):
    """A second app dir deploying the real release (node_modules of the cached install), with the same
    memory.db (copied with the backup API) and verification state as `app`."""
    stamp = real_claude_flow.install(version)
    real_app = real_claude_flow.link_app(os.path.join(real_claude_flow.cache_root(), stamp['key']),
                                         os.path.join(work, 'app-real'))
    os.symlink(os.path.join('node_modules', '.bin', 'claude-flow'), os.path.join(real_app, 'claude-flow'))
    os.makedirs(os.path.join(real_app, '.swarm'))
    shutil.copy(STATE, os.path.join(real_app, '.swarm', 'verification-memory.json'))
    source = sqlite3.connect(os.path.join(app, '.swarm', 'memory.db'))
    target = sqlite3.connect(os.path.join(real_app, '.swarm', 'memory.db'))
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    return real_app


def start_app(app, log):
    port = free_port()
    proc = subprocess.Popen([sys.executable, APP, '--app-dir', app, '--port', str(port), '--bind', '127.0.0.1',
                             '--log', log], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = 'http://127.0.0.1:%d/health' % port
    # /health runs quick_check on the DB: seconds on a multi-GB file, so wait generously.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit('app stand-in exited: %s' % proc.stderr.read().decode())
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                if response.status == 200:
                    return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit('app stand-in did not answer %s within 120 s' % url)


def stop_app(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def ansible_env():
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'),
               PATH=BIN + os.pathsep + os.environ.get('PATH', ''))
    env.pop('ANSIBLE_STDOUT_CALLBACK', None)
    return env


def tool(name):
    path = os.path.join(BIN, name)
    return path if os.path.exists(path) else shutil.which(name)


def commands(work, app, log, port, suffix=''):
    """{approach + suffix: (argv, env, check(stdout) -> summary string)} for one app dir."""
    triage_args = {'app_dir': app, 'health_url': 'http://127.0.0.1:%d/health' % port, 'log_path': log}
    scripts = {}
    for name, integrity in (('runbook', 'integrity_check'), ('runbook_quick', 'quick_check')):
        scripts[name] = os.path.join(work, name + suffix + '.sh')
        with open(scripts[name], 'w') as handle:
            handle.write(SCRIPT.format(app=app, port=port, log=log, integrity=integrity,
                                       neural_status='node_modules/.bin/claude-flow neural status',
                                       metrics_sql=RUNBOOK_METRICS_SQL.strip().replace('"', '\\"')))
    args_file = os.path.join(work, 'args%s.json' % suffix)
    with open(args_file, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': dict(triage_args, _ansible_remote_tmp=work)}, handle)
    playbook = os.path.join(work, 'triage%s.yml' % suffix)
    with open(playbook, 'w') as handle:
        handle.write('- name: Triage\n  hosts: localhost\n  connection: local\n  gather_facts: false\n'
                     '  tasks:\n    - name: Assess\n      claude_flow.runbook.triage: %s\n' % json.dumps(triage_args))
    module_env = dict(os.environ, PYTHONPATH=os.path.join(REPO, '.collections'))
    plan = {
        'runbook': (['bash', scripts['runbook']], None, check_script),
        'runbook_quick': (['bash', scripts['runbook_quick']], None, check_script),
        'module': ([sys.executable, MODULE, args_file], module_env, check_module),
        'ansible': ([tool('ansible'), 'localhost', '-i', 'localhost,', '-c', 'local', '-m', 'claude_flow.runbook.triage',
                     '-a', json.dumps(triage_args)], ansible_env(), check_ansible),
        'playbook': ([tool('ansible-playbook'), '-i', 'localhost,', playbook], ansible_env(), check_playbook),
        'ping': ([tool('ansible'), 'localhost', '-i', 'localhost,', '-c', 'local', '-m', 'ansible.builtin.ping'],
                 ansible_env(), check_ping),
    }
    if suffix:
        plan = dict((name + suffix, plan[name]) for name in WITH_REAL)
    return plan


def version_cost(app, repeat):
    """Best ms of `claude-flow --version` (a node start) and of reading node_modules/claude-flow/package.json."""
    package = os.path.join(app, 'node_modules', 'claude-flow', 'package.json')
    best_cli, best_read, printed, read = float('inf'), float('inf'), None, None
    for dummy in range(max(repeat, 3)):
        started = time.perf_counter()
        printed = subprocess.run([os.path.join(app, 'node_modules', '.bin', 'claude-flow'), '--version'], cwd=app,
                                 env=real_claude_flow.cli_env(), capture_output=True, text=True,
                                 check=True).stdout.strip().splitlines()[0]
        best_cli = min(best_cli, (time.perf_counter() - started) * 1000.0)
        started = time.perf_counter()
        with open(package) as handle:
            read = json.load(handle)['version']
        best_read = min(best_read, (time.perf_counter() - started) * 1000.0)
    if printed.lstrip('v').split()[-1].lstrip('v') != read:
        raise SystemExit('--version printed %r but package.json says %r' % (printed, read))
    return best_cli, best_read, printed


def check_script(out):
    """The script read real values: health JSON, the three metrics, integrity 'ok'."""
    lines = out.splitlines()
    metrics = dict(line.split('|', 1) for line in lines if line.split('|')[0] in
                   ('Ops/sec', 'Cache Hit Rate', 'Truth Score'))
    if '"status": "ok"' not in out or len(metrics) != 3 or lines[-1] != 'ok':
        raise SystemExit('runbook script did not read everything:\n' + out[-3000:])
    # Real 2.7.x `truth --json` has no .overall, so the runbook's jq path prints null.
    return 'ops/sec %.2f, cache hit %s%%, truth %.4f, `jq -r .overall.score` printed %s' % (
        float(metrics['Ops/sec']), metrics['Cache Hit Rate'], float(metrics['Truth Score']),
        'null' if 'null' in lines else 'a value')


def check_module(out):
    result = json.loads(out)
    if result.get('failed') or 'severity' not in result:
        raise SystemExit('triage module failed: %s' % out[-3000:])
    m = result['metrics']
    return ('severity %s, ops/sec %s, cache hit %s%%, truth %s (from %s), unknown: %s; the module\'s own work '
            '(execution_time_ms, after imports) %d ms' % (
                result['severity'], m.get('ops_per_second'), m.get('cache_hit_rate'), m.get('truth_score'),
                result['details'].get('truth', {}).get('source'), ', '.join(sorted(result['unknown'])) or 'none',
                result['execution_time_ms']))


def check_ansible(out):
    if 'severity' not in out:
        raise SystemExit('ansible run did not return a triage result:\n' + out[-3000:])
    return 'ok'


def check_ping(out):
    if 'pong' not in out:
        raise SystemExit('ansible ping failed:\n' + out[-3000:])
    return 'pong'


def check_playbook(out):
    if 'ok=1 ' not in out or 'failed=0 ' not in out:
        raise SystemExit('ansible-playbook did not run the triage task:\n' + out[-3000:])
    return 'ok'


def run_once(argv, env):
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = (time.perf_counter() - started) * 1000.0
    # grep finding no line exits 1 inside the script; only the script's last command decides its rc.
    if proc.returncode != 0:
        raise SystemExit('%s exited %d:\n%s%s' % (argv[0], proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    return elapsed, proc.stdout


def probe_breakdown(app, log, port, repeat):
    """Best ms of each of the triage module's probes, in-process: where the module's own work goes."""
    sys.path.insert(0, os.path.join(REPO, '.collections'))
    from ansible_collections.claude_flow.runbook.plugins.module_utils import triage
    db = os.path.join(app, '.swarm', 'memory.db')
    url = 'http://127.0.0.1:%d/health' % port
    probes = [
        # 64 MiB: the triage module's default integrity_check_max_bytes.
        ('database: integrity check + metrics (incl. growth sample)',
         lambda f: triage.probe_database(f, db, 3600, 5000, True, full_check_max_bytes=64 << 20)),
        ('health: GET /health (the app runs quick_check)', lambda f: triage.probe_health(f, url, 60)),
        ('disk: statvfs', lambda f: triage.probe_disk(f, db)),
        ('log: last 500 lines', lambda f: triage.probe_log(f, log, 500)),
        ('truth: scores (source auto)', lambda f: triage.probe_truth(f, triage.truth_reader(app, None, None, db, 3600))),
        ('quarantine: registry + known agents', lambda f: triage.probe_quarantine(
            f, triage.quarantine_reader(app, None, None, db))),
    ]
    best = dict((name, float('inf')) for name, dummy in probes)
    for dummy in range(repeat):
        facts = triage.Facts()
        for name, probe in probes:
            started = time.perf_counter()
            probe(facts)
            best[name] = min(best[name], (time.perf_counter() - started) * 1000.0)
    return [(name, best[name]) for name, dummy in probes]


def table_rows(db):
    conn = sqlite3.connect('file:%s?mode=ro' % db, uri=True)
    try:
        return dict((t, conn.execute('SELECT COUNT(*) FROM %s' % t).fetchone()[0])
                    for t in ('patterns', 'task_trajectories', 'verification_history'))
    finally:
        conn.close()


def machine():
    sqlite = subprocess.run(['sqlite3', '--version'], capture_output=True, text=True, check=True).stdout.split()[:1]
    ansible = subprocess.run([tool('ansible'), '--version'], capture_output=True, text=True,
                             check=True).stdout.split('\n')[0]
    return '%s, %d cores, Python %s, sqlite3 CLI %s, %s, load average (1/5/15 min) at the end %s' % (
        time.strftime('%Y-%m-%d'), os.cpu_count(), platform.python_version(), ''.join(sqlite), ansible.strip(),
        '/'.join('%.1f' % x for x in os.getloadavg()))


def render(rows_n, repeat, times, seen, counts, host, breakdown, real_version=None, version=None):
    base = min(times['runbook'])
    real_base = min(times['runbook' + REAL]) if real_version else None
    out = ['Triage at %d rows (%s), wall ms, best and median of %d interleaved rounds. %s.' % (
        rows_n, ', '.join('%s %d' % kv for kv in sorted(counts.items())), repeat, host), '',
        '| approach | claude-flow CLI | wall ms (best) | wall ms (median) | ours / runbook (best) | covers |',
        '|---|---|---:|---:|---:|---|']
    order = list(LABELS)
    if real_version:
        order = [item for name in LABELS for item in ((name, name + REAL) if name in WITH_REAL else (name,))]
    for name in order:
        plain = name[:-len(REAL)] if name.endswith(REAL) else name
        cli = 'real %s' % real_version if name.endswith(REAL) else 'stand-in 2.7.47'
        if plain == 'ping':
            cli = 'none'
        best = min(times[name])
        own_base = real_base if name.endswith(REAL) else base
        ratio = '1.00 (baseline)' if plain == 'runbook' else '%.2f' % (best / own_base)
        if plain == 'ping':
            ratio = '(%.2f)' % (best / base)
        out.append('| %s | %s | %.0f | %.0f | %s | %s |' % (
            LABELS[plain], cli, best, statistics.median(times[name]), ratio, COVERS[plain]))
    out += ['', 'Ratios compare rows that use the same CLI (the real rows against the real runbook row).']
    if version:
        cli_ms, read_ms, printed = version
        out += ['', 'The installed version: `node_modules/.bin/claude-flow --version` (real %s, prints %r) '
                'best %.0f ms; reading node_modules/claude-flow/package.json best %.2f ms.' % (
                    real_version, printed, cli_ms, read_ms)]
    out += ['', 'What each read (last round):', '']
    out += ['- %s (%s): %s' % (LABELS[name[:-len(REAL)] if name.endswith(REAL) else name],
                               'real CLI' if name.endswith(REAL) else 'no CLI' if name == 'ping' else 'stand-in',
                               seen[name])
            for name in order if seen.get(name)]
    out += ['', 'Where the module\'s own work goes (each probe in-process, best of %d):' % repeat, '',
            '| probe | ms |', '|---|---:|']
    out += ['| %s | %.1f |' % (name, ms) for name, ms in breakdown]
    return '\n'.join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rows', type=int, default=100000, help='rows in the generated memory.db')
    parser.add_argument('--repeat', type=int, default=5, help='timed rounds (each runs every approach once)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed rounds first (page cache, .pyc files)')
    parser.add_argument('--workdir', default=os.path.join(HERE, 'results'))
    parser.add_argument('--out', help='also write the table (Markdown) to this file')
    parser.add_argument('--real-cli', default='2.7.47', metavar='VERSION',
                        help="real claude-flow release for the real-CLI rows ('' leaves them out)")
    args = parser.parse_args()
    if args.repeat < 1 or args.warmup < 0:
        parser.error('--repeat must be 1 or more and --warmup 0 or more')
    for name in ('bash', 'curl', 'jq', 'sqlite3', 'pgrep', 'tail', 'grep'):
        if not shutil.which(name):
            parser.error('%s is not installed; run `make deps` (tests/lab/ensure-deps.sh)' % name)
    os.makedirs(args.workdir, exist_ok=True)
    work = tempfile.mkdtemp(prefix='triage-', dir=args.workdir)
    app_proc = real_proc = None
    version = None
    try:
        app, log = make_app(work, args.rows)
        real_app = make_real_app(work, app, args.real_cli) if args.real_cli else None
        app_proc, port = start_app(app, log)
        plan = commands(work, app, log, port)
        if real_app:
            real_proc, real_port = start_app(real_app, log)
            plan.update(commands(work, real_app, log, real_port, REAL))
        times = dict((name, []) for name in plan)
        seen = {}
        names = list(plan)
        for round_no in range(args.warmup + args.repeat):
            # Each round starts with another approach, so none always runs right after the same one.
            shift = round_no % len(names)
            for name in names[shift:] + names[:shift]:
                argv, env, check = plan[name]
                elapsed, out = run_once(argv, env)
                seen[name] = check(out)
                if round_no >= args.warmup:
                    times[name].append(elapsed)
        breakdown = probe_breakdown(app, log, port, args.repeat)
        if real_app:
            version = version_cost(real_app, args.repeat)
        table = render(args.rows, args.repeat, times, seen, table_rows(os.path.join(app, '.swarm', 'memory.db')),
                       machine(), breakdown, args.real_cli or None, version)
    finally:
        for proc in (app_proc, real_proc):
            if proc is not None:
                stop_app(proc)
        shutil.rmtree(work, ignore_errors=True)
    print(table)
    if args.out:
        with open(args.out, 'w') as handle:
            handle.write(table + '\n')


if __name__ == '__main__':
    main()
