# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""safe_read: special files are refused without blocking, reads are capped, ranges are named."""

import json
import os
import socket
import threading

import pytest

from ansible_collections.claude_flow.runbook.plugins.module_utils import safe_read


def in_thread(call, seconds=5):
    """Run call in a thread; fail the test (instead of hanging it) when it blocks."""
    box = {}

    def target():
        try:
            box['value'] = call()
        except Exception as exc:  # the assertion below looks at it
            box['error'] = exc
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), 'the read blocked'
    return box


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = str(tmp_path / 'state.json')
    os.mkfifo(fifo)
    box = in_thread(lambda: safe_read.read_json_capped(fifo, what='state file'))
    assert isinstance(box.get('error'), safe_read.UnsafeFileError)
    assert 'FIFO' in str(box['error']) and fifo in str(box['error'])


def test_devices_sockets_and_directories_are_refused(tmp_path):
    sock_path = str(tmp_path / 'sock')
    server = socket.socket(socket.AF_UNIX)
    server.bind(sock_path)
    try:
        for path, kind in (('/dev/zero', 'character device'), (sock_path, 'socket'), (str(tmp_path), 'directory')):
            box = in_thread(lambda: safe_read.read_capped(path, 1024))
            assert isinstance(box.get('error'), safe_read.UnsafeFileError) and kind in str(box['error'])
    finally:
        server.close()


def test_symlink_to_a_device_is_refused(tmp_path):
    link = str(tmp_path / 'log')
    os.symlink('/dev/zero', link)
    with pytest.raises(safe_read.UnsafeFileError, match='character device'):
        safe_read.tail_lines(link, 10)


def test_oversized_file_is_refused_by_size(tmp_path):
    path = str(tmp_path / 'big.json')
    with open(path, 'wb') as handle:
        handle.truncate(2048)
    with pytest.raises(safe_read.UnsafeFileError, match='2048 bytes, more than the 1024'):
        safe_read.read_capped(path, 1024)


def test_json_missing_broken_and_non_utf8(tmp_path):
    assert safe_read.read_json_capped(str(tmp_path / 'none'), default={'a': 1}) == {'a': 1}
    path = str(tmp_path / 'x.json')
    with open(path, 'wb') as handle:
        handle.write(b'{"history": ["\xff\xfe"]}')
    with pytest.raises(ValueError, match='not valid JSON'):
        safe_read.read_json_capped(path)
    with open(path, 'w') as handle:
        json.dump({'history': []}, handle)
    assert safe_read.read_json_capped(path) == {'history': []}


def test_tail_reads_only_the_capped_tail(tmp_path):
    path = str(tmp_path / 'app.log')
    with open(path, 'wb') as handle:
        handle.write(b'x' * (3 * 1024 * 1024))            # one 3 MiB line without a newline
        handle.write(b'\n' + b'ok\n' * 10 + b'ERROR \xff\xfe bad bytes\n')
    lines, size, read = safe_read.tail_lines(path, 5, limit=64 * 1024)
    assert size == os.path.getsize(path) and read == 64 * 1024
    assert lines == ['ok'] * 4 + [u'ERROR \ufffd\ufffd bad bytes']


@pytest.mark.parametrize('value', [0, -1, 11, float('inf'), float('nan'), 10 ** 400, True, 'x'])
def test_check_range_names_the_range(value):
    with pytest.raises(safe_read.RangeError, match='log_lines must be between 1 and 10 lines'):
        safe_read.check_range('log_lines', value, 1, 10, 'lines')


def test_check_range_passes_values_inside():
    assert safe_read.check_range('x', 1, 1, 10) == 1 and safe_read.check_range('x', 10.0, 1, 10) == 10.0
    assert safe_read.check_range('x', None, 1, 10) is None
