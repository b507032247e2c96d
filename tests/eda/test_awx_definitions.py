"""AWX as code, the AWX rulebook variant and the execution environment, checked without an AWX server.

* awx/ playbooks pass --syntax-check, and every option they give a module exists in
  that module's argument spec (ansible-doc -j), suboptions included.
* awx/configure.yml runs for real up to the first AWX call: it refuses a missing
  or placeholder secrets file, and with secrets it gets as far as contacting AWX.
* incident-response-awx.yml is incident-response.yml with other actions only, and
  names templates that awx/vars/main.yml creates for the same playbooks.
* execution-environment.yml: `ansible-builder create` makes a build context holding
  this collection's tarball (building the image needs a container engine).
* AWX without traps: one organization, the vault id, escalation schedules, sliced fleet templates,
  templates naming existing playbooks, an ansible.cfg that cannot misdirect an AWX job.
"""

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AWX = os.path.join(REPO, 'awx')
PLAYBOOKS = [os.path.join(AWX, 'configure.yml'), os.path.join(AWX, 'playbooks', 'post-plan-to-slack.yml')]
TASK_KEYWORDS = {
    'name', 'when', 'loop', 'loop_control', 'register', 'no_log', 'vars', 'tags', 'check_mode', 'failed_when',
    'changed_when', 'become', 'become_user', 'delegate_to', 'run_once', 'ignore_errors', 'until', 'retries',
    'delay', 'environment', 'notify', 'block', 'rescue', 'always', 'args', 'module_defaults', 'any_errors_fatal',
}


class _Loader(yaml.SafeLoader):
    """YAML as Ansible writes it: `!unsafe` marks a string Ansible must not template."""


_Loader.add_constructor('!unsafe', lambda loader, node: loader.construct_scalar(node))

# Modules whose arguments are the caller's own names, not options.
FREE_FORM = {'ansible.builtin.set_fact', 'ansible.builtin.set_stats'}


