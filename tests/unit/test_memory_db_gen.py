"""The memory.db generator: every requested metric measured back with plain SQL, schemas, corruption modes."""

import json
import os
import re
import sqlite3
import struct
import subprocess
import sys

import pytest

import memory_db_gen as gen
from ansible_collections.claude_flow.runbook.plugins.module_utils import memory_db

HOUR = 3600
DAY = 86400
NOW = 1790000000.0   # a fixed instant keeps the runs deterministic; metrics are measured against it


def connect(path):
    return sqlite3.connect('file:%s?mode=ro' % path, uri=True)


def scalar(conn, sql, params=()):
    return conn.execute(sql, params).fetchone()[0]


def measure(path, now=NOW):
    """The runbook's metrics, computed with plain SQL through module_utils' SOURCES for the detected profile."""
    conn = connect(path)
    try:
        profile = memory_db.detect_profile(memory_db.tables(conn))
        src = memory_db.SOURCES[profile]
        pat, traj = src['patterns'], src['trajectories']

        def ago(source, seconds):
            return memory_db.to_native(now - seconds, source.time_unit)

        usage, last_used, created = pat.col('usage'), pat.col('last_used'), pat.col('created')
        out = {'profile': profile}
        out['patterns'] = scalar(conn, 'SELECT COUNT(*) FROM patterns')
        out['cache_hit_rate'] = scalar(conn, 'SELECT 100.0 * SUM(CASE WHEN %s > ? THEN %s ELSE 0 END) / SUM(%s) '
                                       'FROM patterns' % (last_used, usage, usage), (ago(pat, HOUR),))
        out['stale'] = scalar(conn, 'SELECT COUNT(*) FROM patterns WHERE %s < ? AND %s < 5' % (last_used, usage),
                              (ago(pat, 30 * DAY),))
        out['older_than_30d'] = scalar(conn, 'SELECT COUNT(*) FROM patterns WHERE %s < ?' % last_used,
                                       (ago(pat, 30 * DAY),))
        out['stale_usage_max'] = scalar(conn, 'SELECT MAX(%s) FROM patterns WHERE %s < ?' % (usage, last_used),
                                        (ago(pat, 30 * DAY),))
        out['anomalous'] = scalar(conn, 'SELECT COUNT(*) FROM patterns WHERE confidence < 0.3 OR confidence > 0.95')
        out['created_24h'] = scalar(conn, 'SELECT COUNT(*) FROM patterns WHERE %s > ?' % created, (ago(pat, DAY),))
        out['trajectories'] = scalar(conn, 'SELECT COUNT(*) FROM %s' % traj.table)
        out['ops_per_second'] = scalar(conn, 'SELECT COUNT(*) FROM %s WHERE %s > ?' % (traj.table, traj.col('created')),
                                       (ago(traj, HOUR),)) / float(HOUR)
        out['trajectories_older_than_30d'] = scalar(
            conn, 'SELECT COUNT(*) FROM %s WHERE %s < ?' % (traj.table, traj.col('created')), (ago(traj, 30 * DAY),))
        if profile == 'runbook':
            cut = ago(traj, HOUR)
            out['goap_avg_ms'] = scalar(conn, "SELECT AVG(execution_time_ms) FROM task_trajectories "
                                              "WHERE task_type = 'goap_planning' AND created_at > ?", (cut,))
            out['goap_count'] = scalar(conn, "SELECT COUNT(*) FROM task_trajectories "
                                             "WHERE task_type = 'goap_planning' AND created_at > ?", (cut,))
            ver = src['verifications']
            cut = ago(ver, HOUR)
            out['truth'] = scalar(conn, 'SELECT AVG(truth_score) FROM verification_history WHERE timestamp > ?', (cut,))
            out['agents'] = dict(conn.execute('SELECT agent_name, AVG(truth_score) FROM verification_history '
                                              'WHERE timestamp > ? GROUP BY agent_name', (cut,)).fetchall())
            out['verifications_older_than_30d'] = scalar(
                conn, 'SELECT COUNT(*) FROM verification_history WHERE timestamp < ?', (ago(ver, 30 * DAY),))
            out['bad_status'] = scalar(conn, "SELECT COUNT(*) FROM verification_history WHERE verification_status != "
                                             "CASE WHEN truth_score >= 0.85 THEN 'passed' ELSE 'failed' END")
        return out
    finally:
        conn.close()


