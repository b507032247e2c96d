"""Fleet benchmark: playbooks/triage.yml over 1, 10, 25 and 50 lab hosts, against the runbook's own
shell assessment run over ssh host by host.

One lab of the largest size is brought up (tests/lab/lab.py, in a state dir of its own, so its
namespaces never meet another lab's) and always taken down. Every host is healthy, so triage.yml runs
report-only: its assessment play, and response plays that match no host (the run is checked for
that: a run in which any response play touched a host fails the benchmark). Each size is a subset of
the same fleet (`-l lab1,...`), measured in interleaved rounds; the best wall time of the rounds is
reported with the per-host cost and the ratio to one host.

Variants at the largest size show what the controller settings do: forks, the `free` strategy,
pipelining off, and mitogen (a mitogen 0.3.x checkout given with --mitogen DIR, e.g. an unpacked
wheel from PyPI; when it cannot load on this ansible-core the exact error is reported).

The runbook baseline is P0 step 1's assessment, one ssh session per host, one host after the other
(what an operator's `for h in ...; do ssh $h '...'; done` does): systemctl status, curl -f /health,
./claude-flow verify status, tail -500 | grep -i 'critical|error|fatal', sqlite3 PRAGMA integrity_check.

  python bench/bench_fleet.py [--sizes 1 10 25 50] [--repeat 2] [--mitogen DIR] [--json FILE] [--doc] [--note TEXT]
  python bench/bench_fleet.py --from-json FILE [--doc]      (render an earlier run's numbers again)

--doc writes the results into docs/performance.md between <!-- fleet:start --> and <!-- fleet:end -->.
Needs root (the lab).
"""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LAB_PY = os.path.join(REPO, 'tests', 'lab', 'lab.py')
TRIAGE = os.path.join(REPO, 'playbooks', 'triage.yml')
DOC = os.path.join(REPO, 'docs', 'performance.md')
START, END = '<!-- fleet:start -->', '<!-- fleet:end -->'

# P0 step 1 of the runbook, as one ssh session per host (claude-flow is called where the deployment has it).
RUNBOOK_ASSESSMENT = """
systemctl status claude-code-production >/dev/null; echo "service rc=$?"
curl -sf -o /dev/null http://localhost:8080/health; echo "health rc=$?"
cd /opt/claude-code-production && node_modules/.bin/claude-flow verify status >/dev/null; echo "verify rc=$?"
tail -500 /var/log/claude-code/application.log | grep -ci "critical\\|error\\|fatal"
sqlite3 /opt/claude-code-production/.swarm/memory.db "PRAGMA integrity_check;"
"""


