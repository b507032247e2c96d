"""memory_db_optimize: recommended indexes per profile, WAL, ANALYZE, idempotence, check mode."""

import sqlite3

import pytest

from dbfactory import PROFILES, make_db, tree_digest


@pytest.mark.parametrize('profile', PROFILES)
def test_optimize_is_idempotent_and_leaves_nothing_missing(module, tmp_path, profile):
    path = make_db(tmp_path, profile, wal=False)
    first = module('memory_db_optimize', {'path': path})
    assert first['changed'] is True and not first.get('failed'), first
    assert first['journal_mode'] == 'wal'
    second = module('memory_db_optimize', {'path': path})
    assert second['changed'] is False and second['actions'] == []
    info = module('memory_db_info', {'path': path, 'gather': ['indexes']})
    assert info['indexes']['recommended_missing'] == []
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone()[0] == 1
    conn.close()


def test_check_mode_lists_actions_and_changes_nothing(module, tmp_path):
    path = make_db(tmp_path, wal=False)
    before = tree_digest(str(tmp_path))
    r = module('memory_db_optimize', {'path': path, 'vacuum': True}, check_mode=True)
    assert r['changed'] is True and any('CREATE INDEX' in a for a in r['would_run'])
    assert r['vacuum']['ran'] is False
    assert tree_digest(str(tmp_path)) == before


def test_windowed_query_uses_the_new_index(module, tmp_path):
    path = make_db(tmp_path, wal=False)
    module('memory_db_optimize', {'path': path})
    plan = sqlite3.connect(path).execute(
        "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM task_trajectories WHERE created_at > ?", ('2026-01-01',)).fetchall()
    assert any('idx_task_trajectories' in row[-1] for row in plan), plan
