"""Every module runs through module_envelope: a refusal is failed with the error's own sentence, and every
result, failed or not, carries execution_time_ms."""

import os

import pytest

from dbfactory import make_db

# (module, args, words the refusal must contain); {tmp} is the test's own directory.
REFUSALS = [
    ('agent_quarantine', {'agent': '../etc', 'registry': '{tmp}/q.json', 'known_agents': []}, 'agent'),
    ('memory_db_backup', {'path': '{db}', 'dest': '{tmp}/b', 'keep': 0, 'timestamped': True}, 'keep must be'),
    ('memory_db_check', {'path': '{db}', 'max_errors': 0}, 'max_errors must be between 1'),
    ('memory_db_info', {'path': '{db}', 'window': 'soon'}, 'is not a duration'),
    ('memory_db_optimize', {'path': '{tmp}/none/memory.db'}, 'does not exist'),
    ('memory_db_preserve', {'path': '{db}', 'preserve_dir': '{tmp}/p', 'label': '../x'}, 'label'),
    ('memory_db_prune', {'path': '{db}', 'rules': ['no_such_rule']}, 'no_such_rule'),
    ('memory_db_recover', {'path': '{db}', 'dest': '{db}'}, 'is the database itself'),
    ('memory_db_restore', {'path': '{db}', 'src': '{tmp}/missing.backup'}, 'cannot be restored'),
    ('neural', {'app_dir': '{tmp}', 'epochs': 0}, 'epochs must be between 1'),
    ('remediation_guard', {'state_dir': '{tmp}/g', 'ttl': 0}, 'ttl must be between 1'),
    ('triage', {'app_dir': '{tmp}', 'path': '{db}', 'window': '-1h'}, 'window'),
    ('truth_info', {'app_dir': '{tmp}', 'window': 'soon'}, 'is not a duration'),
]


@pytest.mark.parametrize('name,args,words', REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusal_is_failed_with_its_sentence_and_timed(module, tmp_path, name, args, words):
    db = make_db(tmp_path, rows=100)
    args = dict((key, value.format(tmp=tmp_path, db=db) if isinstance(value, str) else
                 [v.format(tmp=tmp_path, db=db) for v in value] if isinstance(value, list) else value)
                for key, value in args.items())
    r = module(name, args)
    assert r.get('failed') is True, r
    assert words in r['msg'], r['msg']
    assert isinstance(r['execution_time_ms'], int) and r['execution_time_ms'] >= 0, r


def test_success_is_timed(module, tmp_path):
    db = make_db(tmp_path, rows=100)
    r = module('memory_db_check', {'path': db})
    assert r['ok'] is True and r['changed'] is False and isinstance(r['execution_time_ms'], int), r
    assert os.path.exists(db)