def make(tmp_path, name='memory.db', **kwargs):
    kwargs.setdefault('now', NOW)
    path = str(tmp_path / name)
    return path, gen.generate(path, **kwargs)


def make_path(tmp_path, **kwargs):
    return make(tmp_path, **kwargs)[0]


# ----------------------------------------------------------------- metrics per profile

@pytest.mark.parametrize('knobs', [
    dict(truth_score=0.97, cache_hit=0.90, ops_per_second=2.0, goap_avg_ms=40.0, stale_fraction=0.05,
         anomalous_fraction=0.02),
    dict(truth_score=0.80, cache_hit=0.40, ops_per_second=1.0, goap_avg_ms=250.0, stale_fraction=0.3,
         anomalous_fraction=0.25, goap_fraction=0.3),
])
def test_runbook_metrics_come_out_as_requested(tmp_path, knobs):
    path, summary = make(tmp_path, rows=20000, **knobs)
    m = measure(path)
    assert m['profile'] == 'runbook'
    assert m['patterns'] == 8000 and m['trajectories'] == 10000
    assert m['truth'] == pytest.approx(knobs['truth_score'], abs=0.005)
    assert set(m['agents']) == {'coder', 'tester', 'reviewer', 'backend-dev'}
    for score in m['agents'].values():
        assert score == pytest.approx(knobs['truth_score'], abs=0.005)
    assert m['cache_hit_rate'] == pytest.approx(knobs['cache_hit'] * 100, abs=1.0)
    assert m['stale'] == round(knobs['stale_fraction'] * 8000)
    assert m['older_than_30d'] == m['stale'] and m['stale_usage_max'] < 5, 'every other pattern is recent'
    assert m['anomalous'] == round(knobs['anomalous_fraction'] * 8000)
    assert m['ops_per_second'] == pytest.approx(knobs['ops_per_second'], rel=0.02)
    assert m['goap_avg_ms'] == pytest.approx(knobs['goap_avg_ms'], abs=1.0)
    assert m['goap_count'] == round(knobs.get('goap_fraction', 0.1) * knobs['ops_per_second'] * HOUR)
    assert m['created_24h'] == round(0.02 * 8000)
    assert m['trajectories_older_than_30d'] == 0 and m['verifications_older_than_30d'] == 0
    assert m['bad_status'] == 0
    expected = summary['expected']
    assert expected['cache_hit_rate'] == pytest.approx(m['cache_hit_rate'], abs=0.01)
    assert expected['truth_score'] == pytest.approx(m['truth'], abs=0.0001)
    assert summary['row_counts'] == {'patterns': 8000, 'task_trajectories': 10000, 'verification_history': 2000}


def test_runbook_has_only_primary_key_indexes(tmp_path):
    path = make_path(tmp_path, rows=1000, ops_per_second=0.1)
    conn = connect(path)
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")]
    cols = [r[1] for r in conn.execute('PRAGMA table_info(task_trajectories)')]
    conn.close()
    assert all(n.startswith('sqlite_autoindex_') for n in names), names
    assert cols == ['task_id', 'agent_id', 'task_type', 'execution_time_ms', 'query', 'created_at']


def test_weak_agent_keeps_the_overall_average(tmp_path):
    path, summary = make(tmp_path, rows=20000, ops_per_second=1.0, truth_score=0.90, weak_agent='coder',
                         weak_agent_score=0.70)
    m = measure(path)
    assert m['agents']['coder'] == pytest.approx(0.70, abs=0.005)
    assert m['truth'] == pytest.approx(0.90, abs=0.005)
    others = [s for a, s in m['agents'].items() if a != 'coder']
    assert all(s > 0.95 for s in others), m['agents']
    assert summary['notes'] == []


