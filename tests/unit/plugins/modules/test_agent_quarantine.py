# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""agent_quarantine as a real module process, against real registry files."""

import json
import os
import shutil
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import REPO, run_module

import memory_db_gen

REFERENCE_STATE = os.path.join(REPO, 'tests', 'fixtures', 'claude-flow-reference', 'state__history.json')


@pytest.fixture
def app(tmp_path):
    path = tmp_path / 'app'
    (path / '.swarm').mkdir(parents=True)
    return str(path)


def registry_of(app):
    return os.path.join(app, '.swarm', 'quarantine.json')


def read(path):
    with open(path, 'rb') as handle:
        return handle.read()


def test_present_is_idempotent(app):
    first = run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder', 'reason': 'truth 0.67',
                                            'incident_id': 'INC-1'})
    assert (first['changed'], first['action']) == (True, 'added')
    assert first['entry']['agent'] == 'coder' and first['entry']['incident_id'] == 'INC-1'
    on_disk = json.loads(read(registry_of(app)))
    assert on_disk['quarantined'] == [first['entry']]
    before = read(registry_of(app))
    again = run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder', 'reason': 'truth 0.67',
                                            'incident_id': 'INC-1'})
    assert (again['changed'], again['action']) == (False, 'none')
    assert read(registry_of(app)) == before
    no_reason = run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder'})
    assert no_reason['changed'] is False and read(registry_of(app)) == before


def test_a_new_reason_updates_and_keeps_the_original_time(app):
    first = run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder', 'reason': 'r1'})
    second = run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder', 'reason': 'r2', 'incident_id': 'INC-2'})
    assert (second['changed'], second['action']) == (True, 'updated')
    assert second['entry']['reason'] == 'r2' and second['entry']['incident_id'] == 'INC-2'
    assert second['entry']['quarantined_at'] == first['entry']['quarantined_at']
    assert second['diff']['before']['quarantined'][0]['reason'] == 'r1'


def test_absent_removes_once(app):
    run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder'})
    run_module('agent_quarantine', {'app_dir': app, 'agent': 'tester'})
    removed = run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder', 'state': 'absent'})
    assert (removed['changed'], removed['action'], removed['entry']) == (True, 'removed', None)
    assert removed['quarantined_agents'] == ['tester']
    assert [e['agent'] for e in json.loads(read(registry_of(app)))['quarantined']] == ['tester']
    again = run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder', 'state': 'absent'})
    assert again['changed'] is False


def test_check_mode_reports_and_writes_nothing(app):
    result = run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder', 'reason': 'r'}, check_mode=True)
    assert (result['changed'], result['action']) == (True, 'added')
    assert result['diff']['before']['quarantined'] == []
    assert [e['agent'] for e in result['diff']['after']['quarantined']] == ['coder']
    assert not os.path.exists(registry_of(app))
    run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder'})
    before = read(registry_of(app))
    mtime = os.stat(registry_of(app)).st_mtime_ns
    removal = run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder', 'state': 'absent'}, check_mode=True)
    assert (removal['changed'], removal['quarantined_agents']) == (True, [])
    assert read(registry_of(app)) == before and os.stat(registry_of(app)).st_mtime_ns == mtime


def test_check_mode_does_not_create_the_directory(tmp_path):
    app = str(tmp_path / 'app')
    os.mkdir(app)
    result = run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder'}, check_mode=True)
    assert result['changed'] is True and not os.path.exists(os.path.join(app, '.swarm'))
    real = run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder'})
    assert real['changed'] is True and os.path.isfile(registry_of(app))


def test_missing_app_dir_is_a_clear_error(tmp_path):
    result = run_module('agent_quarantine', {'app_dir': str(tmp_path / 'nope'), 'agent': 'coder'})
    assert result['failed'] and 'does not exist' in result['msg']
    assert not os.path.exists(str(tmp_path / 'nope'))


@pytest.mark.parametrize('name', ['coder; rm -rf /', '../../etc/passwd', 'a b', 'coder\n', '$(id)', '`id`', '',
                                  'x' * 65, '..', '.', 'coder/../tester', "o'brien", 'agent\x00', 'c\u00f6der'])
def test_injection_strings_are_rejected(app, name):
    result = run_module('agent_quarantine', {'app_dir': app, 'agent': name})
    assert result['failed'] is True
    # ansible-core 2.21 refuses a NUL in any argument itself (while logging it), before the module runs.
    assert 'not a valid agent name' in result['msg'] or ('\x00' in name and 'embedded null' in result['msg'])
    assert not os.path.exists(registry_of(app))