def load(path):
    with open(path) as handle:
        return yaml.load(handle, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def run(eda, cmd, **kwargs):
    return subprocess.run(cmd, cwd=REPO, env=eda.tool_env(kwargs.pop('env', None)), capture_output=True,
                          text=True, timeout=kwargs.pop('timeout', 300), check=False, **kwargs)


def tasks_of(playbook):
    """Every task of every play, blocks flattened."""
    def walk(tasks):
        for task in tasks or []:
            if 'block' in task:
                yield from walk(task['block'])
                yield from walk(task.get('rescue'))
                yield from walk(task.get('always'))
            else:
                yield task
    for play in playbook:
        for section in ('pre_tasks', 'tasks', 'post_tasks', 'handlers'):
            yield from walk(play.get(section))


def module_of(task):
    names = [key for key in task if key not in TASK_KEYWORDS]
    assert len(names) == 1, 'cannot tell the module of task %r: %r' % (task.get('name'), names)
    return names[0]


@pytest.fixture(scope='module')
def module_specs(eda):
    """{module: options} from one `ansible-doc -j` call over every module the awx/ playbooks use."""
    modules = sorted({module_of(task) for path in PLAYBOOKS for task in tasks_of(load(path))})
    proc = run(eda, [eda.tool('ansible-doc'), '-j'] + modules)
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    missing = set(modules) - set(docs)
    assert not missing, 'ansible-doc does not know %s' % sorted(missing)
    return {name: docs[name]['doc']['options'] for name in modules}


def accepted(options):
    names = set(options)
    for spec in options.values():
        names.update(spec.get('aliases') or [])
    return names


def unknown_options(args, options, where):
    """Option names in args that the spec does not have, recursing into documented suboptions."""
    problems = []
    for key, value in args.items():
        spec = next((s for n, s in options.items() if n == key or key in (s.get('aliases') or [])), None)
        if spec is None:
            problems.append('%s: %s (known: %s)' % (where, key, ', '.join(sorted(accepted(options)))))
        elif spec.get('suboptions') and isinstance(value, dict):
            problems.extend(unknown_options(value, spec['suboptions'], '%s.%s' % (where, key)))
    return problems


def test_awx_playbooks_pass_syntax_check(eda):
    proc = run(eda, [eda.tool('ansible-playbook'), '--syntax-check', '-i', 'localhost,'] + PLAYBOOKS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_module_option_used_exists_in_the_module(module_specs):
    problems = []
    used = 0
    for path in PLAYBOOKS:
        for task in tasks_of(load(path)):
            module = module_of(task)
            args = task[module] or {}
            if module in FREE_FORM:
                continue
            assert isinstance(args, dict), '%s: use YAML args, not k=v, for %s' % (task.get('name'), module)
            problems.extend(unknown_options(args, module_specs[module], '%s (%s)' % (task.get('name'), module)))
            used += len(args)
    assert not problems, '\n'.join(problems)
    assert used > 80  # the walk really saw the tasks


def test_the_checker_catches_a_misspelt_option(module_specs):
    spec = module_specs['awx.awx.job_template']
    assert unknown_options({'ask_limit_on_launch': True, 'allow_simultaneos': False}, spec, 'jt') != []
    assert unknown_options({'approval_node': {'name': 'x', 'timout': 5}},
                           module_specs['awx.awx.workflow_job_template_node'], 'node') != []


def test_job_templates_ask_for_limit_and_variables_and_never_overlap():
    tasks = {task['name']: task for task in tasks_of(load(PLAYBOOKS[0]))}
    template = tasks['Job templates, one per playbook']['awx.awx.job_template']
    assert template['ask_limit_on_launch'] is True and template['ask_variables_on_launch'] is True
    assert template['allow_simultaneous'] is False
    names = [item['name'] for item in load(os.path.join(AWX, 'vars', 'main.yml'))['awx_job_templates']]
    for level in ('P0', 'P1', 'P2', 'P3'):
        assert 'claude-flow %s response' % level in names
    for other in ('maintenance', 'backup', 'triage', 'close incident'):
        assert 'claude-flow ' + other in names


def test_p0_workflow_plan_slack_approval_then_response_and_timeout_denies():
    nodes = {}
    for task in tasks_of(load(PLAYBOOKS[0])):
        node = task.get('awx.awx.workflow_job_template_node')
        if node:
            nodes[node['identifier']] = node
    settings = load(os.path.join(AWX, 'vars', 'main.yml'))
    plan_template = next(t for t in settings['awx_job_templates'] if t['name'] == nodes['p0-plan']['unified_job_template'])
    assert plan_template['job_type'] == 'check'
    assert plan_template['playbook'] == 'playbooks/p0_response.yml'
    assert nodes['p0-plan']['success_nodes'] == ['p0-plan-to-slack']
    assert nodes['p0-plan-to-slack']['always_nodes'] == ['p0-approval']
    approval = nodes['p0-approval']
    assert approval['approval_node']['timeout'] and settings['awx_p0_approval_timeout'] > 0
    # Timeout or deny fails the approval node; the response hangs off success only.
    assert approval['success_nodes'] == ['p0_response']
    assert 'failure_nodes' not in approval and 'always_nodes' not in approval
    assert nodes['p0_response']['unified_job_template'] == 'claude-flow P0 response'
    linked = {child for node in nodes.values() for key in ('success_nodes', 'failure_nodes', 'always_nodes')
              for child in node.get(key, [])}
    assert set(nodes) - linked == {'p0-plan'}  # one root: the plan


def test_secrets_are_placeholders_only():
    secrets = load(os.path.join(AWX, 'vars', 'secrets.example.yml'))
    assert secrets and all(value == 'CHANGE_ME' for value in secrets.values())
    text = open(PLAYBOOKS[0]).read()
    for key in secrets:
        assert key in text, '%s is listed in secrets.example.yml but configure.yml never uses it' % key


def _configure(eda, tmp_path, extra, env=None):
    return run(eda, [eda.tool('ansible-playbook'), '-i', 'localhost,', os.path.join(AWX, 'configure.yml')] + extra,
               env=dict({'ANSIBLE_PYTHON_INTERPRETER': 'auto_silent'}, **(env or {})), timeout=180)


def test_configure_refuses_missing_and_placeholder_secrets(eda, tmp_path):
    missing = _configure(eda, tmp_path, ['-e', 'awx_secrets_file=%s' % (tmp_path / 'nope.yml')])
    assert missing.returncode != 0
    assert 'does not exist' in missing.stdout and 'ansible-vault create' in missing.stdout
    placeholders = _configure(eda, tmp_path, ['-e', 'awx_secrets_file=%s' % os.path.join(AWX, 'vars', 'secrets.example.yml')])
    assert placeholders.returncode != 0
    assert 'awx_machine_ssh_user is missing or still CHANGE_ME' in placeholders.stdout
    assert 'Organization' not in placeholders.stdout  # stopped before touching AWX


def test_configure_with_secrets_goes_as_far_as_contacting_awx(eda, tmp_path):
    secrets = load(os.path.join(AWX, 'vars', 'secrets.example.yml'))
    filled = tmp_path / 'secrets.yml'
    filled.write_text(yaml.safe_dump({key: 'test-value-%d' % n for n, key in enumerate(secrets)}))
    port = eda.free_port()  # nothing listens there: the first AWX call must fail, visibly
    proc = _configure(eda, tmp_path, ['-e', 'awx_secrets_file=%s' % filled],
                      env={'CONTROLLER_HOST': 'http://127.0.0.1:%d' % port, 'CONTROLLER_OAUTH_TOKEN': 'x'})
    assert proc.returncode != 0
    assert 'TASK [Organization]' in proc.stdout, proc.stdout
    assert 'test-value-' not in proc.stdout  # no_log kept the secrets out of the output


def _rulebook(name):
    return load(os.path.join(REPO, 'extensions', 'eda', 'rulebooks', name))


def _action(rule):
    (action,) = rule['action'].items()
    return action


def test_both_rulebooks_validate_against_ansible_rulebook_schema():
    from ansible_rulebook import rules_parser, validators

    for name in ('incident-response.yml', 'incident-response-awx.yml'):
        data = _rulebook(name)
        validators.Validate.rulebook(data)
        assert rules_parser.parse_rule_sets(data)


def test_awx_rulebook_is_the_local_one_with_awx_actions():
    local, awx = _rulebook('incident-response.yml')[0], _rulebook('incident-response-awx.yml')[0]
    assert local['sources'] == awx['sources']
    assert local['execution_strategy'] == awx['execution_strategy'] == 'parallel'
    assert [r['name'] for r in local['rules']] == [r['name'] for r in awx['rules']]
    templates = {t['name']: t['playbook'] for t in load(os.path.join(AWX, 'vars', 'main.yml'))['awx_job_templates']}
    settings = load(os.path.join(AWX, 'vars', 'main.yml'))
    for mine, theirs in zip(local['rules'], awx['rules']):
        assert mine['condition'] == theirs['condition'], mine['name']
        assert mine.get('throttle') == theirs.get('throttle'), mine['name']
        kind, args = _action(mine)
        awx_kind, awx_args = _action(theirs)
        if kind != 'run_playbook':
            assert (kind, args) == (awx_kind, awx_args), mine['name']
            continue
        playbook = os.path.basename(args['name'])
        if awx_kind == 'run_workflow_template':
            # The workflow's response node runs the same playbook after approval.
            assert awx_args['name'] == settings['awx_p0_workflow']
            assert playbook == 'p0_response.yml'
        else:
            assert awx_kind == 'run_job_template', mine['name']
            assert os.path.basename(templates[awx_args['name']]) == playbook, mine['name']
        assert awx_args['job_args']['extra_vars'] == args['extra_vars'], mine['name']
        assert awx_args['job_args']['limit'] == '{{ event.host }}' and awx_args['lock'] == args['lock']


def test_every_rule_that_runs_something_requires_a_host_and_a_severity():
    for rule in _rulebook('incident-response.yml')[0]['rules']:
        kind = _action(rule)[0]
        if kind == 'run_playbook':
            assert 'event.host is defined' in rule['condition'], rule['name']
            assert re.search(r'event\.severity (== "P[0-3]"|!= "unknown")', rule['condition']), rule['name']
            assert rule['throttle']['once_within'], rule['name']
        else:
            assert kind == 'debug', rule['name']


def test_awx_job_templates_point_at_playbooks_of_this_repo():
    settings = load(os.path.join(AWX, 'vars', 'main.yml'))
    playbooks = [t['playbook'] for t in settings['awx_job_templates']] + [settings['awx_post_plan_playbook']]
    missing = [p for p in playbooks if not os.path.isfile(os.path.join(REPO, p))]
    assert not missing, 'AWX templates name playbooks that do not exist: %s' % ', '.join(sorted(set(missing)))


def test_one_organization_for_awx_objects_and_the_awx_rulebook():
    settings = load(os.path.join(AWX, 'vars', 'main.yml'))
    text = open(os.path.join(REPO, 'extensions', 'eda', 'rulebooks', 'incident-response-awx.yml')).read()
    defaults = set(re.findall(r"organization: \"\{\{ awx_organization \| default\('([^']*)'\) \}\}\"", text))
    assert defaults, 'the AWX rulebook names no organization default'
    assert defaults == {settings['awx_organization']}, \
        'the AWX rulebook defaults to organization %s, awx/configure.yml creates %s' % (defaults, settings['awx_organization'])
    assert all(task.get(module, {}).get('organization') in (None, '{{ awx_organization }}')
               for task in tasks_of(load(PLAYBOOKS[0])) for module in [module_of(task)] if module.startswith('awx.awx.'))


def test_vault_credential_carries_the_inventory_vault_id():
    settings = load(os.path.join(AWX, 'vars', 'main.yml'))
    tasks = {task['name']: task for task in tasks_of(load(PLAYBOOKS[0]))}
    credential = tasks['Vault credential for vault-encrypted group_vars']['awx.awx.credential']
    assert credential['inputs']['vault_id'] == '{{ awx_vault_id }}'
    example = open(os.path.join(REPO, 'inventories', 'example', 'vault.example.yml')).read()
    assert '--vault-id %s@' % settings['awx_vault_id'] in example, 'vault.example.yml encrypts with another vault id'


def test_escalation_ticks_run_on_a_schedule():
    settings = load(os.path.join(AWX, 'vars', 'main.yml'))
    templates = {t['name']: t for t in settings['awx_job_templates']}
    scheduled = {s['template']: s for s in settings['awx_schedules']}
    ticks = [t for t in templates.values() if t.get('job_tags') == 'escalate']
    assert {t['playbook'] for t in ticks} == {'playbooks/p0_response.yml', 'playbooks/p1_response.yml'}
    for tick in ticks:
        assert tick['name'] in scheduled, '%s has no schedule' % tick['name']
        assert 'FREQ=MINUTELY;INTERVAL=5' in scheduled[tick['name']]['rrule']
    assert set(scheduled) <= set(templates)
    tasks = {task['name']: task for task in tasks_of(load(PLAYBOOKS[0]))}
    assert tasks['Schedules (the escalation ticks)']['awx.awx.schedule']['unified_job_template'] == '{{ item.template }}'


def test_fleet_wide_templates_are_sliced_and_response_templates_are_not():
    settings = load(os.path.join(AWX, 'vars', 'main.yml'))
    templates = {t['name']: t for t in settings['awx_job_templates']}
    for name in ('claude-flow triage (report only)', 'claude-flow maintenance', 'claude-flow backup'):
        assert templates[name].get('job_slice_count') == '{{ awx_fleet_slice_count }}', name
    assert templates['claude-flow triage (report only)']['extra_vars'] == {'claude_flow_triage_report_only': True}
    for level in ('P0', 'P1', 'P2', 'P3'):
        assert 'job_slice_count' not in templates['claude-flow %s response' % level]
    tasks = {task['name']: task for task in tasks_of(load(PLAYBOOKS[0]))}
    assert 'job_slice_count' in tasks['Job templates, one per playbook']['awx.awx.job_template']


def test_unattended_templates_name_all_hosts_and_alert_templates_name_none():
    """The playbooks refuse an implicit "all": scheduled fleet runs say `all` on purpose, alert runs get the host."""
    settings = load(os.path.join(AWX, 'vars', 'main.yml'))
    templates = {t['name']: t for t in settings['awx_job_templates']}
    for name in ('claude-flow triage (report only)', 'claude-flow maintenance', 'claude-flow backup',
                 'claude-flow P0 escalation tick', 'claude-flow P1 escalation tick'):
        assert templates[name].get('limit') == 'all', name
    for level in ('P0', 'P1', 'P2', 'P3'):
        assert 'limit' not in templates['claude-flow %s response' % level]
    tasks = {task['name']: task for task in tasks_of(load(PLAYBOOKS[0]))}
    assert tasks['Job templates, one per playbook']['awx.awx.job_template']['limit'] == '{{ item.limit | default(omit) }}'


def test_awx_inventories_are_directories_of_this_repo_and_not_the_lab():
    for inventory in load(os.path.join(AWX, 'vars', 'main.yml'))['awx_inventories']:
        assert os.path.isdir(os.path.join(REPO, inventory['source_path'])), inventory
        assert not inventory['source_path'].startswith('inventories/lab'), inventory


def test_the_repository_ansible_cfg_cannot_misdirect_an_awx_job():
    """AWX runs a project's playbooks with the project's ansible.cfg: it must find the EE's collections."""
    import configparser

    config = configparser.ConfigParser()
    config.read(os.path.join(REPO, 'ansible.cfg'))
    paths = config.get('defaults', 'collections_path').split(':')
    assert '/usr/share/ansible/collections' in paths, paths
    assert config.get('defaults', 'host_key_checking', fallback='True') != 'False'


def test_execution_environment_build_context(eda, tmp_path):
    """ansible-builder create over a copy of the EE files with a freshly built collection tarball."""
    galaxy = load(os.path.join(REPO, 'galaxy.yml'))
    tarball = '%s-%s-%s.tar.gz' % (galaxy['namespace'], galaxy['name'], galaxy['version'])
    ee = load(os.path.join(REPO, 'execution-environment.yml'))
    assert ee['version'] == 3
    assert ee['dependencies']['galaxy']['collections'][0]['name'].endswith('/' + tarball), \
        'execution-environment.yml installs another version than galaxy.yml %s' % galaxy['version']
    assert ee['additional_build_files'][0]['src'] == 'build/collection/' + tarball

    work = tmp_path / 'ee'
    (work / 'build' / 'collection').mkdir(parents=True)
    shutil.copy(os.path.join(REPO, 'execution-environment.yml'), str(work / 'execution-environment.yml'))
    # Build the tarball from the files git would take (the checkout may hold venvs and lab state).
    listed = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split('\0')
    source = tmp_path / 'source'
    for rel in filter(None, listed):
        if os.path.isfile(os.path.join(REPO, rel)):
            os.makedirs(str(source / os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(os.path.join(REPO, rel), str(source / rel))
    built = subprocess.run([eda.tool('ansible-galaxy'), 'collection', 'build', '--output-path',
                            str(work / 'build' / 'collection')], cwd=str(source), env=eda.tool_env(),
                           capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stdout + built.stderr

    proc = subprocess.run([eda.tool('ansible-builder'), 'create', '-f', 'execution-environment.yml',
                           '--context', 'context', '--output-filename', 'Containerfile'],
                          cwd=str(work), env=eda.tool_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'No matches' not in proc.stdout + proc.stderr
    context = work / 'context'
    containerfile = (context / 'Containerfile').read_text()
    assert (context / '_build' / 'collection' / tarball).is_file()
    assert 'ansible-galaxy collection install' in containerfile
    assert 'python3.11' in containerfile and 'ansible-core>=2.16,<2.20' in containerfile
    # The collection's runtime needs come from its meta/execution-environment.yml at build time
    # (tests/ci/environments.sh checks what that introspection yields, and the decision environment).
    assert 'introspect' in containerfile and 'ansible-rulebook' not in containerfile
    requirements = load(str(context / '_build' / 'requirements.yml'))
    assert requirements['collections'][0]['name'] == '/build/collection/' + tarball
