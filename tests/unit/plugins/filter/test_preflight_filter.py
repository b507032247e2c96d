"""The preflight_verdict filter: what stops a run (problems, each with its fix), what is only noted, the layout."""

import base64
import json

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.claude_flow.runbook.plugins.filter.preflight import FilterModule

verdict = FilterModule().filters()['preflight_verdict']

SETTINGS = {'app_dir': '/opt/claude-code-production', 'releases_dir': '/opt/claude-code-backups',
            'db_path': '/opt/claude-code-production/.swarm/memory.db', 'db_backup_name': 'memory.db.backup',
            'backup_dir': '/var/backups/claude-code', 'service_name': 'claude-code-production'}
RELEASE = '/opt/claude-code-backups/v2'


def stats(**changes):
    """The eight stat results of a host laid out as the runbook's, with changes by name."""
    good = {'app': {'exists': True, 'islnk': True, 'lnk_source': RELEASE},
            'releases': {'exists': True, 'isdir': True},
            'db': {'exists': True, 'isreg': True, 'size': 8192},
            'db_dir': {'exists': True, 'isdir': True},
            'backup_dir': {'exists': True, 'isdir': True},
            'package': {'exists': True, 'isreg': True, 'size': 100},
            'cli': {'exists': True},
            'app_target': {'exists': True, 'isdir': True}}
    good.update(changes)
    return [good[name] for name in ('app', 'releases', 'db', 'db_dir', 'backup_dir', 'package', 'cli', 'app_target')]


def found(**changes):
    good = {'backups': [RELEASE + '/memory.db.backup', '/var/backups/claude-code/20260101T000000Z/memory.db.backup'],
            'releases': ['/opt/claude-code-backups/v1', RELEASE],
            'unit': {'LoadState': 'loaded', 'ActiveState': 'active', 'SubState': 'running'},
            'vault_problem': '',
            'package': {'content': base64.b64encode(json.dumps({'version': '3.0.0-alpha.7'}).encode()).decode()},
            'mounts': [{'mount': '/', 'size_total': 1000 * 1048576, 'size_available': 250 * 1048576},
                       {'mount': '/opt', 'size_total': 100 * 1048576, 'size_available': 50 * 1048576}]}
    good.update(changes)
    return good


def test_a_good_host_has_no_problem_and_shows_its_layout():
    out = verdict(stats(), SETTINGS, found(), report=True, host='lab1')
    assert out['problems'] == []
    assert out['layout'] == [
        'app dir: /opt/claude-code-production -> /opt/claude-code-backups/v2',
        'releases dir: /opt/claude-code-backups (2 releases, 1 with memory.db.backup)',
        'DB: /opt/claude-code-production/.swarm/memory.db (8192 bytes)',
        'DB backups: 2 (memory.db.backup in /opt/claude-code-backups/<release>/ and /var/backups/claude-code)',
        'unit: claude-code-production active/running',
        'claude-flow 3.0.0-alpha.7 (the 3.x CLI: memory.db is the v3 schema)',
        'CLI: /opt/claude-code-production/node_modules/.bin/claude-flow present',
        # the longest mount point holding the release the symlink points at
        'free disk on /opt: 50.0% (50 MiB)']
    assert out['notes'] == ['release /opt/claude-code-backups/v1 has no memory.db.backup: rollback never picks it. '
                            'Fix: ansible-playbook playbooks/backup.yml -l lab1 while it is live, or copy a verified backup there']
    assert (out['backups'], out['version'], out['unit']) == (2, '3.0.0-alpha.7', 'loaded')


def test_the_response_gate_reads_no_version_and_no_disk():
    out = verdict(stats(), SETTINGS, found(releases=[]), host='lab1')
    assert out['problems'] == [] and out['version'] is None
    assert not [line for line in out['layout'] if line.startswith(('claude-flow', 'CLI', 'free disk'))]
    assert 'releases dir: /opt/claude-code-backups' in out['layout']


def test_a_missing_app_dir_is_a_problem_naming_the_setting():
    out = verdict(stats(app={'exists': False}), SETTINGS, found(), host='lab1')
    assert out['problems'][0].startswith('claude_flow_app_dir /opt/claude-code-production does not exist. Fix: set claude_flow_app_dir')


@pytest.mark.parametrize('report', [True, False])
def test_a_dangling_symlink_is_an_incident_for_the_response_and_a_problem_for_the_report(report):
    out = verdict(stats(app_target={'exists': False}, db={'exists': False}), SETTINGS, found(), report=report, host='lab1')
    text = 'claude_flow_app_dir /opt/claude-code-production points at /opt/claude-code-backups/v2, which does not exist'
    if report:
        assert [p for p in out['problems'] if p.startswith(text + '. Fix: a P0 response rolls back')]
    else:
        assert out['problems'] == [] and text + ': an incident, the response rolls back' in out['notes']