def test_weak_agent_that_cannot_be_offset_shifts_the_overall_and_says_so(tmp_path):
    path, summary = make(tmp_path, rows=20000, ops_per_second=1.0, truth_score=0.97, weak_agent='tester',
                         weak_agent_score=0.30)
    m = measure(path)
    assert m['agents']['tester'] == pytest.approx(0.30, abs=0.005)
    assert m['truth'] < 0.90
    assert m['truth'] == pytest.approx(summary['expected']['truth_score'], abs=0.0001)
    assert any('overall average shifts' in n for n in summary['notes']), summary['notes']


def test_reasoningbank_metrics_and_schema_equal_the_real_ddl(tmp_path):
    path, summary = make(tmp_path, profile='reasoningbank', rows=10000, ops_per_second=1.5, cache_hit=0.6,
                         stale_fraction=0.1)
    m = measure(path)
    assert m['profile'] == 'reasoningbank'
    assert m['patterns'] == 4000 and m['trajectories'] == 6000
    assert m['cache_hit_rate'] == pytest.approx(60.0, abs=1.0)
    assert m['stale'] == 400 and m['older_than_30d'] == 400
    assert m['anomalous'] == 80
    assert m['ops_per_second'] == pytest.approx(1.5, rel=0.02)
    conn = connect(path)
    actual = sorted(normalise(sql) for (sql,) in conn.execute('SELECT sql FROM sqlite_master WHERE sql IS NOT NULL'))
    traj_cols = [r[1] for r in conn.execute('PRAGMA table_info(task_trajectories)')]
    conn.close()
    reference = sorted(normalise(st) for st in gen.REASONINGBANK_DDL.split(';\n') if st.strip())
    assert actual == reference
    assert len(reference) == 13
    assert 'task_type' not in traj_cols and 'execution_time_ms' not in traj_cols
    assert set(summary['not_applicable']) >= {'truth_score', 'goap_avg_ms'}


def test_reasoningbank_hooks_memory_entries_in_epoch_seconds(tmp_path):
    path, summary = make(tmp_path, profile='reasoningbank', rows=2000, ops_per_second=0.1, memory_entries=300)
    conn = connect(path)
    count, low, high = conn.execute('SELECT COUNT(*), MIN(created_at), MAX(created_at) FROM memory_entries').fetchone()
    conn.close()
    assert count == 300 == summary['row_counts']['memory_entries']
    assert NOW - 30 * DAY < low < high <= NOW, 'epoch seconds within the last 30 days'


