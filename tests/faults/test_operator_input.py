# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault matrix, what an operator can type: windows that overflow, numbers out of range, a FIFO, a
device, a socket or a huge file where a log, a registry or a state file belongs, bytes that are not
UTF-8, a path typo. Each must end in a clear refusal naming the valid range, or a metric reported
unavailable with the reason - never a traceback, never a hang, never a read of the whole file, and
never a severity raised by what could not be measured. The modules run as real processes."""

import json
import os
import socket
import time

import pytest

from conftest import PriorState, make_db, run_module  # run_module: each real run preceded by its check-mode twin
from test_input import refused

# A module that blocks on a FIFO would hang until run_module's own timeout; this is far below it.
NO_HANG_S = 30
# The lab's scale: the runbook's 50k/100k/150k neural ops/sec cannot be observed in memory.db.
LAB_OPS = {'ops_per_second': {'P0': 0.05, 'P1': 0.1, 'P2': 0.15}}


@pytest.fixture
def db(tmp_path, fault):
    """claude-flow 2.7's schema (truth scores live in the state file, not in the DB)."""
    fault.scrub(tmp_path)
    return make_db(str(tmp_path / 'app' / '.swarm' / 'memory.db'), profile='reasoningbank')


def app_of(db):
    return os.path.dirname(os.path.dirname(db))


def triage(db, **options):
    """triage on the fixture's DB, without the health probe and with empty backup/preserve dirs of its own."""
    base = os.path.dirname(app_of(db))
    args = {'path': db, 'app_dir': app_of(db), 'health_url': '', 'log_path': os.path.join(base, 'none.log'),
            'backup_dir': os.path.join(base, 'backups'), 'preserve_dir': os.path.join(base, 'preserved'),
            'thresholds': LAB_OPS}
    args.update(options)
    started = time.monotonic()
    result = run_module('triage', args, timeout=120)
    result['_seconds'] = time.monotonic() - started
    return result


WINDOWS = [('1e400h', 'Window 1e400h (overflows a float)'), ('inf', 'Window inf'), ('nan', 'Window nan'),
           ('0', 'Window 0'), ('-1h', 'Window -1h')]


@pytest.mark.fault('operator input', 'absurd window')
@pytest.mark.parametrize('window,title', WINDOWS, ids=[w[0] for w in WINDOWS])
def test_absurd_window(db, fault, window, title):
    fault.title = title + ' (triage, memory_db_info, truth_info)'
    prior = PriorState(db)
    texts = [refused(fault, prior, triage(db, window=window), 'window', '1s to 3650d'),
             refused(fault, prior, run_module('memory_db_info', {'path': db, 'window': window}), '1s to 3650d'),
             refused(fault, prior, run_module('truth_info', {'app_dir': app_of(db), 'source': 'state_file',
                                                             'window': window}), '1s to 3650d')]
    fault.did('refused by all three, no traceback: "%s"' % texts[0])


@pytest.mark.fault('operator input', 'Numbers out of range (log_lines 10^12, health_timeout 0, poll_interval inf, '
                   'epochs 0, timeout 10^9)')
def test_numbers_out_of_range(db, fault, tmp_path):
    prior = PriorState(db)
    texts = [refused(fault, prior, triage(db, log_lines=10 ** 12), 'log_lines must be between 1 and 100000'),
             refused(fault, prior, triage(db, health_timeout=0), 'health_timeout must be between 1 and 300'),
             refused(fault, prior, run_module('remediation_guard', {'state_dir': str(tmp_path / 'guard'),
                                                                    'state': 'acquired', 'incident_id': 'INC-1',
                                                                    'poll_interval': float('inf')}),
                     'poll_interval must be between 0.05 and 60'),
             refused(fault, prior, run_module('neural', {'app_dir': app_of(db), 'command': 'train', 'epochs': 0}),
                     'epochs must be between 1 and 10000'),
             refused(fault, prior, run_module('truth_info', {'app_dir': app_of(db), 'timeout': 10 ** 9}),
                     'timeout must be between 1 and 86400')]
    assert not os.path.exists(str(tmp_path / 'guard' / 'lock.json'))
    fault.did('each refused naming its range, nothing read or written: "%s"; "%s"'
              % (fault.clip(texts[0], 110), fault.clip(texts[2], 110)))


@pytest.mark.fault('operator input', 'A FIFO as log_path and as registry (triage)')
def test_fifo_log_and_registry(db, fault, tmp_path):
    prior = PriorState(db)
    log, registry = str(tmp_path / 'app.log'), str(tmp_path / 'quarantine.json')
    os.mkfifo(log)
    os.mkfifo(registry)
    result = triage(db, log_path=log, registry=registry)
    assert result['_seconds'] < NO_HANG_S and not result.get('failed'), result
    assert 'FIFO' in result['unknown']['log_size_bytes'] and 'FIFO' in result['unknown']['quarantined_ratio']
    assert result['severity'] == 'none', result['reasons']
    fault.lost(prior.lost())
    fault.did('no hang (%.1f s); both metrics unknown, severity none: "%s"'
              % (result['_seconds'], fault.clip(result['unknown']['log_size_bytes'], 200)))


