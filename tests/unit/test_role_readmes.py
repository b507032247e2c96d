"""Each role's README is generated from its meta/argument_specs.yml, and the specs cover the roles' inputs."""
import os
import shutil
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'tests', 'ci'))

import role_readmes  # noqa: E402  (tests/ci is not a package)

ROLES = os.path.join(REPO, 'roles')


def load(*parts):
    with open(os.path.join(*parts), encoding='utf-8') as handle:
        return yaml.safe_load(handle) or {}


def spec_options(role):
    options = {}
    for body in load(ROLES, role, 'meta', 'argument_specs.yml')['argument_specs'].values():
        options.update((body or {}).get('options') or {})
    return options


def test_every_role_has_an_argument_spec_and_a_readme():
    roles = sorted(name for name in os.listdir(ROLES) if os.path.isdir(os.path.join(ROLES, name)))
    assert roles == role_readmes.roles()
    for role in roles:
        assert os.path.isfile(os.path.join(ROLES, role, 'README.md')), role


def test_readmes_are_current():
    stale = sorted(os.path.relpath(path, REPO) for path in role_readmes.stale())
    assert not stale, f'stale role READMEs: {stale}; run python3 tests/ci/role_readmes.py'


def test_a_changed_spec_makes_its_readme_stale(tmp_path):
    roles = tmp_path / 'roles'
    shutil.copytree(ROLES, roles)
    assert not role_readmes.stale(str(roles))
    spec_path = roles / 'service' / 'meta' / 'argument_specs.yml'
    spec = yaml.safe_load(spec_path.read_text())
    spec['argument_specs']['main']['options']['service_action']['description'] = 'A new description.'
    spec_path.write_text(yaml.safe_dump(spec))
    stale = role_readmes.stale(str(roles))
    assert list(stale) == [str(roles / 'service' / 'README.md')]
    assert '| A new description. |' in stale[str(roles / 'service' / 'README.md')]


def test_hand_written_text_above_the_marker_is_kept(tmp_path):
    roles = tmp_path / 'roles'
    shutil.copytree(ROLES, roles)
    readme = roles / 'backup' / 'README.md'
    readme.write_text('# Backup\n\nWritten by hand.\n\n' + role_readmes.MARKER + '\n\nold generated text\n')
    text = role_readmes.stale(str(roles))[str(readme)]
    assert text.startswith('# Backup\n\nWritten by hand.\n\n' + role_readmes.MARKER + '\n')
    assert 'old generated text' not in text


@pytest.mark.parametrize('role', [r for r in role_readmes.roles() if os.path.isfile(os.path.join(ROLES, r, 'defaults', 'main.yml'))])
def test_every_default_is_documented_in_the_spec(role):
    undocumented = sorted(set(load(ROLES, role, 'defaults', 'main.yml')) - set(spec_options(role)))
    assert not undocumented, f'{role}: defaults without an argument_specs entry: {undocumented}'


@pytest.mark.parametrize('role', [r for r in role_readmes.roles() if r != 'validate_inputs'])
def test_role_parameters_carry_the_role_prefix(role):
    # validate_inputs validates the collection's settings themselves; every other role's parameters are its own.
    prefix = 'claude_flow_' if role == 'claude_flow' else role + '_'
    foreign = sorted(name for name in spec_options(role) if not name.startswith(prefix))
    assert not foreign, f'{role}: parameters without the {prefix} prefix: {foreign}'


def test_every_setting_is_defined_once():
    """No role but claude_flow defines a claude_flow_* default (the collection's settings live in one place)."""
    elsewhere = {}
    for role in role_readmes.roles():
        path = os.path.join(ROLES, role, 'defaults', 'main.yml')
        if role != 'claude_flow' and os.path.isfile(path):
            names = sorted(name for name in load(path) if name.startswith('claude_flow_'))
            if names:
                elsewhere[role] = names
    assert not elsewhere


def test_every_role_depends_on_the_settings_role():
    for role in role_readmes.roles():
        if role == 'claude_flow':
            continue
        deps = load(ROLES, role, 'meta', 'main.yml').get('dependencies') or []
        assert {'role': 'claude_flow.runbook.claude_flow'} in deps, role