def test_v3_schema_metrics_and_file_mode(tmp_path):
    path, summary = make(tmp_path, profile='v3', rows=10000, ops_per_second=1.5, cache_hit=0.5)
    m = measure(path)
    assert m['profile'] == 'v3'
    assert m['patterns'] == 4000 and m['trajectories'] == 6000
    assert m['cache_hit_rate'] == pytest.approx(50.0, abs=1.0)
    assert m['stale'] == 200 and m['older_than_30d'] == 200
    assert m['anomalous'] == 80
    assert m['created_24h'] == 80
    assert m['ops_per_second'] == pytest.approx(1.5, rel=0.02)
    assert os.stat(path).st_mode & 0o777 == 0o600
    conn = connect(path)
    tables = set(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    objects = set(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_autoindex%'"))
    started, entries = conn.execute('SELECT MIN(started_at), (SELECT COUNT(*) FROM memory_entries) '
                                    'FROM trajectories').fetchone()
    types = set(r[0] for r in conn.execute('SELECT DISTINCT pattern_type FROM patterns'))
    view = scalar(conn, "SELECT sql FROM sqlite_master WHERE name = 'skill_candidates'")
    conn.close()
    declared = re.findall(r'^CREATE (?:TABLE|INDEX|VIEW|TRIGGER) (\w+)', gen.V3_DDL, re.M)
    assert len([t for t in tables if t != 'sqlite_sequence']) == 39
    assert objects == set(declared)
    assert view.count('/* skill_candidates(') == 0, 'the .schema column comment is not stored in the view'
    assert (NOW - 30 * DAY) * 1000 < started < NOW * 1000, 'trajectories.started_at in epoch ms'
    assert entries == 500 == summary['row_counts']['memory_entries']
    assert types <= {'task-routing', 'error-recovery', 'optimization', 'learning', 'coordination', 'prediction',
                     'code-pattern', 'workflow'}


@pytest.mark.parametrize('profile', gen.PROFILES)
def test_wal_mode_and_nothing_left_beside_the_db(tmp_path, profile):
    path, summary = make(tmp_path, profile=profile, rows=1000, ops_per_second=0.1)
    with open(path, 'rb') as handle:
        header = handle.read(100)
    assert header[18] == 2 and header[19] == 2, 'WAL mode is recorded in the file header'
    assert summary['journal_mode'] == 'wal'
    assert not os.path.exists(path + '-wal') and not os.path.exists(path + '-shm')
    path, summary = make(tmp_path, name='rollback.db', profile=profile, rows=1000, ops_per_second=0.1, wal=False)
    assert summary['journal_mode'] == 'delete'


def test_same_seed_same_database_other_seed_differs(tmp_path):
    def dump(path):
        conn = connect(path)
        try:
            return list(conn.iterdump())
        finally:
            conn.close()
    a = make_path(tmp_path, name='a.db', rows=2000, ops_per_second=0.2, seed=7)
    b = make_path(tmp_path, name='b.db', rows=2000, ops_per_second=0.2, seed=7)
    c = make_path(tmp_path, name='c.db', rows=2000, ops_per_second=0.2, seed=8)
    assert dump(a) == dump(b)
    assert dump(a) != dump(c)


def test_default_rate_is_lowered_to_the_budget_but_an_explicit_one_is_an_error(tmp_path):
    path, summary = make(tmp_path, rows=3000)
    assert summary['knobs']['ops_per_second'] < 5.0
    assert any('lowered' in n for n in summary['notes'])
    assert measure(path)['ops_per_second'] == pytest.approx(summary['knobs']['ops_per_second'], rel=0.02)
    with pytest.raises(gen.GeneratorError, match='raise rows to at least'):
        gen.generate(str(tmp_path / 'x.db'), rows=3000, ops_per_second=5.0)
    assert not os.path.exists(str(tmp_path / 'x.db')), 'nothing written when the plan is impossible'


@pytest.mark.parametrize('kwargs,words', [
    (dict(profile='nope'), 'unknown profile'),
    (dict(preset='p9'), 'unknown preset'),
    (dict(truth_score=1.5), 'between 0 and 1'),
    (dict(cache_hit=90), 'not a percentage'),
    (dict(weak_agent='nobody', weak_agent_score=0.5), 'not one of agents'),
    (dict(weak_agent='coder'), 'needs weak_agent_score'),
    (dict(rows=10), 'at least'),
    (dict(goap_avg_ms=0), 'goap_avg_ms'),
    (dict(corrupt='melted'), 'unknown corrupt mode'),
    (dict(memory_entries=5), 'no memory_entries table'),
])
def test_bad_arguments_name_the_problem(tmp_path, kwargs, words):
    with pytest.raises(gen.GeneratorError, match=words):
        gen.generate(str(tmp_path / 'bad.db'), **kwargs)


# ----------------------------------------------------------------- presets, size, growth

def test_presets_set_knobs_and_explicit_arguments_win(tmp_path):
    path, summary = make(tmp_path, rows=20000, ops_per_second=1.0, preset='p1_truth')
    assert measure(path)['truth'] == pytest.approx(0.88, abs=0.005)
    path, summary = make(tmp_path, rows=20000, ops_per_second=1.0, preset='p1_truth', truth_score=0.97)
    assert measure(path)['truth'] == pytest.approx(0.97, abs=0.005)
    path, summary = make(tmp_path, rows=20000, ops_per_second=1.0, preset='p1_cache')
    assert measure(path)['cache_hit_rate'] == pytest.approx(40.0, abs=1.0)
    path, summary = make(tmp_path, rows=20000, ops_per_second=1.0, preset='p2_goap')
    assert measure(path)['goap_avg_ms'] == pytest.approx(250.0, abs=1.0)
    assert gen.PRESETS['p0_truth']['truth_score'] < 0.85 <= gen.PRESETS['p1_truth']['truth_score'] < 0.90
    assert 0.90 <= gen.PRESETS['p2_truth']['truth_score'] < 0.95
    assert gen.PRESETS['p3_size']['min_size_bytes'] > gen.P3_SIZE_THRESHOLD
    assert gen.PRESETS['p1_growth']['growth_mb_per_hour'] > 100


def test_p0_corrupt_preset_fails_integrity_check(tmp_path):
    path, summary = make(tmp_path, rows=2000, ops_per_second=0.2, preset='p0_corrupt')
    assert summary['corruption']['mode'] == 'overwritten_pages'
    conn = sqlite3.connect(path)
    assert conn.execute('PRAGMA integrity_check').fetchone()[0] != 'ok'
    conn.close()


def test_min_size_bytes_inflates_a_healthy_file(tmp_path):
    path, summary = make(tmp_path, rows=2000, ops_per_second=0.2, preset='p3_size', min_size_bytes=6 * 1024 * 1024)
    assert os.path.getsize(path) >= 6 * 1024 * 1024
    conn = sqlite3.connect(path)
    assert conn.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
    conn.close()
    assert measure(path)['cache_hit_rate'] == pytest.approx(90.0, abs=1.0)


def growth_rate(path, now=NOW):
    with open(path + '.growth.json') as handle:
        samples = json.load(handle)['samples']
    assert len(samples) == 1
    size = os.path.getsize(path)
    return (size - samples[0]['size_bytes']) / ((now - samples[0]['ts']) / HOUR) / (1024 * 1024), samples[0]


def test_growth_sample_one_hour_back(tmp_path):
    path, summary = make(tmp_path, rows=20000, ops_per_second=1.0, growth_mb_per_hour=0.5)
    rate, sample = growth_rate(path)
    assert rate == pytest.approx(0.5, rel=0.001)
    assert sample['ts'] == pytest.approx(NOW - HOUR)
    assert summary['growth_file'] == path + '.growth.json'


def test_growth_faster_than_the_file_puts_the_sample_closer(tmp_path):
    path, summary = make(tmp_path, rows=2000, ops_per_second=0.2, preset='p1_growth')
    rate, sample = growth_rate(path)
    assert rate == pytest.approx(500, rel=0.001)
    assert sample['size_bytes'] == 0
    assert NOW - HOUR < sample['ts'] <= NOW - gen.GROWTH_SPAN_MIN_S


def test_no_growth_file_unless_asked(tmp_path):
    path = make_path(tmp_path, rows=1000, ops_per_second=0.1, growth_mb_per_hour=1)
    assert os.path.exists(path + '.growth.json')
    path = make_path(tmp_path, rows=1000, ops_per_second=0.1)   # same path: the old state goes with the old DB
    assert not os.path.exists(path + '.growth.json')


# ----------------------------------------------------------------- corruption modes

def header_of(path):
    with open(path, 'rb') as handle:
        header = handle.read(100)
    return header, struct.unpack('>H', header[16:18])[0], struct.unpack('>I', header[28:32])[0]


@pytest.mark.parametrize('profile', gen.PROFILES)
def test_overwritten_pages_keep_the_header_and_fail_integrity_check(tmp_path, profile):
    path = make_path(tmp_path, profile=profile, rows=2000, ops_per_second=0.2)
    size = os.path.getsize(path)
    result = gen.corrupt(path, 'overwritten_pages')
    header = header_of(path)[0]
    assert header.startswith(b'SQLite format 3\x00') and os.path.getsize(path) == size
    assert len(result['pages']) == 4 and 1 not in result['pages']
    conn = sqlite3.connect(path)
    report = [r[0] for r in conn.execute('PRAGMA integrity_check')]
    conn.close()
    assert report != ['ok'] and 'out of range' in report[0], report


def test_truncated_file_is_shorter_than_its_header_says(tmp_path):
    path = make_path(tmp_path, rows=2000, ops_per_second=0.2)
    gen.corrupt(path, 'truncated')
    header, page_size, page_count = header_of(path)
    assert header.startswith(b'SQLite format 3\x00')
    assert 0 < os.path.getsize(path) < page_size * page_count
    assert os.path.getsize(path) <= page_size * page_count // 2 + page_size


def test_zero_length(tmp_path):
    path = make_path(tmp_path, rows=1000, ops_per_second=0.1)
    gen.corrupt(path, 'zero_length')
    assert os.path.getsize(path) == 0


def test_not_a_database(tmp_path):
    path = make_path(tmp_path, rows=1000, ops_per_second=0.1)
    gen.corrupt(path, 'not_a_database')
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match='not a database'):
        conn.execute('SELECT COUNT(*) FROM patterns').fetchone()
    conn.close()


@pytest.mark.parametrize('profile', gen.PROFILES)
def test_stale_wal_from_another_database_is_replayed_by_sqlite(tmp_path, profile):
    path = make_path(tmp_path, profile=profile, rows=2000, ops_per_second=0.2)
    result = gen.corrupt(path, 'stale_wal')
    page_size = header_of(path)[1]
    with open(path + '-wal', 'rb') as handle:
        wal_header = handle.read(32)
    # a valid WAL header for this page size: SQLite has nothing that ties it to this database file
    assert struct.unpack('>I', wal_header[:4])[0] in (0x377f0682, 0x377f0683)
    assert struct.unpack('>I', wal_header[8:12])[0] == page_size
    assert result['wal_frames'] > 1 and not os.path.exists(path + '-shm')
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute('SELECT name FROM sqlite_master')]
        report = [r[0] for r in conn.execute('PRAGMA integrity_check')]
    except sqlite3.DatabaseError as exc:
        assert 'malformed' in str(exc)   # v3: the foreign schema page does not fit this file's pages
    else:
        assert 'stale_wal_marker' in names, 'the other database schema is what SQLite now reads'
        assert report != ['ok']
    finally:
        conn.close()


