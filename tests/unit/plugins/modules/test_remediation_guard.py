"""remediation_guard as a real process: lock, waiting, stale locks, cooldown, circuit breaker."""

import json
import os
import signal
import threading
import time

import pytest


NAME = 'remediation_guard'


def guard(module, state_dir, **args):
    args.setdefault('state_dir', str(state_dir))
    return module(NAME, args)


def lock_of(state_dir):
    with open(os.path.join(str(state_dir), 'lock.json')) as handle:
        return json.load(handle)


def alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    with open('/proc/%d/stat' % pid) as handle:
        return handle.read().split()[2] != 'Z'


def test_acquire_release_leaves_no_trace_for_noop(module, tmp_path):
    got = guard(module, tmp_path, state='acquired', incident_id='INC-1')
    assert got['acquired'] is True and not got.get('failed'), got
    keeper = got['lock']['pid']
    assert alive(keeper) and lock_of(tmp_path)['incident_id'] == 'INC-1'
    assert isinstance(got['execution_time_ms'], int)
    done = guard(module, tmp_path, state='released', incident_id='INC-1', outcome='noop')
    assert done['released'] is True and done['changed'] is False
    assert not os.path.exists(os.path.join(str(tmp_path), 'lock.json'))
    assert not os.path.exists(os.path.join(str(tmp_path), 'history.json'))
    deadline = time.time() + 3
    while alive(keeper) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(keeper), 'the keeper outlived its lock'


def test_second_holder_is_refused_then_waits(module, tmp_path):
    guard(module, tmp_path, state='acquired', incident_id='INC-A')
    refused = guard(module, tmp_path, state='acquired', incident_id='INC-B', wait_timeout=0)
    assert refused.get('failed') and 'INC-A' in refused['msg'] and 'another remediation holds' in refused['msg']
    assert refused['held_by']['incident_id'] == 'INC-A'

    def release_later():
        time.sleep(2)
        guard(module, tmp_path, state='released', incident_id='INC-A', outcome='remediated')

    thread = threading.Thread(target=release_later)
    thread.start()
    waited = guard(module, tmp_path, state='acquired', incident_id='INC-B', wait_timeout=30, poll_interval=0.2)
    thread.join()
    assert waited['acquired'] is True, waited
    assert waited['waited_seconds'] >= 1 and waited['waited_for']['incident_id'] == 'INC-A'
    assert 'after waiting' in waited['msg']
    guard(module, tmp_path, state='released', incident_id='INC-B')


def test_stale_lock_of_a_dead_keeper_is_broken(module, tmp_path):
    got = guard(module, tmp_path, state='acquired', incident_id='INC-DEAD')
    os.kill(got['lock']['pid'], signal.SIGKILL)
    time.sleep(0.3)
    taken = guard(module, tmp_path, state='acquired', incident_id='INC-NEW')
    assert taken['acquired'] is True, taken
    assert 'keeper process' in taken['broken_stale'][0]['reason']
    guard(module, tmp_path, state='released', incident_id='INC-NEW')


def test_lock_from_another_boot_or_too_old_is_stale(module, tmp_path):
    other_boot = {'incident_id': 'INC-OLD', 'owner': 'x', 'pid': os.getpid(), 'token': 'python',
                  'boot_id': '00000000-0000-0000-0000-000000000000', 'acquired_epoch': time.time(),
                  'acquired_at': 'now', 'ttl': 3600}
    with open(os.path.join(str(tmp_path), 'lock.json'), 'w') as handle:
        json.dump(other_boot, handle)
    status = guard(module, tmp_path, state='status')
    assert 'rebooted' in status['stale_reason']
    old = dict(other_boot, boot_id=None, acquired_epoch=time.time() - 7200)
    with open(os.path.join(str(tmp_path), 'lock.json'), 'w') as handle:
        json.dump(old, handle)
    status = guard(module, tmp_path, state='status')
    assert 'older than its ttl' in status['stale_reason']
    live = dict(old, acquired_epoch=time.time())
    with open(os.path.join(str(tmp_path), 'lock.json'), 'w') as handle:
        json.dump(live, handle)
    assert guard(module, tmp_path, state='status')['stale_reason'] is None


def test_cooldown_and_circuit_breaker(module, tmp_path):
    for number in range(3):
        guard(module, tmp_path, state='acquired', incident_id='INC-%d' % number)
        guard(module, tmp_path, state='released', incident_id='INC-%d' % number, outcome='remediated',
              actions=['restart'])
    cool = guard(module, tmp_path, state='check', cooldown=300, max_remediations=0)
    assert cool.get('failed') and cool['msg'].startswith('cooldown:') and 'INC-2' in cool['msg']
    breaker = guard(module, tmp_path, state='check', cooldown=0, max_remediations=3, window=3600)
    assert breaker.get('failed') and 'circuit breaker open: 3 remediations' in breaker['msg']
    assert all(i in breaker['msg'] for i in ('INC-0', 'INC-1', 'INC-2'))
    forced = guard(module, tmp_path, state='check', cooldown=0, max_remediations=3, force=True)
    assert not forced.get('failed') and 'forced past' in forced['msg']
    reset = guard(module, tmp_path, state='reset')
    assert reset['changed'] is True
    assert not guard(module, tmp_path, state='check', cooldown=300, max_remediations=3).get('failed')


def test_check_mode_writes_nothing(module, tmp_path):
    result = module(NAME, {'state': 'acquired', 'incident_id': 'INC-C', 'state_dir': str(tmp_path / 'g')},
                    check_mode=True)
    assert result['acquired'] is False and result['would_acquire'] is True
    assert not os.path.exists(str(tmp_path / 'g'))