@pytest.mark.fault('operator input', 'A FIFO, a socket and a FIFO registry (truth_info state_file, agent_quarantine)')
def test_fifo_state_file_and_socket(db, fault, tmp_path):
    app = app_of(db)
    state = os.path.join(app, '.swarm', 'verification-memory.json')
    os.mkfifo(state)
    started = time.monotonic()
    truth = run_module('truth_info', {'app_dir': app, 'source': 'state_file'})
    assert (truth['status'], truth['overall']) == ('error', None) and 'FIFO' in truth['reason']
    os.unlink(state)
    server = socket.socket(socket.AF_UNIX)
    server.bind(state)
    try:
        sock = run_module('truth_info', {'app_dir': app, 'source': 'state_file'})
    finally:
        server.close()
    assert sock['status'] == 'error' and 'socket' in sock['reason']
    registry = os.path.join(app, '.swarm', 'quarantine.json')
    os.mkfifo(registry)
    quarantine = run_module('agent_quarantine', {'app_dir': app, 'agent': 'coder'})
    assert quarantine['failed'] and 'FIFO' in quarantine['msg']
    assert time.monotonic() - started < NO_HANG_S
    assert not os.path.isfile(registry)  # refused, not replaced
    fault.did('no hang; truth_info status error "%s"; agent_quarantine refused, the FIFO left in place'
              % fault.clip(truth['reason'], 200))


@pytest.mark.fault('operator input', 'Non-UTF-8 bytes in the log and the state file')
def test_non_utf8_bytes(db, fault, tmp_path):
    app = app_of(db)
    log = str(tmp_path / 'app.log')
    with open(log, 'wb') as handle:
        handle.write(b'INFO \xc3\x28 started\n' + b'ERROR \xff\xfe\xfd broken\n' * 3 + b'\x80FATAL\n')
    with open(os.path.join(app, '.swarm', 'verification-memory.json'), 'wb') as handle:
        handle.write(json.dumps({'history': [{'taskId': 't1', 'agentType': 'AGENT', 'score': 0.97, 'passed': True,
                                              'timestamp': '2026-11-28T05:00:00Z'}]}).encode().replace(
            b'AGENT', b'coder\xff'))
    result = triage(db, log_path=log)
    assert not result.get('failed'), result
    assert result['details']['log']['counts'] == {'critical': 0, 'error': 3, 'fatal': 1}
    truth = run_module('truth_info', {'app_dir': app, 'source': 'state_file'})
    assert truth['status'] == 'ok' and [a['agent'] for a in truth['agents']] == [u'coder\ufffd']
    fault.did('read with U+FFFD for the bad bytes (as node reads the state file): log counts error 3 fatal 1; '
              'truth score %s for agent "coder\\ufffd"' % truth['overall'])


@pytest.mark.fault('operator input', 'A path typo (.swram/memory.db): configuration problem, not data loss')
def test_path_typo(db, fault):
    typo = os.path.join(app_of(db), '.swram', 'memory.db')
    result = triage(db, path=typo)
    assert not result.get('failed'), result
    assert result['severity'] != 'P0' and result['details']['db_state'] == 'config', result['reasons']
    assert 'configuration problem' in result['unknown']['db_missing']
    fault.did('severity %s, not P0 (p0_response would have stopped the service): "%s"'
              % (result['severity'], fault.clip(result['unknown']['db_missing'], 220)))


# ---------------------------------------------------------------------------------- resource exhaustion

@pytest.mark.fault('resource exhaustion', '/dev/zero as the truth state file')
def test_dev_zero_state_file(db, fault):
    app = app_of(db)
    state = os.path.join(app, '.swarm', 'verification-memory.json')
    os.symlink('/dev/zero', state)
    started = time.monotonic()
    truth = run_module('truth_info', {'app_dir': app, 'source': 'state_file'})
    result = triage(db)
    assert time.monotonic() - started < NO_HANG_S
    assert truth['status'] == 'error' and 'character device' in truth['reason']
    assert not result.get('failed') and 'truth_score' in result['unknown'], result
    fault.did('not read (it never ends): truth_info status error "%s"; triage truth_score unknown'
              % fault.clip(truth['reason'], 200))


@pytest.mark.fault('resource exhaustion', 'A 4 GiB log (one endless line) and a 1 GiB registry and state file')
def test_huge_log_and_registry(db, fault, tmp_path):
    log = str(tmp_path / 'app.log')
    with open(log, 'wb') as handle:
        handle.truncate(4 * 1024 ** 3)   # sparse: no disk used, 4 GiB to read for a naive tail
        handle.seek(0, os.SEEK_END)
        handle.write(b'\nERROR last line\n')
    app = app_of(db)
    for name in ('quarantine.json', 'verification-memory.json'):
        with open(os.path.join(app, '.swarm', name), 'wb') as handle:
            handle.truncate(1024 ** 3)
    started = time.monotonic()
    result = triage(db, log_path=log)
    seconds = time.monotonic() - started
    assert not result.get('failed'), result
    assert result['details']['log']['bytes_read'] <= 4 * 1024 * 1024
    assert result['details']['log']['counts']['error'] == 1
    assert 'more than the 16777216 bytes' in result['unknown']['quarantined_ratio']
    assert 'more than the 16777216 bytes' in result['unknown']['truth_score']
    assert result['severity'] == 'P3' and [r['metric'] for r in result['reasons']] == ['log_size_bytes']
    fault.did('log: read its last %d bytes of %d, error count 1, P3 log size; registry and state file refused by '
              'size, their metrics unknown; %.1f s' % (result['details']['log']['bytes_read'],
                                                       result['metrics']['log_size_bytes'], seconds))