@pytest.mark.parametrize('profile', gen.PROFILES)
def test_index_mismatch_is_reported_by_integrity_check(tmp_path, profile):
    path = make_path(tmp_path, profile=profile, rows=2000, ops_per_second=0.2)
    result = gen.corrupt(path, 'index_mismatch')
    conn = sqlite3.connect(path)
    report = [r[0] for r in conn.execute('PRAGMA integrity_check')]
    quick = scalar(conn, 'PRAGMA quick_check')
    rows = scalar(conn, 'SELECT COUNT(*) FROM patterns NOT INDEXED')
    scratch = scalar(conn, "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%scratch%'")
    conn.close()
    assert any('sqlite_autoindex_patterns_1' in line for line in report), report
    assert quick == 'ok', 'only the full check compares index entries with rows'
    assert rows == 800 - len(result['deleted_rowids'])
    assert scratch == 0


def test_corrupting_a_missing_file_or_unknown_mode_is_a_clear_error(tmp_path):
    with pytest.raises(gen.GeneratorError, match='does not exist'):
        gen.corrupt(str(tmp_path / 'none.db'), 'truncated')
    path = make_path(tmp_path, rows=1000, ops_per_second=0.1)
    with pytest.raises(gen.GeneratorError, match='unknown corrupt mode'):
        gen.corrupt(path, 'shredded')


# ----------------------------------------------------------------- command line

def test_cli_prints_the_summary_as_json(tmp_path):
    out = str(tmp_path / 'cli.db')
    proc = subprocess.run([sys.executable, gen.__file__, out, '--profile', 'runbook', '--rows', '2000',
                           '--preset', 'p1_truth', '--ops-per-second', '0.2', '--cache-hit', '0.5', '--seed', '3',
                           '--now', str(NOW)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary['path'] == out and summary['preset'] == 'p1_truth'
    assert summary['knobs']['truth_score'] == 0.88 and summary['knobs']['cache_hit'] == 0.5
    m = measure(out)
    assert m['truth'] == pytest.approx(0.88, abs=0.005) and m['cache_hit_rate'] == pytest.approx(50, abs=1.0)


def test_cli_reports_an_impossible_rate_on_stderr(tmp_path):
    proc = subprocess.run([sys.executable, gen.__file__, str(tmp_path / 'x.db'), '--rows', '1000',
                           '--ops-per-second', '100'], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2 and proc.stdout == ''
    assert 'raise rows' in proc.stderr


def normalise(sql):
    return ' '.join(sql.replace(';', ' ').split())
