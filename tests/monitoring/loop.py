"""The closed loop on real lab hosts: exporter -> node_exporter -> Prometheus -> Alertmanager -> ansible-rulebook
-> response playbook -> healthy -> resolved -> incident closed. Used by test_loop.py and `make demo-alerts`.
"""

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import stack as monitoring_stack  # noqa: E402

TOKEN = 'loop-token-not-a-secret'
DB = '/opt/claude-code-production/.swarm/memory.db'
INCIDENTS = '/var/log/claude-code/incidents'


def load_eda_helpers():
    """tests/eda/conftest.py's helpers (ansible-rulebook process, lab in its own state dir)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('eda_helpers', os.path.join(REPO, 'tests', 'eda', 'conftest.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def incidents(lab, host):
    out = lab.sh(host, 'ls -1A %s 2>/dev/null || true' % INCIDENTS)
    return {name: (json.loads(lab.sh(host, 'cat %s/%s' % (INCIDENTS, name))) if name.endswith('.json') else None)
            for name in out.split()}


def deploy(lab, workdir, profile, rules_dir, env, log, limit=None):
    """playbooks/monitoring.yml: the role on lab1..3 (loop schedule: the lab's systemctl has no timers,
    node_exporter on each host's lab address), and the rules from the lab inventory's thresholds."""
    settings = monitoring_stack.PROFILES[profile]
    extra = {
        'claude_flow_monitoring_schedule': 'loop',
        'claude_flow_monitoring_interval': settings['refresh'],
        'claude_flow_monitoring_node_exporter': True,
        'claude_flow_monitoring_node_exporter_listen': '{{ ansible_host }}:9100',
        'claude_flow_monitoring_rules_dir': rules_dir,
        'claude_flow_monitoring_for': settings['for'],
        # The lab's group_vars derive it from inventory_dir, which the controller-side play has not.
        'lab_state_dir': lab.state_dir,
    }
    inventory = os.path.join(workdir, 'inventory')
    if not os.path.isdir(inventory):
        lab.inventory_dir(inventory)
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory,
                           os.path.join(REPO, 'playbooks', 'monitoring.yml'), '-e', json.dumps(extra)]
                          + (['--limit', limit] if limit else []),
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    with open(log, 'w') as handle:
        handle.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise AssertionError('monitoring.yml failed:\n%s' % (proc.stdout[-6000:] + proc.stderr[-2000:]))
    return inventory, proc.stdout


def lab_targets(lab):
    with open(os.path.join(lab.state_dir, 'lab.json')) as handle:
        state = json.load(handle)
    hosts = {}
    for name in ('lab1', 'lab2', 'lab3'):
        record = state['hosts'][name]
        address = record.get('address') or record.get('ip') or '198.18.0.%d' % (10 + int(name[3:]))
        hosts[name] = '%s:9100' % address
    return state['hub'], hosts


class Clock:
    def __init__(self):
        self.marks = {}

    def mark(self, name):
        self.marks.setdefault(name, time.monotonic())

    def between(self, start, end):
        if start in self.marks and end in self.marks:
            return round(self.marks[end] - self.marks[start], 1)
        return None


def run_loop(lab, eda, workdir, profile='tight', timeout=900, say=print):
    """Break lab1 (P0) and lab2 (P1), leave lab3 healthy; return (measurements, facts for assertions)."""
    os.makedirs(workdir, exist_ok=True)
    rules_dir = os.path.join(workdir, 'rules')
    os.makedirs(rules_dir)
    home = os.path.join(workdir, 'home')
    os.makedirs(home)
    env = eda.tool_env(dict(lab.env(), EDA_ALERTMANAGER_TOKEN=TOKEN, HOME=home))
    started = time.monotonic()
    inventory, deploy_out = deploy(lab, workdir, profile, rules_dir, env, os.path.join(workdir, 'deploy.log'))
    say('deployed exporter + node_exporter on lab1..3 and wrote the rules in %.1f s' % (time.monotonic() - started))
    # Idempotent: a second run on a host changes nothing (the runner bundle is byte-for-byte the same).
    dummy, again = deploy(lab, workdir, profile, rules_dir, env, os.path.join(workdir, 'deploy-again.log'), 'lab3')
    token_file = os.path.join(workdir, 'eda-token')
    with open(os.path.join(token_file), 'w') as handle:
        handle.write(TOKEN)
    os.chmod(token_file, 0o600)

    port = eda.free_port()
    vars_file = os.path.join(workdir, 'vars.yml')
    with open(vars_file, 'w') as handle:
        json.dump({'claude_flow_playbook_dir': os.path.join(REPO, 'playbooks'), 'alertmanager_listen_port': port},
                  handle)
    rulebook = eda.RulebookProcess(
        ['-r', os.path.join(eda.RULEBOOKS, 'incident-response.yml'), '-i', inventory, '--vars', vars_file,
         '--env-vars', 'EDA_ALERTMANAGER_TOKEN', '-vv'], env, os.path.join(workdir, 'rulebook.log'))
    hub, targets = lab_targets(lab)
    stack = monitoring_stack.Stack(os.path.join(workdir, 'stack'), profile, 'http://127.0.0.1:%d/alerts' % port,
                                   token_file, os.path.join(rules_dir, 'claude-flow.rules.yml'), targets, hub)
    clock = Clock()
    facts = {'lab3_db_before': lab.sh('lab3', 'sha256sum %s' % DB).split()[0], 'deploy_output': deploy_out,
             'deploy_again_output': again}
    try:
        rulebook.start('http://127.0.0.1:%d/health' % port)
        stack.start()
        # Every host is scraped and healthy before the fault: no alert at all.

        def up():
            return len(stack.query('claude_flow_triage_up == 1')) == 3
        deadline = time.monotonic() + 120
        while not up() and time.monotonic() < deadline:
            time.sleep(1)
        assert up(), 'not every lab host is exported: %s\n%s' % (stack.query('up'), stack.processes[0].output()[-2000:])
        facts['alerts_before'] = [a for a in stack.alerts() if a[2] != 'info']
        say('Prometheus scrapes lab1..3 through the hub; alerts before the fault: %s' % facts['alerts_before'])

        # ansible-rulebook -vv logs the lock it takes for each run: one per started response.
        runs = {'p0': 'Acquired lock: lab1 for action: run_playbook, rule: P0 firing',
                'p1': 'Acquired lock: lab2 for action: run_playbook, rule: P1 firing',
                'p2': 'for action: run_playbook, rule: P2 firing'}
        baseline = {name: rulebook.output().count(text) for name, text in runs.items()}
        lab.lab('break', 'lab1', 'corrupt_db')
        clock.mark('fault')
        lab.lab('break', 'lab2', 'truth_low_p1')
        clock.mark('fault_lab2')
        say('broke lab1 (corrupt_db, P0) and lab2 (truth_low_p1, P1)')
        resolved = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            firing = stack.alerts()
            log = rulebook.output()
            if any(a[1] == 'lab1' and a[2] == 'P0' for a in firing):
                clock.mark('p0_firing')
            if any(a[1] == 'lab2' and a[2] == 'P1' for a in firing):
                clock.mark('p1_firing')
            if log.count(runs['p0']) > baseline['p0']:
                clock.mark('p0_response')
            if log.count(runs['p1']) > baseline['p1']:
                clock.mark('p1_response')
            if 'p0_response' in clock.marks and 'healthy' not in clock.marks:
                health = lab.lab('exec', 'lab1', '--', 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}',
                                 'http://127.0.0.1:8080/health').stdout
                if health == '200':
                    clock.mark('healthy')
            if 'healthy' in clock.marks and not any(a[1] == 'lab1' and a[2] == 'P0' for a in firing):
                clock.mark('p0_resolved')
            lab1 = incidents(lab, 'lab1') if 'p0_resolved' in clock.marks else {}
            resolved = sorted(name for name in lab1 if name.endswith('.resolved.json'))
            if resolved and 'p1_response' in clock.marks:
                clock.mark('closed')
                break
            if not rulebook.alive():
                break
            time.sleep(1)
        time.sleep(3)
        facts.update(rulebook_log=rulebook.output(),
                     p0_runs=rulebook.output().count(runs['p0']) - baseline['p0'],
                     p1_runs=rulebook.output().count(runs['p1']) - baseline['p1'],
                     p2_runs=rulebook.output().count(runs['p2']) - baseline['p2'], alerts_after=stack.alerts(), resolved=resolved,
                     lab1=incidents(lab, 'lab1'), lab2=incidents(lab, 'lab2'), lab3=incidents(lab, 'lab3'),
                     lab3_db_after=lab.sh('lab3', 'sha256sum %s' % DB).split()[0],
                     am_log=stack.processes[1].output() if len(stack.processes) > 1 else '',
                     marks=sorted(clock.marks))
    finally:
        stack.stop()
        rulebook.stop()
    measured = {
        'profile': profile,
        'fault_to_p0_firing_s': clock.between('fault', 'p0_firing'),
        'p0_firing_to_response_started_s': clock.between('p0_firing', 'p0_response'),
        'fault_to_healthy_s': clock.between('fault', 'healthy'),
        'fault_to_alert_resolved_s': clock.between('fault', 'p0_resolved'),
        'fault_to_incident_closed_s': clock.between('fault', 'closed'),
        'fault_to_p1_firing_s': clock.between('fault_lab2', 'p1_firing'),
        'p1_firing_to_response_started_s': clock.between('p1_firing', 'p1_response'),
    }
    return measured, facts
