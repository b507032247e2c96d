"""memory_db_prune: counts, batches, the max_rows cap, check mode and bound parameters."""

import sqlite3

import pytest

from dbfactory import PROFILES, corrupt_db, make_db, sha256

STALE_SQL = {
    'runbook': "SELECT COUNT(*) FROM patterns WHERE last_used < datetime('now','-30 days') AND usage_count < 5",
    'reasoningbank': "SELECT COUNT(*) FROM patterns WHERE last_used < datetime('now','-30 days') AND usage_count < 5",
    'v3': ("SELECT COUNT(*) FROM patterns WHERE last_matched_at < (strftime('%s','now') - 30*86400) * 1000 "
           "AND success_count + failure_count < 5"),
}


def count(path, sql):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


@pytest.mark.parametrize('profile', PROFILES)
def test_prune_deletes_exactly_the_stale_patterns(module, tmp_path, profile):
    path = make_db(tmp_path, profile, rows=5000, stale_fraction=0.2)
    stale = count(path, STALE_SQL[profile])
    total = count(path, 'SELECT COUNT(*) FROM patterns')
    assert stale > 0
    planned = module('memory_db_prune', {'path': path, 'rules': ['stale_patterns']}, check_mode=True)
    assert planned['would_delete'] == stale and planned['deleted'] == 0 and planned['changed'] is True
    assert count(path, 'SELECT COUNT(*) FROM patterns') == total
    done = module('memory_db_prune', {'path': path, 'rules': ['stale_patterns'], 'batch_size': 50})
    assert done['deleted'] == stale and done['batches'] >= stale // 50
    assert count(path, 'SELECT COUNT(*) FROM patterns') == total - stale
    again = module('memory_db_prune', {'path': path, 'rules': ['stale_patterns']})
    assert again['deleted'] == 0 and again['changed'] is False


def test_check_mode_changes_no_byte_even_with_vacuum(module, tmp_path):
    path = make_db(tmp_path, stale_fraction=0.2, wal=False)
    before = sha256(path)
    r = module('memory_db_prune', {'path': path, 'vacuum': True}, check_mode=True)
    assert r['vacuum']['ran'] is False and r['vacuum']['would_run'] is True
    assert sha256(path) == before


def test_max_rows_cap_fails_before_deleting(module, tmp_path):
    path = make_db(tmp_path, stale_fraction=0.3)
    total = count(path, 'SELECT COUNT(*) FROM patterns')
    r = module('memory_db_prune', {'path': path, 'max_rows': 3})
    assert r['failed'] and 'max_rows=3' in r['msg'] and 'nothing was deleted' in r['msg']
    assert count(path, 'SELECT COUNT(*) FROM patterns') == total


def test_custom_rule_values_are_bound_not_spliced(module, tmp_path):
    path = make_db(tmp_path)
    total = count(path, 'SELECT COUNT(*) FROM patterns')
    r = module('memory_db_prune', {'path': path, 'rules': [{'type': "x' OR 1=1 --", 'confidence_below': 2}]})
    assert r['deleted'] == 0 and not r.get('failed')
    assert count(path, 'SELECT COUNT(*) FROM patterns') == total


@pytest.mark.parametrize('rules,words', [
    (['no_such_rule'], 'not a runbook rule'),
    ([{'name': 'empty'}], 'no condition'),
    ([{'older_than': 'DROP TABLE'}], 'not a duration'),
    ([{'bogus': 1}], 'unknown keys'),
])
def test_bad_rules_are_rejected(module, tmp_path, rules, words):
    path = make_db(tmp_path)
    r = module('memory_db_prune', {'path': path, 'rules': rules})
    assert r['failed'] and words in r['msg'], r


def test_refuses_a_corrupt_database(module, tmp_path):
    path = corrupt_db(make_db(tmp_path), 'overwritten_pages')
    before = sha256(path)
    r = module('memory_db_prune', {'path': path})
    assert r['failed'] and 'quick_check failed' in r['msg']
    assert sha256(path) == before


def test_vacuum_runs_and_reports_sizes(module, tmp_path):
    path = make_db(tmp_path, stale_fraction=0.5)
    r = module('memory_db_prune', {'path': path, 'vacuum': True})
    assert r['vacuum']['ran'] is True and r['vacuum']['size_after'] <= r['vacuum']['size_before']


@pytest.mark.parametrize('args, words', [
    ({'max_rows': -1}, 'max_rows must be between 0 and'),
    ({'batch_size': 0}, 'batch_size must be between 1 and 1000000 (got 0)'),
    ({'busy_timeout': -5}, 'busy_timeout must be between 0 and'),
])
def test_out_of_range_numbers_are_refused_with_the_range(module, tmp_path, args, words):
    db = make_db(tmp_path, rows=200)
    before = sha256(db)
    r = module('memory_db_prune', dict(args, path=db))
    assert r['failed'] and words in r['msg'], r
    assert sha256(db) == before
