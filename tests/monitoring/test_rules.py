"""Rules, their promtool unit tests and the Alertmanager config, checked by the real promtool and amtool."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from ansible_collections.claude_flow.runbook.plugins.module_utils import prometheus_exposition as expo
from ansible_collections.claude_flow.runbook.plugins.module_utils import prometheus_rules as rules
from ansible_collections.claude_flow.runbook.plugins.module_utils.severity import CONDITIONS, THRESHOLDS, classify

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB_VARS = os.path.join(REPO, 'inventories', 'lab', 'group_vars', 'all', 'runbook.yml')


def tool(name):
    path = shutil.which(name)
    if not path:
        pytest.fail('%s not found: install the Debian packages prometheus and prometheus-alertmanager (make deps)' % name)
    return path


def write(path, data):
    with open(str(path), 'w') as handle:
        yaml.safe_dump(data, handle, sort_keys=False)
    return str(path)


def run(*argv):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize('overrides', [None, 'lab'], ids=['runbook-defaults', 'lab-inventory'])
def test_promtool_checks_and_unit_tests_generated_from_the_table(tmp_path, overrides):
    if overrides == 'lab':
        with open(LAB_VARS) as handle:
            overrides = yaml.safe_load(handle)['claude_flow_thresholds']
    rule_file = write(tmp_path / 'claude-flow.rules.yml', rules.prometheus_rules(overrides))
    tests = rules.prometheus_rule_tests(['claude-flow.rules.yml'], overrides)
    test_file = write(tmp_path / 'claude-flow.rules.test.yml', tests)
    checked = run(tool('promtool'), 'check', 'rules', rule_file)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(tool('promtool'), 'test', 'rules', test_file)
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-4000:]
    # One boundary pair per threshold, plus the condition cases: nothing in the table is left untested.
    thresholds = sum(len(spec['levels']) for spec in THRESHOLDS.values())
    names = [case['name'] for case in tests['tests']]
    assert len([n for n in names if ' at ' in n or ' past ' in n]) == 2 * thresholds
    assert len([n for n in names if n.split()[0] in CONDITIONS]) == 2 * len(CONDITIONS)


def test_promtool_test_fails_when_a_rule_drifts_from_the_table(tmp_path):
    """The generated tests can fail: a rule using <= at the P0 truth threshold is caught."""
    content = rules.prometheus_rules()
    for rule in content['groups'][0]['rules']:
        if rule['labels'].get('metric') == 'truth_score' and rule['labels']['severity'] == 'P0':
            rule['expr'] = rule['expr'].replace('< 0.85', '<= 0.85')
    write(tmp_path / 'claude-flow.rules.yml', content)
    test_file = write(tmp_path / 't.yml', rules.prometheus_rule_tests(['claude-flow.rules.yml']))
    tested = run(tool('promtool'), 'test', 'rules', test_file)
    assert tested.returncode != 0 and 'truth_score at P0 threshold 0.85' in tested.stdout + tested.stderr


def test_boundaries_agree_with_the_python_classifier():
    for metric, spec in THRESHOLDS.items():
        for level, threshold in spec['levels'].items():
            past = rules._past(spec['direction'], threshold)
            assert classify({metric: past})['severity'] == min(
                (lvl for lvl, thr in spec['levels'].items() if rules._breaches(spec['direction'], past, thr)))
            at = classify({metric: float(threshold)})['severity']
            assert at != level, (metric, level, at)


def test_disabled_metric_has_no_rule_and_override_changes_the_rule():
    default = rules.prometheus_rules()
    changed = rules.prometheus_rules({'truth_score': {'P1': 0.92}, 'ops_per_second': None})
    exprs = [r['expr'] for g in changed['groups'] for r in g['rules']]
    assert not any('claude_flow_ops_per_second' in e for e in exprs)
    assert any(e.startswith('claude_flow_truth_score < 0.92 ') for e in exprs)
    assert not any(e.startswith('claude_flow_truth_score < 0.9 ') for e in exprs)
    assert any(r['expr'].startswith('claude_flow_truth_score < 0.9 ') for g in default['groups'] for r in g['rules'])
    with pytest.raises(rules.RulesError, match='unknown threshold metric'):
        rules.prometheus_rules({'truth': {'P1': 1}})


def test_per_host_overrides_make_one_group_per_set():
    content = rules.prometheus_rules(by_host={'a': {}, 'b': {}, 'c': {'truth_score': {'P0': 0.5}}})
    groups = {g['name']: g for g in content['groups']}
    first = [r['expr'] for r in groups['claude_flow_runbook_0']['rules'] if 'truth_score' in r['expr']]
    second = [r['expr'] for r in groups['claude_flow_runbook_1']['rules'] if 'truth_score' in r['expr']]
    assert all('host!~"c"' in e for e in first) and any('< 0.85' in e for e in first)
    assert all('host=~"c"' in e for e in second) and any('< 0.5' in e for e in second)
    with pytest.raises(rules.RulesError, match='not an inventory host name'):
        rules.prometheus_rules(by_host={'all,!x': {}, 'b': {'truth_score': None}})


def test_amtool_accepts_the_alertmanager_config(tmp_path):
    config = rules.alertmanager_config('http://127.0.0.1:5050/alerts', '/etc/prometheus/eda-token')
    path = write(tmp_path / 'alertmanager.yml', config)
    checked = run(tool('amtool'), 'check-config', path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert 'credentials' not in json.dumps(config).replace('credentials_file', '')
    assert config['route']['group_by'] == ['instance', 'severity']
    sources = [r['source_matchers'] for r in config['inhibit_rules']]
    assert sources == [['severity="P0"'], ['severity="P1"'], ['severity="P2"']]
    with pytest.raises(rules.RulesError, match='absolute path'):
        rules.alertmanager_config('http://127.0.0.1:5050/alerts', 'token.txt')


def test_exposition_escapes_labels_and_uses_fixed_reason_codes():
    verdict = {'metrics': {'truth_score': 0.8, 'agent_score': {'a"b\\c\nd': 0.5}, 'cache_hit_rate': None,
                           'ops_per_second': None},
               'conditions': {'db_corrupt': False},
               'unknown': {'cache_hit_rate': 'no pattern in patterns has been used yet (usage is 0 everywhere)',
                           'ops_per_second': 'table task_trajectories does not exist in this database',
                           'service_down': 'no health_url given',
                           'log_size_bytes': 'something nobody foresaw: "quotes" \n and newlines'}}
    text = expo.render('lab1', verdict, 0.5, 1700000000.0)
    assert 'claude_flow_agent_score{host="lab1",agent="a\\"b\\\\c\\nd"} 0.5' in text
    assert 'claude_flow_truth_score{host="lab1"} 0.8' in text
    assert 'metric="cache_hit_rate",reason="feature_unused"' in text
    assert 'metric="ops_per_second",reason="not_in_schema"' in text
    assert 'metric="service_down",reason="not_configured"' in text
    assert 'metric="log_size_bytes",reason="other"' in text
    assert 'claude_flow_db_missing{host="lab1"} 0' in text
    assert 'claude_flow_ops_per_second{' not in text and 'claude_flow_service_down{' not in text
    for line in text.splitlines():
        if line.startswith(expo.UNAVAILABLE):
            assert line.split('reason="')[1].split('"')[0] in expo.REASON_CODES
    failed = expo.render('lab1', None, 0.1, 1700000000.0)
    assert 'claude_flow_triage_up{host="lab1"} 0' in failed
    assert failed.count('reason="probe_failed"') == len(THRESHOLDS) + len(CONDITIONS)


def test_promtool_parses_the_exposition(tmp_path):
    text = expo.render('lab1', {'metrics': {'truth_score': 0.9, 'agent_score': {'x"y': 0.7}},
                                'conditions': {'db_corrupt': True}, 'unknown': {}}, 0.2, 1700000000.0)
    checked = subprocess.run([tool('promtool'), 'check', 'metrics'], input=text, capture_output=True, text=True,
                             timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_runner_bundle_runs_without_ansible_and_is_reproducible(tmp_path):
    build = os.path.join(REPO, 'roles', 'monitoring', 'files', 'build_exporter.py')
    for name in ('a.pyz', 'b.pyz'):
        proc = run(sys.executable, build, REPO, str(tmp_path / name))
        assert proc.returncode == 0, proc.stderr
    with open(str(tmp_path / 'a.pyz'), 'rb') as a, open(str(tmp_path / 'b.pyz'), 'rb') as b:
        assert a.read() == b.read()
    sys.path.insert(0, os.path.join(REPO, 'tests', 'lab'))
    import memory_db_gen
    app = tmp_path / 'app'
    (app / '.swarm').mkdir(parents=True)
    memory_db_gen.generate(str(app / '.swarm' / 'memory.db'), rows=2000, preset='p1_cache')
    textfile = tmp_path / 'tf' / 'claude_flow.prom'
    textfile.parent.mkdir()
    config = tmp_path / 'c.json'
    config.write_text(json.dumps({'host': 'lab1', 'textfile': str(textfile), 'triage': {
        'app_dir': str(app), 'health_url': '', 'log_path': str(tmp_path / 'none.log'), 'window': '1h'}}))
    # A Python without ansible on its path, like a managed host: only what the bundle carries.
    python = '/usr/bin/python3' if os.path.exists('/usr/bin/python3') else sys.executable
    proc = subprocess.run([python, '-I', str(tmp_path / 'a.pyz'), '--config', str(config)], capture_output=True,
                          text=True, timeout=120, check=False, env={'PATH': '/usr/bin:/bin'})
    assert proc.returncode == 0, proc.stderr
    text = textfile.read_text()
    assert 'claude_flow_triage_up{host="lab1"} 1' in text
    assert 'claude_flow_cache_hit_rate{host="lab1"} 40.0' in text
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps({'host': 'lab1', 'textfile': str(tmp_path / 'x.txt')}))
    proc = subprocess.run([python, '-I', str(tmp_path / 'a.pyz'), '--config', str(bad)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 2 and 'must end in .prom' in proc.stderr


def ansible_rules(tmp_path, thresholds_by_host):
    """playbooks/monitoring.yml's controller play (the role's alerting tasks) for an inventory of local hosts."""
    inventory = {'all': {'hosts': {host: ({'claude_flow_thresholds': t} if t is not None else {})
                                   for host, t in thresholds_by_host.items()}}}
    (tmp_path / 'inventory.yml').write_text(json.dumps(inventory))
    rules_dir = tmp_path / 'rules'
    rules_dir.mkdir(exist_ok=True)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i',
                           str(tmp_path / 'inventory.yml'), os.path.join(REPO, 'playbooks', 'monitoring.yml'),
                           '-e', json.dumps({'target_hosts': 'no_such_group', 'claude_flow_monitoring_rules_dir':
                                             str(rules_dir), 'claude_flow_monitoring_alertmanager_file':
                                             str(tmp_path / 'alertmanager.yml')})],
                          capture_output=True, text=True, timeout=300, check=False, env=env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    with open(str(rules_dir / 'claude-flow.rules.yml')) as handle:
        return yaml.safe_load(handle), proc.stdout


def test_a_threshold_changed_in_the_inventory_changes_the_generated_rule(tmp_path):
    before, dummy = ansible_rules(tmp_path, {'web1': None, 'web2': None})
    exprs = [r['expr'] for g in before['groups'] for r in g['rules']]
    assert any(e.startswith('claude_flow_truth_score < 0.9 ') for e in exprs), exprs
    after, dummy = ansible_rules(tmp_path, {'web1': {'truth_score': {'P1': 0.92}, 'ops_per_second': None},
                                            'web2': {'truth_score': {'P1': 0.92}, 'ops_per_second': None}})
    exprs = [r['expr'] for g in after['groups'] for r in g['rules']]
    assert any(e.startswith('claude_flow_truth_score < 0.92 ') for e in exprs), exprs
    assert not any(e.startswith('claude_flow_truth_score < 0.9 ') for e in exprs), exprs
    assert not any('ops_per_second' in e for e in exprs), exprs
    # One host differs: its own group limited to it, the others keep the table's value.
    mixed, dummy = ansible_rules(tmp_path, {'web1': None, 'web2': None, 'web3': {'truth_score': {'P1': 0.92}}})
    by_group = {g['name']: [r['expr'] for r in g['rules'] if 'truth_score' in r['expr']] for g in mixed['groups']}
    assert any('host!~"web3"' in e and '< 0.9 ' in e for e in by_group['claude_flow_runbook_0'])
    assert any('host=~"web3"' in e and '< 0.92 ' in e for e in by_group['claude_flow_runbook_1'])
    assert (tmp_path / 'alertmanager.yml').exists()
