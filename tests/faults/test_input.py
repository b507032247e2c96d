# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault matrix, input at the module level: wrong types, unknown severities, negative windows, a
path that is the DB itself, SQL fragments in names. Each must be refused before anything is read or
written, with a message that names the option and the fix; the DB keeps every byte.
(The same inputs given to the playbooks are in test_lab_faults.py.)"""

import os

import pytest

from conftest import PriorState, make_db, run_module  # run_module: each real run preceded by its check-mode twin


@pytest.fixture
def db(tmp_path, fault):
    fault.scrub(tmp_path)
    return make_db(str(tmp_path / 'app' / '.swarm' / 'memory.db'))


def triage(db, **options):
    """The triage module on the fixture's DB and app dir, no health probe, plus the options under test."""
    return run_module('triage', dict({'path': db, 'app_dir': os.path.dirname(os.path.dirname(db)),
                                      'health_url': ''}, **options))


def refused(fault, prior, result, *words):
    """The module failed cleanly (rc 1, a message naming the problem), and the DB set kept every byte."""
    assert result['_rc'] == 1 and result['failed'], result
    for word in words:
        assert word in result['msg'], result['msg']
    lost = prior.lost()
    fault.lost(lost)
    assert lost == 0
    return fault.clip(result['msg'], 190)


@pytest.mark.fault('input', 'Wrong types (keep: "many", a threshold "high")')
def test_wrong_types(db, fault):
    prior = PriorState(db)
    keep = run_module('memory_db_backup', {'path': db, 'dest': os.path.dirname(db) + '/b', 'keep': 'many',
                                           'timestamped': True})
    threshold = triage(db, thresholds={'truth_score': {'P0': 'high'}})
    fault.did('memory_db_backup: "%s"; triage: "%s"' % (refused(fault, prior, keep, 'keep'),
                                                        refused(fault, prior, threshold, 'truth_score.P0')))
    assert not os.path.exists(os.path.dirname(db) + '/b')


@pytest.mark.fault('input', 'Unknown severity and unknown metric in the threshold table')
def test_unknown_severity(db, fault):
    prior = PriorState(db)
    severity = triage(db, thresholds={'truth_score': {'P7': 0.5}})
    metric = triage(db, thresholds={'truth_scroe': {'P1': 0.9}})
    fault.did('triage: "%s"; a misspelt metric: "%s"' % (refused(fault, prior, severity, 'P7'),
                                                         refused(fault, prior, metric, 'truth_scroe')))


@pytest.mark.fault('input', 'Negative windows (-5m, -1h, -2d)')
def test_negative_windows(db, fault):
    prior = PriorState(db)
    app = os.path.dirname(os.path.dirname(db))
    messages = [refused(fault, prior, triage(db, window='-5m'), 'window'),
                refused(fault, prior, run_module('memory_db_info', {'path': db, 'window': '-1h'}), 'window'),
                refused(fault, prior, run_module('truth_info', {'app_dir': app, 'source': 'state_file',
                                                                'window': '-2d'}), 'window')]
    fault.did('triage, memory_db_info and truth_info each: "%s"' % messages[0])


@pytest.mark.fault('input', 'A destination that is the live DB itself (recover/restore/backup)')
def test_destination_is_the_db(db, fault):
    prior = PriorState(db)
    recover = run_module('memory_db_recover', {'path': db, 'dest': db, 'force': True})
    restore = run_module('memory_db_restore', {'path': db, 'src': db})
    fault.did('memory_db_recover: "%s"; memory_db_restore: "%s"' % (refused(fault, prior, recover, 'dest'),
                                                                    refused(fault, prior, restore, 'src')))


@pytest.mark.fault('input', 'SQL fragments in names (backup name, agent name, prune rule)')
def test_sql_fragments_in_names(db, fault):
    prior = PriorState(db)
    app = os.path.dirname(os.path.dirname(db))
    injection = "x'; DROP TABLE patterns;--"
    name = run_module('memory_db_backup', {'path': db, 'dest': app + '/b', 'name': injection})
    agent = run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder' + injection, 'state': 'present'})
    rule = run_module('memory_db_prune', {'path': db, 'rules': ['stale_patterns; DROP TABLE patterns']})
    texts = [refused(fault, prior, name, 'name'), refused(fault, prior, agent, 'agent'),
             refused(fault, prior, rule)]
    import sqlite3
    conn = sqlite3.connect('file:%s?immutable=1' % db, uri=True)
    try:
        assert conn.execute('SELECT COUNT(*) FROM patterns').fetchone()[0] > 0
    finally:
        conn.close()
    fault.did('memory_db_backup: "%s"; agent_quarantine: "%s"; memory_db_prune: "%s"; patterns table intact'
              % tuple(fault.clip(text, 110) for text in texts))
