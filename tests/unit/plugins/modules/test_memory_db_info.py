"""memory_db_info: the runbook's metrics on the three profiles, unavailable reasons, windows."""

import os
import sqlite3

import pytest

import memory_db_gen
from dbfactory import make_db, sha256


def info(module, path, **args):
    args['path'] = path
    result = module('memory_db_info', args)
    assert not result.get('failed'), result
    return result


def test_runbook_profile_metrics_match_what_was_generated(module, tmp_path):
    path = make_db(tmp_path, 'runbook', rows=6000, truth_score=0.97, cache_hit=0.9, ops_per_second=0.5,
                   goap_avg_ms=40.0)
    r = info(module, path)
    assert r['schema_profile'] == 'runbook'
    assert r['unavailable'].keys() <= {'growth_bytes_per_hour'}, r['unavailable']
    assert r['truth_score_avg'] == pytest.approx(0.97, abs=0.01)
    assert r['cache_hit_rate'] == pytest.approx(90, abs=1.5)
    assert r['ops_per_second'] == pytest.approx(0.5, rel=0.05)
    assert r['goap_planning']['avg_ms'] == pytest.approx(40, abs=1.5)
    assert {a['agent'] for a in r['truth_agents']} >= {'coder', 'tester'}
    assert r['patterns_by_type'] and all(p['count'] > 0 for p in r['patterns_by_type'])
    assert r['anomalous_patterns']['count'] > 0
    assert r['indexes']['recommended_missing'], 'the runbook profile ships without the recommended indexes'
    assert r['metrics']['cache_hit_rate'] == r['cache_hit_rate']


def test_reasoningbank_says_why_truth_and_goap_are_unavailable(module, tmp_path):
    r = info(module, make_db(tmp_path, 'reasoningbank', rows=4000))
    assert r['schema_profile'] == 'reasoningbank'
    assert r['truth_score_avg'] is None and 'verification-memory.json' in r['unavailable']['truth_score_avg']
    assert r['goap_planning'] is None and 'task_type' in r['unavailable']['goap_planning']
    assert r['cache_hit_rate'] is not None and r['ops_per_second'] is not None


def test_v3_reads_epoch_ms_columns(module, tmp_path):
    r = info(module, make_db(tmp_path, 'v3', rows=4000, cache_hit=0.5, ops_per_second=0.4))
    assert r['schema_profile'] == 'v3'
    assert r['cache_hit_rate'] == pytest.approx(50, abs=2)
    assert r['ops_per_second'] == pytest.approx(0.4, rel=0.05)
    assert 'truth_score_avg' in r['unavailable'] and 'goap_planning' in r['unavailable']
    assert r['anomalous_patterns']['recent'][0]['created_at'].endswith('Z')


def test_empty_table_and_idle_window_are_unavailable_but_counts_outside_window_are_zero(module, tmp_path):
    path = make_db(tmp_path, 'runbook', rows=3000)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE task_trajectories SET created_at = datetime('now', '-3 days')")
    conn.execute("UPDATE patterns SET created_at = datetime('now', '-3 days')")
    conn.commit()
    r = info(module, path, gather=['ops_per_second', 'patterns_created_24h'])
    # No activity in the window is no rate (idle), not a rate of 0; a count of 0 is a real count.
    assert r['ops_per_second'] is None and r['unavailable']['ops_per_second'].startswith('idle: 0 trajectories')
    assert r['patterns_created_24h'] == 0 and 'patterns_created_24h' not in r['unavailable']
    conn.execute('DELETE FROM task_trajectories')
    conn.commit()
    conn.close()
    r = info(module, path, gather=['ops_per_second'])
    assert r['ops_per_second'] is None
    assert 'never held a row' in r['unavailable']['ops_per_second']


def test_gather_wildcards_and_exclusions(module, tmp_path):
    path = make_db(tmp_path)
    r = info(module, path, gather=['truth_*', 'db_*'])
    assert set(r['metrics']) == {'truth_score_avg', 'truth_agents', 'db_size_bytes'}
    r = info(module, path, gather=['all', '!indexes', '!growth*'])
    assert 'indexes' not in r['metrics'] and 'growth_bytes_per_hour' not in r['metrics']
    assert 'cache_hit_rate' in r['metrics']


@pytest.mark.parametrize('args,words', [
    ({'gather': ["x'; DROP TABLE patterns;--"]}, 'matches nothing'),
    ({'window': '-1h'}, 'positive'),
    ({'window': "1h'; DELETE FROM patterns;--"}, 'not a duration'),
])
def test_bad_input_is_rejected_and_loses_nothing(module, tmp_path, args, words):
    path = make_db(tmp_path)
    before = sha256(path)
    args['path'] = path
    r = module('memory_db_info', args)
    assert r['failed'] and words in r['msg'], r
    assert sha256(path) == before