def lab_cli(*args, timeout=900):
    proc = subprocess.run([sys.executable, LAB_PY] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise SystemExit('lab.py %s failed:\n%s' % (' '.join(args), proc.stdout))
    return proc.stdout


def hosts(n):
    return ['lab%d' % index for index in range(1, n + 1)]


class Bench(object):
    def __init__(self, state_dir, mitogen=None):
        self.state_dir = state_dir
        self.inventory = os.path.join(state_dir, 'hosts.yml')
        self.mitogen = mitogen
        with open(os.path.join(state_dir, 'lab.json')) as handle:
            self.hub = json.load(handle)['hub']

    def env(self, **settings):
        env = dict(os.environ)
        env.update({'ANSIBLE_CONFIG': os.path.join(REPO, 'ansible.cfg'), 'ANSIBLE_NOCOLOR': '1',
                    'ANSIBLE_SSH_CONTROL_PATH_DIR': os.path.join(self.state_dir, 'cp'),
                    'PATH': os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')})
        vault_password = os.path.join(REPO, 'tests', 'lab', 'vault-password.txt')
        if os.path.exists(vault_password):
            # the lab inventory's group_vars hold vault-encrypted (made-up) escalation contacts
            env['ANSIBLE_VAULT_IDENTITY_LIST'] = 'lab@' + vault_password
        env.update({key: str(value) for key, value in settings.items()})
        return env

    def close_masters(self):
        """Each triage run starts without ssh masters, as a fresh run on an operator's machine does."""
        cp_dir = os.path.join(self.state_dir, 'cp')
        for name in os.listdir(cp_dir) if os.path.isdir(cp_dir) else []:
            subprocess.run(['ssh', '-O', 'exit', '-o', 'ControlPath=' + os.path.join(cp_dir, name), 'lab'],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10, check=False)

    def triage(self, n, **settings):
        """One run; returns (process, wall s). self.last_cpu: the controller's CPU s for it (ansible-playbook,
        its forks and the ssh clients: everything it waited for)."""
        self.close_masters()
        cmd = ['ansible-playbook', '-i', self.inventory, TRIAGE, '-l', ','.join(hosts(n)),
               '-e', 'claude_flow_triage_report_only=true']
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        proc = subprocess.run(cmd, cwd=REPO, env=self.env(**settings), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, timeout=1800, check=False)
        seconds = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.last_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return proc, seconds

    def module_cpu(self, rounds=5):
        """CPU s of one triage module run inside a lab host (what every host adds, on the same cores here):
        plugins/modules/triage.py with the lab's settings, best of rounds."""
        args_dir = os.path.join(REPO, 'bench', 'results')   # visible inside the hosts (not overlaid)
        os.makedirs(args_dir, exist_ok=True)
        args = os.path.join(args_dir, 'fleet-triage-args.json')
        with open(args, 'w') as handle:
            json.dump({'ANSIBLE_MODULE_ARGS': {
                'path': '/opt/claude-code-production/.swarm/memory.db', 'app_dir': '/opt/claude-code-production',
                'health_url': 'http://localhost:8080/health', 'window': '1h',
                'thresholds': {'ops_per_second': {'P0': 0.2, 'P1': 0.4, 'P2': 0.5}},
                '_ansible_check_mode': False, '_ansible_remote_tmp': '/root/.ansible/tmp'}}, handle)
        # the venv's python (visible inside the hosts: the checkout is not overlaid) has ansible.module_utils,
        # which Ansible would ship to the host inside the module's zip
        script = ('TIMEFORMAT=%%3U+%%3S; time PYTHONPATH=%s %s %s %s | grep -q \'"severity"\''
                  % (os.path.join(REPO, '.collections'), sys.executable,
                     os.path.join(REPO, 'plugins', 'modules', 'triage.py'), args))
        sys.path.insert(0, os.path.dirname(LAB_PY))
        import lab as labmod
        the_lab = labmod.Lab(self.state_dir)
        values = []
        try:
            for _round in range(rounds):
                proc = the_lab.exec(1, ['bash', '-o', 'pipefail', '-c', script], capture=True)
                if proc.returncode != 0:
                    raise SystemExit('the triage module failed inside lab1: %s' % proc.stderr)
                user, system = proc.stderr.strip().splitlines()[-1].split('+')
                values.append(float(user) + float(system))
        finally:
            os.unlink(args)
        return min(values)

    def check_report_only(self, proc, n):
        """The run assessed every host and no response play touched one."""
        if proc.returncode != 0:
            raise SystemExit('triage.yml failed (rc %d):\n%s' % (proc.returncode, proc.stdout[-4000:]))
        assessed = re.findall(r'^ok: \[(lab\d+)\] => ', proc.stdout, re.M)
        severities = re.findall(r'(lab\d+): (\S+) -> ', proc.stdout)
        if len(set(assessed)) < n or len(severities) != n:
            raise SystemExit('triage.yml did not assess all %d hosts:\n%s' % (n, proc.stdout[-4000:]))
        plays = re.split(r'^PLAY \[', proc.stdout, flags=re.M)[2:]   # [0]: preamble, [1]: the assessment play
        for block in plays:
            name = block.split(']', 1)[0]
            if name.startswith('Triage') or 'RECAP' in name:
                continue
            body = [line for line in block.split('\n')[1:] if line.strip() and not line.startswith('[WARNING]')]
            if not body or body[0].strip() != 'skipping: no hosts matched':
                raise SystemExit('the response play "%s" ran on a host: the fleet is not healthy, the run was not '
                                 'report-only:\n%s' % (name, proc.stdout[-4000:]))
        return sorted(set(severity for _host, severity in severities))

    def runbook_shell(self, n):
        """The runbook's assessment over plain ssh, one host after the other, no connection sharing."""
        key = os.path.join(self.state_dir, 'id_ed25519')
        started = time.monotonic()
        for index in range(1, n + 1):
            proc = subprocess.run(
                ['ssh', '-i', key, '-o', 'ProxyCommand=ip netns exec %s nc %%h %%p' % self.hub,
                 '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
                 '-o', 'ControlMaster=no', '-o', 'ControlPath=none', '-o', 'BatchMode=yes',
                 'root@198.18.0.%d' % (10 + index), RUNBOOK_ASSESSMENT],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120, check=False)
            if 'health rc=0' not in proc.stdout or not proc.stdout.rstrip().endswith('ok'):
                raise SystemExit('the runbook assessment failed on lab%d:\n%s' % (index, proc.stdout))
        return time.monotonic() - started

    def mitogen_settings(self):
        if not self.mitogen:
            return None, 'not measured (pass --mitogen DIR with an unpacked mitogen 0.3.x wheel)'
        strategy = os.path.join(self.mitogen, 'ansible_mitogen', 'plugins', 'strategy')
        if not os.path.isdir(strategy):
            return None, '%s has no ansible_mitogen/plugins/strategy' % self.mitogen
        return {'ANSIBLE_STRATEGY_PLUGINS': strategy, 'ANSIBLE_STRATEGY': 'mitogen_linear',
                'PYTHONPATH': self.mitogen}, None


def best(values):
    return min(values)


def measure(bench, sizes, repeat):
    results = {'triage': {n: [] for n in sizes}, 'shell': {n: [] for n in sizes}, 'cpu': {n: [] for n in sizes},
               'severities': {}}
    for _round in range(repeat):
        for n in sizes:
            proc, seconds = bench.triage(n)
            results['severities'][n] = bench.check_report_only(proc, n)
            results['triage'][n].append(seconds)
            results['cpu'][n].append(bench.last_cpu)
            results['shell'][n].append(bench.runbook_shell(n))
    results['module_cpu'] = bench.module_cpu()
    return results


def variants(bench, n, repeat):
    """Controller settings at the largest size: (label, settings or None, note)."""
    rows = []
    options = [('ansible.cfg as is (forks 25, linear, pipelining on)', {}),
               ('forks 50', {'ANSIBLE_FORKS': 50}),
               ('forks 50, strategy free', {'ANSIBLE_FORKS': 50, 'ANSIBLE_STRATEGY': 'free'}),
               ('forks 50, pipelining off', {'ANSIBLE_FORKS': 50, 'ANSIBLE_PIPELINING': 'False'})]
    mitogen, reason = bench.mitogen_settings()
    if mitogen:
        options.append(('forks 50, mitogen_linear', dict(mitogen, ANSIBLE_FORKS=50)))
    for label, settings in options:
        times, note = [], ''
        for _round in range(repeat):
            proc, seconds = bench.triage(n, **settings)
            if proc.returncode != 0:
                errors = [line for line in proc.stdout.splitlines() if 'ERROR' in line or 'rror' in line]
                note = (errors[0] if errors else proc.stdout.strip().splitlines()[-1]).strip()[:400]
                break
            bench.check_report_only(proc, n)
            times.append(seconds)
        rows.append({'label': label, 'seconds': best(times) if times else None, 'note': note})
    if not mitogen:
        rows.append({'label': 'mitogen', 'seconds': None, 'note': reason})
    return rows


def table(results, sizes, variant_rows, meta):
    one = best(results['triage'][sizes[0]])
    lines = ['## Fleet', '',
             '`bench/bench_fleet.py`: `playbooks/triage.yml` (report-only: every host healthy, so no response play',
             'matches a host; the benchmark checks that) over lab hosts, against the runbook\'s P0 step 1',
             'assessment (`systemctl status`, `curl -f /health`, `claude-flow verify status`, `tail -500 | grep`,',
             '`sqlite3 ... PRAGMA integrity_check`) run over ssh one host after the other. Best of %d rounds,'
             % meta['repeat'],
             'sizes interleaved; ssh masters closed before each run. %s.' % meta['machine'], '',
             '| Hosts | triage.yml wall s | per host s | ratio to 1 host | controller CPU s | '
             'runbook shell, host by host, s | triage.yml / shell |',
             '|---|---|---|---|---|---|---|']
    for n in sizes:
        wall = best(results['triage'][n])
        shell = best(results['shell'][n])
        lines.append('| %d | %.1f | %.2f | %.2f | %.1f | %.1f | %.2f |' % (
            n, wall, wall / n, wall / one, min(results['cpu'][n]), shell, wall / shell))
    largest = sizes[-1]
    ratio = best(results['triage'][largest]) / one
    cpus = os.cpu_count() or 1
    first, last = sizes[0], sizes[-1]
    per_host_controller = (min(results['cpu'][last]) - min(results['cpu'][first])) / max(last - first, 1)
    module = results['module_cpu']
    floor = last * (per_host_controller + module) / cpus
    lines += ['', 'Controller settings at %d hosts (best of %d):' % (largest, meta['variant_repeat']), '',
              '| Setting | wall s | note |', '|---|---|---|']
    for row in variant_rows:
        lines.append('| %s | %s | %s |' % (row['label'], '%.1f' % row['seconds'] if row['seconds'] else '-',
                                           (row['note'] or '').replace('|', '\\|')))
    lines += ['', 'Target: %d hosts within 4x one host. Measured: %.2fx (%s).'
              % (largest, ratio, 'met' if ratio <= 4 else 'not met'), '',
              'Where the time goes: each further host costs the controller %.2f CPU s (ansible-playbook, its forks, '
              'ssh) and the host %.2f CPU s (the triage module, measured inside a lab host). Here all %d hosts run '
              'on the controller\'s own %d CPUs, so %d hosts need at least %d x (%.2f + %.2f) / %d = %.1f s of '
              'CPU time on top of the one-host run: %.1fx one host before any waiting. On separate machines the '
              'module CPU runs in parallel and only the controller\'s share remains.'
              % (per_host_controller, module, last, cpus, last, last, per_host_controller, module, cpus, floor,
                 (one + floor) / one), '']
    for note in meta['notes']:
        lines += [note, '']
    return '\n'.join(lines).rstrip('\n') + '\n'


def write_doc(text):
    block = '%s\n%s%s\n' % (START, text, END)
    if os.path.exists(DOC):
        with open(DOC) as handle:
            current = handle.read()
        if START in current and END in current:
            current = current[:current.index(START)] + block + current[current.index(END) + len(END) + 1:]
        else:
            current = current.rstrip('\n') + '\n\n' + block
    else:
        current = '# Performance\n\n' + block
    tmp = DOC + '.tmp'
    with open(tmp, 'w') as handle:
        handle.write(current)
    os.replace(tmp, DOC)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[1, 10, 25, 50])
    parser.add_argument('--repeat', type=int, default=2)
    parser.add_argument('--variant-repeat', type=int, default=1)
    parser.add_argument('--mitogen', help='an unpacked mitogen 0.3.x wheel (holds ansible_mitogen/)')
    parser.add_argument('--json', help='also write the raw numbers here')
    parser.add_argument('--doc', action='store_true', help='write the Fleet section of docs/performance.md')
    parser.add_argument('--note', action='append', default=[], help='a line added under the tables (repeatable)')
    parser.add_argument('--from-json', help='render the tables from the --json file of an earlier run, measure nothing')
    args = parser.parse_args()
    if args.from_json:
        with open(args.from_json) as handle:
            saved = json.load(handle)
        results = {kind: ({int(n): v for n, v in values.items()} if isinstance(values, dict) else values)
                   for kind, values in saved['results'].items()}
        meta = dict(saved['meta'], notes=args.note or saved['meta']['notes'])
        text = table(results, sorted(results['triage']), saved['variants'], meta)
        print(text)
        if args.doc:
            write_doc(text)
        return
    if os.geteuid() != 0:
        raise SystemExit('the lab needs root (network, mount and PID namespaces)')
    sizes = sorted(set(args.sizes))
    state_dir = tempfile.mkdtemp(prefix='cflab-bench-fleet-')
    started = time.monotonic()
    try:
        lab_cli('up', '--hosts', str(sizes[-1]), '--state-dir', state_dir)
        bench = Bench(state_dir, args.mitogen)
        bench.triage(sizes[0])   # warm-up: the controller's first run pays for loading collections
        results = measure(bench, sizes, args.repeat)
        variant_rows = variants(bench, sizes[-1], args.variant_repeat)
    finally:
        lab_cli('down', '--state-dir', state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)
    load = os.getloadavg()
    meta = {'repeat': args.repeat, 'variant_repeat': args.variant_repeat, 'notes': args.note,
            'machine': '%d CPUs, load average %.1f at the end, %s, ansible-core %s' % (
                os.cpu_count(), load[0], platform.python_version(), ansible_core_version())}
    text = table(results, sizes, variant_rows, meta)
    print(text)
    print('(benchmark took %.0f s)' % (time.monotonic() - started))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump({'results': {kind: ({str(n): v for n, v in values.items()} if isinstance(values, dict) else values)
                                   for kind, values in results.items()},
                       'variants': variant_rows, 'meta': meta}, handle, indent=1)
    if args.doc:
        write_doc(text)


def ansible_core_version():
    try:
        from ansible.release import __version__
        return __version__
    except ImportError:
        return 'unknown'


if __name__ == '__main__':
    main()