def test_control_characters_in_reason_are_rejected(app):
    result = run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder', 'reason': 'ok\n\x1b[31mfake'})
    assert result['failed'] and 'reason' in result['msg']
    assert not os.path.exists(registry_of(app))


def test_agent_is_required_unless_query(app):
    result = run_module('agent_quarantine', {'app_dir': app})
    assert result['failed'] and 'agent' in result['msg']


def test_query_with_known_agents_option(app):
    run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder'})
    result = run_module('agent_quarantine', {'app_dir': app, 'state': 'query',
                                             'known_agents': ['coder', 'tester', 'reviewer', 'backend-dev']})
    assert (result['changed'], result['quarantined_agents']) == (False, ['coder'])
    assert (result['quarantined_ratio'], result['known_agents_source']) == (0.25, 'option')
    assert result['quarantined_ratio_reason'] is None


def test_known_agents_from_the_truth_state_file(app):
    shutil.copy(REFERENCE_STATE, os.path.join(app, '.swarm', 'verification-memory.json'))
    run_module('agent_quarantine', {'app_dir': app, 'agent': 'tester'})
    result = run_module('agent_quarantine', {'app_dir': app, 'agent': 'ghost'})
    assert result['known_agents'] == ['backend-dev', 'coder', 'reviewer', 'tester']
    assert result['known_agents_source'] == 'state_file'
    assert result['quarantined_ratio'] == 0.4  # tester and ghost of five agents
    assert result['unknown_quarantined'] == ['ghost']


def test_known_agents_from_verification_history(app):
    memory_db_gen.generate(os.path.join(app, '.swarm', 'memory.db'), profile='runbook', rows=200,
                           agents=['a1', 'a2', 'a3', 'a4', 'a5'])
    result = run_module('agent_quarantine', {'app_dir': app, 'agent': 'a1'})
    assert (result['known_agents_source'], result['quarantined_ratio']) == ('db', 0.2)


def test_ratio_unavailable_when_agents_are_unknown(app):
    result = run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder'})
    assert result['quarantined_ratio'] is None and result['known_agents'] is None
    assert 'known_agents' in result['quarantined_ratio_reason']


def test_corrupted_registry_is_left_alone(app):
    with open(registry_of(app), 'w') as handle:
        handle.write('{"quarantined": [')
    result = run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder'})
    assert result['failed'] and 'move it aside' in result['msg']
    assert read(registry_of(app)) == b'{"quarantined": ['


def test_mode_of_an_existing_registry_is_kept(app):
    run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder'})
    assert stat.S_IMODE(os.stat(registry_of(app)).st_mode) == 0o644
    os.chmod(registry_of(app), 0o640)
    run_module('agent_quarantine', {'app_dir': app, 'agent': 'tester'})
    assert stat.S_IMODE(os.stat(registry_of(app)).st_mode) == 0o640
    leftovers = [n for n in os.listdir(os.path.join(app, '.swarm')) if n != 'quarantine.json']
    assert leftovers == []  # no temp files left behind


def test_parallel_runs_lose_no_entry(app):
    agents = ['agent-%d' % i for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda a: run_module('agent_quarantine', {'app_dir': app, 'agent': a}), agents))
    assert all(r['changed'] for r in results)
    assert [e['agent'] for e in json.loads(read(registry_of(app)))['quarantined']] == agents


@pytest.mark.parametrize('kind', ['fifo', 'device', 'huge'])
def test_special_or_huge_registry_is_refused_without_blocking(app, kind):
    registry = registry_of(app)
    if kind == 'fifo':
        os.mkfifo(registry)
    elif kind == 'device':
        os.symlink('/dev/zero', registry)
    else:
        with open(registry, 'wb') as handle:
            handle.truncate(32 * 1024 * 1024)  # sparse
    result = run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder'}, timeout=20)
    assert result['failed'] and result['_rc'] == 1
    words = {'fifo': 'FIFO', 'device': 'character device', 'huge': 'more than the 16777216 bytes'}[kind]
    assert words in result['msg'] and registry in result['msg']
    if kind != 'huge':
        assert not stat.S_ISREG(os.stat(registry).st_mode)  # still the special file: nothing replaced it


def test_fifo_state_file_leaves_known_agents_unknown(app):
    state = os.path.join(app, '.swarm', 'verification-memory.json')
    os.mkfifo(state)
    result = run_module('agent_quarantine', {'app_dir': app, 'state': 'query'}, timeout=20)
    assert not result.get('failed'), result
    assert result['known_agents'] is None and 'FIFO' in result['quarantined_ratio_reason']