def test_growth_from_samples_and_check_mode_records_none(module, tmp_path):
    path = make_db(tmp_path, growth_mb_per_hour=500)
    state = path + '.growth.json'
    assert os.path.exists(state)
    r = info(module, path, gather=['growth_bytes_per_hour'])
    assert r['growth_bytes_per_hour'] / 1048576 == pytest.approx(500, rel=0.05)
    fresh = make_db(tmp_path, name='other.db')
    r = module('memory_db_info', {'path': fresh, 'gather': ['growth_bytes_per_hour']}, check_mode=True)
    assert r['growth_bytes_per_hour'] is None and 'sample' in r['unavailable']['growth_bytes_per_hour']
    assert not os.path.exists(fresh + '.growth.json'), 'check mode must not write the sample file'
    r = info(module, fresh, gather=['growth_bytes_per_hour'])
    assert os.path.exists(fresh + '.growth.json')


def test_db_not_created_yet_is_unknown_not_a_failure(module, tmp_path):
    r = module('memory_db_info', {'path': str(tmp_path / 'missing.db'), 'gather': ['ops_per_second', 'db_size_bytes']})
    assert not r.get('failed'), r
    assert r['db_state'] == 'not_created' and r['ops_per_second'] is None and r['db_size_bytes'] is None
    assert sorted(r['unavailable']) == ['db_size_bytes', 'ops_per_second']
    assert 'not created yet' in r['unavailable']['ops_per_second']
    assert not os.path.exists(str(tmp_path / 'missing.db')), 'reading must not create the database'


def test_corrupt_or_missing_db_fails_with_a_clear_message(module, tmp_path):
    # A DB that did exist (its -wal is still there) is data loss, not a fresh install.
    (tmp_path / 'gone.db-wal').write_bytes(b'x')
    r = module('memory_db_info', {'path': str(tmp_path / 'gone.db')})
    assert r['failed'] and 'does not exist, and it did' in r['msg'] and r['db_state'] == 'missing'
    r = module('memory_db_info', {'path': str(tmp_path / 'no-such-dir' / 'memory.db')})
    assert r['failed'] and 'configuration problem' in r['msg'] and r['db_state'] == 'config'
    empty = tmp_path / 'empty.db'
    empty.write_bytes(b'')
    r = module('memory_db_info', {'path': str(empty)})
    assert r['failed'] and 'zero bytes' in r['msg']


def test_idle_window_gives_no_cache_hit_rate_and_one_trajectory_no_rate(module, tmp_path):
    path = make_db(tmp_path, 'runbook', rows=3000)
    memory_db_gen.make_idle(path)
    r = info(module, path, gather=['cache_hit_rate', 'ops_per_second', 'goap_planning'])
    # No lookup in the window: a hit rate of 0 would read as P1 on an idle host.
    assert r['cache_hit_rate'] is None and r['unavailable']['cache_hit_rate'].startswith('idle: no pattern lookup')
    assert r['ops_per_second'] is None and r['unavailable']['ops_per_second'].startswith('idle: 1 trajectory')
    assert r['goap_planning'] is None and r['unavailable']['goap_planning'].startswith('idle:')


@pytest.mark.parametrize('window', ['1e400h', 'inf', 'nan', '-1h', '0'])
def test_absurd_windows_fail_naming_the_range(module, tmp_path, window):
    path = make_db(tmp_path, 'runbook', rows=500)
    before = sha256(path)
    result = module('memory_db_info', {'path': path, 'window': window})
    assert result['failed'] and '1s to 3650d' in result['msg'] and sha256(path) == before


def test_fifo_db_path_fails_without_blocking(module, tmp_path):
    fifo = str(tmp_path / 'memory.db')
    os.mkfifo(fifo)
    result = module('memory_db_info', {'path': fifo}, timeout=20)
    assert result['failed'] and 'FIFO' in result['msg']


def test_special_growth_state_is_unavailable_without_blocking(module, tmp_path):
    path = make_db(tmp_path, 'runbook', rows=500)
    state = str(tmp_path / 'growth.json')
    os.mkfifo(state)
    r = module('memory_db_info', {'path': path, 'gather': ['growth_bytes_per_hour'], 'growth_state': state},
               check_mode=True, timeout=20)
    assert not r.get('failed') and 'FIFO' in r['unavailable']['growth_bytes_per_hour']