def test_a_db_path_typo_lists_the_databases_beside_it():
    neighbours = ['/opt/claude-code-production/.swarm/memory.db.old', '/opt/claude-code-production/.swarm/mem.db']
    out = verdict(stats(db={'exists': False}), SETTINGS, found(neighbours=neighbours))
    assert out['problems'] == ['claude_flow_db_path /opt/claude-code-production/.swarm/memory.db does not exist, but '
                               '/opt/claude-code-production/.swarm holds /opt/claude-code-production/.swarm/memory.db.old, '
                               '/opt/claude-code-production/.swarm/mem.db. Fix: set claude_flow_db_path to the live DB (a typo?)']


def test_a_missing_db_is_an_incident_for_the_response_not_a_refusal():
    out = verdict(stats(db={'exists': False}), SETTINGS, found())
    assert out['problems'] == []
    assert 'the DB /opt/claude-code-production/.swarm/memory.db is missing: an incident, the response restores it' in out['notes']


def test_a_db_directory_that_does_not_exist_outside_the_standard_place_is_a_problem():
    settings = dict(SETTINGS, db_path='/opt/claude-code-production/data/memory.db')
    out = verdict(stats(db={'exists': False}, db_dir={'exists': False}), settings, found())
    assert out['problems'] == ['claude_flow_db_path /opt/claude-code-production/data/memory.db: its directory '
                               '/opt/claude-code-production/data does not exist. Fix: set claude_flow_db_path (default '
                               '/opt/claude-code-production/.swarm/memory.db)']


def test_no_backup_is_a_problem_only_when_one_is_required():
    out = verdict(stats(), SETTINGS, found(backups=[]), require_backup=True, host='lab1')
    assert len(out['problems']) == 1
    assert out['problems'][0].startswith('no DB backup: no memory.db.backup in /opt/claude-code-backups/<release>/')
    assert out['problems'][0].endswith('with -e claude_flow_preflight_require_backup=false')
    assert verdict(stats(), SETTINGS, found(backups=[]), require_backup=False)['problems'] == []


def test_an_unknown_unit_and_a_vault_problem_are_both_named():
    out = verdict(stats(), SETTINGS, found(unit={}, vault_problem='  a vault-encrypted setting cannot be decrypted \n'), host='lab1')
    assert out['problems'] == [
        'systemd unit claude-code-production not found on lab1. Fix: set claude_flow_service_name to the unit that runs '
        'claude-flow (systemctl list-units --type=service shows them)',
        'a vault-encrypted setting cannot be decrypted']
    assert out['unit'] == 'not-found'


@pytest.mark.parametrize('package', [{}, {'content': base64.b64encode(b'{not json').decode()}, {'content': '***'}])
def test_an_unreadable_version_is_a_note_never_a_problem(package):
    out = verdict(stats(), SETTINGS, found(package=package, mounts=[]), report=True)
    assert out['problems'] == [] and out['version'] is None
    assert [n for n in out['notes'] if n.startswith('claude-flow version unavailable')]
    assert 'free disk unavailable: no mount found for /opt/claude-code-backups/v2' in out['notes']


def test_a_version_that_is_neither_2_nor_3_is_noted():
    package = {'content': base64.b64encode(json.dumps({'version': '4.1.0'}).encode()).decode()}
    out = verdict(stats(), SETTINGS, found(package=package), report=True)
    assert 'claude-flow 4.1.0 is neither 2.x nor 3.x: the CLI steps (truth, neural, quarantine) know only those' in out['notes']


def test_a_plain_app_directory_cannot_be_rolled_back():
    out = verdict(stats(app={'exists': True, 'islnk': False, 'isdir': True}), SETTINGS, found())
    assert out['problems'] == []
    assert out['layout'][0] == 'app dir: /opt/claude-code-production (a directory, not a symlink)'
    assert [n for n in out['notes'] if n.startswith('claude_flow_app_dir is a plain directory')]


@pytest.mark.parametrize('bad_stats,bad_settings', [(stats()[:7], SETTINGS), ('x', SETTINGS),
                                                    (stats(), dict(SETTINGS, db_path=None)), (stats(), None)])
def test_bad_input_is_refused_with_what_is_expected(bad_stats, bad_settings):
    with pytest.raises(AnsibleFilterError, match='preflight_verdict'):
        verdict(bad_stats, bad_settings, found())