def test_bad_input_is_named(module, tmp_path):
    result = guard(module, tmp_path, state='acquired')
    assert result.get('failed') and 'incident_id' in result['msg']
    result = guard(module, tmp_path, state='check', ttl=0)
    assert result.get('failed') and 'ttl' in result['msg']
    result = guard(module, tmp_path, state='acquired', incident_id='INC-L', lease=7200, ttl=3600)
    assert result.get('failed') and 'lease (7200 s) must not be longer than ttl' in result['msg']
    result = guard(module, tmp_path, state='renewed')
    assert result.get('failed') and 'incident_id' in result['msg']


def test_same_incident_id_different_runs_do_not_share_the_lock(module, tmp_path):
    # Two alerts in the same second give two runs the same incident id; the run id keeps them apart.
    first = guard(module, tmp_path, state='acquired', incident_id='INC-SAME', run_id='run-1')
    assert first['acquired'] is True and first['lock']['run_id'] == 'run-1'
    second = guard(module, tmp_path, state='acquired', incident_id='INC-SAME', run_id='run-2', wait_timeout=0)
    assert second.get('failed') and 'another remediation holds' in second['msg'], second
    again = guard(module, tmp_path, state='acquired', incident_id='INC-SAME', run_id='run-1')
    assert again['acquired'] is True and 'already held by this run' in again['msg']
    other = guard(module, tmp_path, state='released', incident_id='INC-SAME', run_id='run-2', outcome='failed')
    assert other['released'] is False and 'another run' in other['msg']
    assert lock_of(tmp_path)['run_id'] == 'run-1'
    assert not os.path.exists(os.path.join(str(tmp_path), 'history.json'))
    stolen = guard(module, tmp_path, state='renewed', incident_id='INC-SAME', run_id='run-2')
    assert stolen.get('failed') and 'no longer holds the remediation lock' in stolen['msg'], stolen
    done = guard(module, tmp_path, state='released', incident_id='INC-SAME', run_id='run-1')
    assert done['released'] is True


def test_a_lapsed_lease_makes_the_lock_stale_and_renewal_keeps_it(module, tmp_path):
    # 6 s: room for a slow module start on a loaded machine between two renewals
    got = guard(module, tmp_path, state='acquired', incident_id='INC-K', run_id='k', lease=6)
    keeper = got['lock']['pid']
    acquired = time.time()
    for _round in range(4):   # renewing every ~2 s keeps the lock past its 6 s lease
        time.sleep(2)
        renewed = guard(module, tmp_path, state='renewed', incident_id='INC-K', run_id='k')
        assert renewed['renewed'] is True, renewed
    assert time.time() - acquired > 6, 'the renewals did not outlast one lease'
    assert guard(module, tmp_path, state='status')['stale_reason'] is None
    assert alive(keeper)
    # The run is "killed": no more renewals. One lease later the lock is stale and the keeper gone.
    deadline = time.time() + 15
    while alive(keeper) and time.time() < deadline:
        time.sleep(0.2)
    assert not alive(keeper), 'the keeper outlived the lapsed lease'
    status = guard(module, tmp_path, state='status')
    assert 'not renewed for' in status['stale_reason'] and 'lease of 6 s' in status['stale_reason'], status
    taken = guard(module, tmp_path, state='acquired', incident_id='INC-NEXT', run_id='n')
    assert taken['acquired'] is True and len(taken['broken_stale']) == 1, taken
    late = guard(module, tmp_path, state='renewed', incident_id='INC-K', run_id='k')
    assert late.get('failed') and 'INC-NEXT' in late['msg'], late
    guard(module, tmp_path, state='released', incident_id='INC-NEXT', run_id='n')


def test_renew_in_check_mode_changes_nothing(module, tmp_path):
    result = module(NAME, {'state': 'renewed', 'incident_id': 'INC-C', 'run_id': 'c', 'state_dir': str(tmp_path)},
                    check_mode=True)
    assert not result.get('failed') and result['renewed'] is False and 'would renew' in result['msg']
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize('args, words', [
    ({'poll_interval': float('inf')}, 'poll_interval must be between 0.05 and 60 seconds'),
    ({'poll_interval': float('nan')}, 'poll_interval must be between 0.05 and 60 seconds'),
    ({'ttl': 0}, 'ttl must be between 1 and 604800 seconds'),
    ({'ttl': 10 ** 12}, 'ttl must be between 1 and 604800 seconds'),
    ({'wait_timeout': 10 ** 9}, 'wait_timeout must be between 0 and 86400 seconds'),
    ({'cooldown': -1}, 'cooldown must be between 0 and 2592000 seconds'),
    ({'window': 0}, 'window must be between 1 and 31536000 seconds'),
    ({'max_remediations': 10 ** 6}, 'max_remediations must be between 0 and 1000'),
])
def test_out_of_range_options_name_the_range(module, tmp_path, args, words):
    result = guard(module, tmp_path, state='acquired', incident_id='INC-1', **args)
    assert result['failed'] and words in result['msg'], result
    assert not os.path.exists(os.path.join(str(tmp_path), 'lock.json'))


def test_fifo_history_is_refused_without_blocking(module, tmp_path):
    os.mkfifo(os.path.join(str(tmp_path), 'history.json'))
    result = module(NAME, {'state_dir': str(tmp_path), 'state': 'check'}, timeout=20)
    assert result['failed'] and 'FIFO' in result['msg']
