# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault matrix, the claude-flow CLI: missing, hanging, printing garbage, the wrong product line,
exit 0 with an error text. The CLI is a real executable each time (the lab's stand-in, which
reproduces the real 2.x/3.x output, or a small script doing exactly the fault); the modules run as
real processes. A CLI fault must give a status with the reason, never a score and never a traceback."""

import json
import os
import shutil
import stat
import subprocess
import sys
import time

import pytest

from conftest import REPO, run_module  # run_module: each real run preceded by its check-mode twin

STANDIN = os.path.join(REPO, 'tests', 'lab', 'standins', 'claude-flow')
sys.path.insert(0, os.path.join(REPO, 'tests', 'lab'))

import lab as labmod  # noqa: E402  (tests/lab is not a package)


@pytest.fixture
def app(tmp_path, fault):
    """A claude-flow 2.x deployment dir: the stand-in CLI and a healthy truth state file."""
    fault.scrub(tmp_path)
    app_dir = tmp_path / 'app'
    (app_dir / '.swarm').mkdir(parents=True)
    (app_dir / 'node_modules' / '.bin').mkdir(parents=True)
    shutil.copy(STANDIN, str(app_dir / 'node_modules' / '.bin' / 'claude-flow'))
    (app_dir / '.swarm' / 'verification-memory.json').write_text(json.dumps(labmod.truth_state(0.97)))
    return str(app_dir)


def script(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, 'w') as handle:
        handle.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def marked_processes(marker):
    """PIDs whose command line carries marker (a fault script's children)."""
    found = []
    for pid in os.listdir('/proc'):
        if pid.isdigit():
            try:
                with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                    if marker.encode() in handle.read():
                        found.append(int(pid))
            except OSError:
                pass
    return found


def assert_no_score(result):
    assert result['_rc'] == 0, result
    assert result['status'] != 'ok' and result.get('overall') is None, result
    assert result['reason'], result


@pytest.mark.fault('CLI', 'claude-flow missing (not installed in the app dir)')
def test_cli_missing(app, fault):
    os.unlink(os.path.join(app, 'node_modules', '.bin', 'claude-flow'))
    result = run_module('truth_info', {'app_dir': app, 'source': 'cli'})
    assert_no_score(result)
    assert 'does not exist' in result['reason'] and 'npm install' in result['reason'], result['reason']
    neural = run_module('neural', {'app_dir': app, 'command': 'status'})
    assert neural['_rc'] in (0, 1) and 'Traceback' not in neural['_out']
    fault.lost(0)
    fault.did('truth_info: status %s, "%s"; never a score' % (result['status'], fault.clip(result['reason'], 200)))


@pytest.mark.fault('CLI', 'claude-flow hangs (2.x `training neural-train` waiting on npx forever, children ignore SIGTERM)')
def test_cli_training_hang_is_killed_without_orphans(app, fault):
    marker = 'faults-hang-%d' % os.getpid()
    started = time.monotonic()
    # the stand-in hangs like the real CLI offline when CLAUDE_FLOW_STANDIN_TRAIN is unset
    result = run_module('neural', {'app_dir': app, 'command': 'train', 'epochs': 5, 'timeout': 3},
                        env={'CLAUDE_FLOW_STANDIN_TRAIN': '', 'FAULTS_MARKER': marker},
                        runtime='the CLI hangs once started (check mode starts nothing)')
    seconds = time.monotonic() - started
    time.sleep(0.5)
    left = [pid for pid in marked_processes('claude-flow') if _environ_has(pid, marker)]
    assert seconds < 30, 'the hard timeout did not hold: %.1f s' % seconds
    assert left == [], 'orphans left: %s' % left
    assert result.get('failed') or result.get('status') not in (None, 'ok'), result
    text = result.get('msg') or result.get('reason')
    assert 'timed out' in text or 'timeout' in text, text
    fault.lost(0)
    fault.did('neural train: "%s" after %.0f s (timeout 3 s); no process of it left' % (fault.clip(text, 200), seconds))


def _environ_has(pid, marker):
    try:
        with open('/proc/%d/environ' % pid, 'rb') as handle:
            return marker.encode() in handle.read()
    except OSError:
        return False


@pytest.mark.fault('CLI', 'claude-flow hangs on `truth --json` (a child that ignores SIGTERM)')
def test_cli_truth_hang_is_killed_without_orphans(app, tmp_path, fault):
    marker = 'faults-truth-hang-%d' % os.getpid()
    exe = script(str(tmp_path), 'claude-flow-hang', (
        '#!%s\nimport signal, subprocess, sys, time\n'
        'if sys.argv[1:2] == ["--version"]:\n    print("v2.7.47"); sys.exit(0)\n'
        'signal.signal(signal.SIGTERM, signal.SIG_IGN)\n'
        'subprocess.Popen([sys.executable, "-c", "import signal, time\\n'
        'signal.signal(signal.SIGTERM, signal.SIG_IGN)\\ntime.sleep(3600)", "%s"])\n'
        'time.sleep(3600)\n') % (sys.executable, marker))
    started = time.monotonic()
    result = run_module('truth_info', {'app_dir': app, 'source': 'cli', 'executable': exe, 'timeout': 2})
    seconds = time.monotonic() - started
    time.sleep(0.3)
    assert marked_processes(marker) == []
    assert_no_score(result)
    assert 'timed out' in result['reason'], result['reason']
    fault.lost(0)
    fault.did('truth_info: status %s, "%s" (%.0f s); the child that ignored SIGTERM is gone too'
              % (result['status'], fault.clip(result['reason'], 160), seconds))


@pytest.mark.fault('CLI', 'claude-flow prints garbage (binary noise for --version)')
def test_cli_prints_garbage(app, tmp_path, fault):
    exe = script(str(tmp_path), 'claude-flow-garbage', '#!/bin/sh\nhead -c 300 /dev/urandom\nexit 0\n')
    result = run_module('truth_info', {'app_dir': app, 'source': 'cli', 'executable': exe})
    assert_no_score(result)
    assert 'not a claude-flow version' in result['reason'], result['reason']
    fault.lost(0)
    fault.did('truth_info: status %s, "... is not a claude-flow version; set executable to the claude-flow binary"'
              % result['status'])


@pytest.mark.fault('CLI', 'claude-flow prints garbage where JSON is expected (`truth --json`)')
def test_cli_prints_garbage_instead_of_json(app, tmp_path, fault):
    exe = script(str(tmp_path), 'claude-flow-notjson', (
        '#!/bin/sh\nif [ "$1" = "--version" ]; then echo v2.7.47; exit 0; fi\n'
        'printf "{\\"mode\\": \\"moderate\\", \\"averageScore\\": 0.9"\nexit 0\n'))
    result = run_module('truth_info', {'app_dir': app, 'source': 'cli', 'executable': exe})
    assert_no_score(result)
    fault.lost(0)
    fault.did('truth_info on cut-off JSON: status %s, "%s"' % (result['status'], fault.clip(result['reason'], 200)))


@pytest.mark.fault('CLI', 'claude-flow 3.x found where 2.x was expected')
def test_cli_wrong_product_line(app, fault):
    result = run_module('truth_info', {'app_dir': app, 'source': 'cli'}, env={'CLAUDE_FLOW_STANDIN_VERSION': '3.43.0'})
    assert_no_score(result)
    assert result['status'] == 'unsupported' and result['cli_version'] == '3.43.0', result
    # the automatic source then reads the 2.x state file the deployment still has, and says so
    auto = run_module('truth_info', {'app_dir': app}, env={'CLAUDE_FLOW_STANDIN_VERSION': '3.43.0'})
    assert auto['_rc'] == 0 and auto['source'] != 'cli', auto
    fault.lost(0)
    fault.did('truth_info source=cli: status unsupported, "%s"; source=auto falls back to %s'
              % (fault.clip(result['reason'], 160), auto['source']))


@pytest.mark.fault('CLI', 'claude-flow exits 0 with an error text (2.x crash in the verification module)')
def test_cli_exit_zero_with_error_text(app, fault):
    # the real 2.x crash: a history entry without a score -> "Error details: TypeError" on stdout, rc 0
    state_path = os.path.join(app, '.swarm', 'verification-memory.json')
    with open(state_path) as handle:
        state = json.load(handle)
    del state['history'][0]['score']
    with open(state_path, 'w') as handle:
        json.dump(state, handle)
    direct = subprocess.run([os.path.join(app, 'node_modules', '.bin', 'claude-flow'), 'truth', '--report'], cwd=app,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert direct.returncode == 0 and 'Error' in direct.stdout + direct.stderr, direct
    result = run_module('neural', {'app_dir': app, 'command': 'status'})
    verify = run_module('truth_info', {'app_dir': app, 'source': 'cli'})
    assert verify['_rc'] == 0, verify
    # `truth --json` says averageScore null here: that is no data, never a score of 0 and never a breach
    assert verify['status'] != 'ok' and verify['overall'] is None and verify['agents_below'] == [], verify
    assert 'Traceback' not in result['_out']
    fault.lost(0)
    fault.did('`truth --report` printed "Error details: TypeError" and exited 0; truth_info: status %s, "%s" '
              '(no score, nothing counted below the threshold)'
              % (verify['status'], fault.clip(verify['reason'], 160)))


@pytest.mark.fault('CLI', 'claude-flow exits 0 with an error text instead of JSON')
def test_cli_exit_zero_error_instead_of_json(app, tmp_path, fault):
    exe = script(str(tmp_path), 'claude-flow-errtext', (
        '#!/bin/sh\nif [ "$1" = "--version" ]; then echo v2.7.47; exit 0; fi\n'
        'echo "Error details: TypeError: Cannot read properties of null (reading \'toFixed\')"\n'
        'echo "\xe2\x9d\x8c Error loading verification module" >&2\nexit 0\n'))
    result = run_module('truth_info', {'app_dir': app, 'source': 'cli', 'executable': exe})
    assert_no_score(result)
    assert 'Error loading verification module' in result['reason'] or 'TypeError' in result['reason']
    fault.lost(0)
    fault.did('truth_info: status %s, "%s"; rc 0 is not taken for success'
              % (result['status'], fault.clip(result['reason'], 200)))
