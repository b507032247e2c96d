"""memory_db: file inspection, profile detection, time units, windows, source mapping."""

import os
import sqlite3
import time

import pytest

from ansible_collections.claude_flow.runbook.plugins.module_utils import memory_db
from dbfactory import PROFILES, make_db


@pytest.mark.parametrize('profile', PROFILES)
def test_profile_detected_from_sqlite_master(tmp_path, profile):
    with memory_db.Database(make_db(tmp_path, profile)) as db:
        assert db.profile == profile


def test_unknown_profile_for_unrelated_db(tmp_path):
    path = str(tmp_path / 'x.db')
    sqlite3.connect(path).execute('CREATE TABLE users(id)').connection.close()
    with memory_db.Database(path) as db:
        assert db.profile == 'unknown'


@pytest.mark.parametrize('text,seconds', [('90s', 90), ('15m', 900), ('1h', 3600), ('2d', 172800), ('3600', 3600),
                                          (60, 60), ('1.5h', 5400)])
def test_parse_window(text, seconds):
    assert memory_db.parse_window(text) == seconds


@pytest.mark.parametrize('text', ['0', '-1h', 'soon', '', '1w'])
def test_parse_window_rejects(text):
    with pytest.raises(memory_db.MemoryDbError):
        memory_db.parse_window(text)


@pytest.mark.parametrize('text', ['1e400h', '1e400', 'inf', '-inf', 'infh', 'nan', '1e308d', '3651d', 1e400, 10 ** 400,
                                  float('nan'), '0.5', '9' * 400])
def test_parse_window_never_overflows_and_names_the_range(text):
    with pytest.raises(memory_db.MemoryDbError) as err:
        memory_db.parse_window(text)
    assert '1s to 3650d' in str(err.value) and len(str(err.value)) < 300


def test_parse_window_upper_bound_is_accepted():
    assert memory_db.parse_window('3650d') == 3650 * 86400


def test_inspect_file_refuses_special_files_without_opening(tmp_path):
    fifo = str(tmp_path / 'memory.db')
    os.mkfifo(fifo)
    info = memory_db.inspect_file(fifo)  # opening a FIFO for reading would block here
    assert 'FIFO' in info['problem'] and not info['header_ok']
    assert 'character device' in memory_db.inspect_file('/dev/zero')['problem']


@pytest.mark.parametrize('value', [-1, 600001, 10 ** 30])
def test_busy_timeout_range(value):
    with pytest.raises(memory_db.MemoryDbError, match='between 0 and 600000 milliseconds'):
        memory_db.check_busy_timeout(value)


def test_time_units_round_trip():
    instant = 1795851557.0
    assert memory_db.to_native(instant, memory_db.EPOCH_MS) == 1795851557000
    assert memory_db.to_native(instant, memory_db.EPOCH_S) == 1795851557
    text = memory_db.to_native(instant, memory_db.TEXT_UTC)
    assert text == time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(instant))
    iso = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(instant))
    for unit in (memory_db.EPOCH_MS, memory_db.EPOCH_S, memory_db.TEXT_UTC):
        assert memory_db.to_iso(memory_db.to_native(instant, unit), unit) == iso
    assert memory_db.to_iso(None, memory_db.EPOCH_MS) is None


def test_epoch_expr_agrees_across_units():
    conn = sqlite3.connect(':memory:')
    instant = 1795851557
    for unit in (memory_db.EPOCH_MS, memory_db.EPOCH_S, memory_db.TEXT_UTC):
        value = memory_db.to_native(instant, unit)
        got = conn.execute('SELECT %s' % memory_db.epoch_expr('?', unit), (value,)).fetchone()[0]
        assert got == pytest.approx(instant, abs=1)


def test_source_missing_names_table_and_column():
    source = memory_db.SOURCES['runbook']['trajectories']
    assert 'does not exist' in source.missing({}, ['created'])
    assert 'task_type' in source.missing({'task_trajectories': ['created_at']}, ['created', 'task_type'])
    assert source.missing({'task_trajectories': ['created_at', 'task_type']}, ['created', 'task_type']) is None
    v3 = memory_db.SOURCES['v3']['patterns']
    assert 'failure_count' in v3.missing({'patterns': ['success_count']}, ['usage'])


def test_inspect_file_problems(tmp_path):
    missing = memory_db.inspect_file(str(tmp_path / 'none.db'))
    assert not missing['exists'] and 'does not exist' in missing['problem']
    (tmp_path / 'text.db').write_text('hello ' * 40)
    assert 'not an SQLite database' in memory_db.inspect_file(str(tmp_path / 'text.db'))['problem']
    assert 'directory' in memory_db.inspect_file(str(tmp_path))['problem']


def test_readonly_open_never_creates_a_file(tmp_path):
    with pytest.raises(memory_db.MemoryDbError, match='does not exist'):
        memory_db.connect(str(tmp_path / 'new.db'))
    assert not (tmp_path / 'new.db').exists()


def test_readonly_connection_refuses_writes(tmp_path):
    with memory_db.Database(make_db(tmp_path)) as db:
        with pytest.raises(memory_db.MemoryDbError, match='permissions|read-only|readonly'):
            db.execute('DELETE FROM patterns')
