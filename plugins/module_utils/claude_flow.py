# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place that knows the claude-flow CLI: where it is, which product line it is, how to run
it without hanging, and how to read what it prints.

Facts this code is built on (checked against claude-flow 2.0.0-alpha.88 ... 2.7.47 and 3.0 ... 3.43.0):
  * Bare `npx claude-flow` and the `./claude-flow` wrapper fall through to `npx claude-flow@latest`
    (3.x) when no local install is found, and `npx` hung for 60 s offline. Only the local
    `<app_dir>/node_modules/.bin/claude-flow`, run with cwd=<app_dir>, is called.
  * `--version` prints `v2.7.47` (2.x; alpha releases add a banner after the first line) or
    `ruflo v3.43.0` (3.x).
  * Exit codes lie: 2.x `truth`/`verify` exit 0 on internal errors; `training neural-train` exits 0
    when ruv-swarm is missing. Success is decided by parsing the output and by known failure texts.
  * 2.x `training neural-train` starts `npx ruv-swarm --version`, which can never exit, and its
    children survived SIGTERM: every call runs in its own process group with a hard timeout, and on
    timeout the whole group is killed (SIGTERM, short grace, SIGKILL) and checked to be gone.
  * 3.x starts a detached daemon unless RUFLO_DAEMON_AUTOSTART=0, and paints colours and spinners
    on stdout even when piped: NO_COLOR=1 is set and ANSI escapes are stripped.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import signal
import subprocess
import time

from ansible_collections.claude_flow.runbook.plugins.module_utils.safe_read import (
    SMALL_FILE_MAX_BYTES, RangeError, UnsafeFileError, check_range, read_json_capped)

DEFAULT_APP_DIR = '/opt/claude-code-production'
LOCAL_EXECUTABLE = os.path.join('node_modules', '.bin', 'claude-flow')
PACKAGE_JSON = os.path.join('node_modules', 'claude-flow', 'package.json')
DEFAULT_TIMEOUT = 30
TRAIN_TIMEOUT = 600
VERSION_TIMEOUT = 30
# After SIGTERM, how long the group gets to exit before SIGKILL.
TERM_GRACE_SECONDS = 2.0
# After SIGKILL, how long to wait for the kernel to take the group down.
KILL_WAIT_SECONDS = 5.0
# After the CLI itself exited, how long a child of it may keep the output pipes open before the
# group is treated as leftover and killed (the 2.x ruv-swarm child does exactly that).
LINGER_SECONDS = 2.0

VERSION_RE = re.compile(r'^(ruflo )?v?(\d+\.\d+\.\d+\S*)')
# CSI sequences (colours, cursor moves of spinners), OSC sequences, and two-byte escapes.
ANSI_RE = re.compile(r'\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])')

# Texts that mean the command failed, whatever its exit code says.
FAILURE_MARKERS = (
    u'\u274c Error loading verification module',   # 2.x truth/verify crashed part-way
    u'Error details:',                              # 2.x stack trace of that crash (stdout)
    u'Unknown neural subcommand',                   # 2.x has no neural status/patterns/train
    u'[ERROR] Unknown command',                     # 3.x has no truth/training
    u'\u274c ruv-swarm is not available',           # 2.x training: neural backend missing
)

NPX_REASON = (
    "executable %r runs npx; bare `npx claude-flow` falls through to `npx claude-flow@latest` (the 3.x "
    "product line, with different commands) when no local install is found, and hung for 60 s offline. "
    "Point executable at the local install, <app_dir>/node_modules/.bin/claude-flow (the default), "
    "or install claude-flow into app_dir with npm")

# The command lines, per product line. Nothing outside this file spells a claude-flow command.
TRUTH_JSON_ARGS = ['truth', '--json']
VERIFY_STATUS_ARGS = ['verify', 'status']
NEURAL_STATUS_ARGS = ['neural', 'status']
NEURAL_PATTERNS_ARGS = ['neural', 'patterns']


class ClaudeFlowError(Exception):
    """The CLI cannot be used as asked; the message names the problem and the fix."""


def reject_npx(executable):
    """Raise ClaudeFlowError when an executable option would run npx."""
    if executable is None:
        return
    text = str(executable).strip()
    first = text.split()[0] if text.split() else ''
    if text.startswith('npx') or os.path.basename(first) == 'npx':
        raise ClaudeFlowError(NPX_REASON % executable)


def resolve_executable(app_dir, executable=None):
    """Absolute path of the claude-flow executable to run; raises ClaudeFlowError when unusable."""
    reject_npx(executable)
    if executable:
        path = executable if os.path.isabs(executable) else os.path.join(app_dir, executable)
    else:
        path = os.path.join(app_dir, LOCAL_EXECUTABLE)
    if not os.path.exists(path):
        raise ClaudeFlowError(
            'claude-flow executable %s does not exist; install claude-flow in %s (npm install claude-flow@<version> '
            'there) or set executable to the installed binary (never npx)' % (path, app_dir))
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        raise ClaudeFlowError('%s is not an executable file; set executable to the claude-flow binary '
                              '(normally <app_dir>/node_modules/.bin/claude-flow)' % path)
    return path


def check_app_dir(app_dir):
    if not os.path.isdir(app_dir):
        raise ClaudeFlowError('app_dir %s is not a directory; set app_dir to the claude-flow deployment '
                              '(the directory that holds node_modules/ and .swarm/)' % app_dir)


def cli_env(extra=None):
    """The environment every call gets: no colours, no daemon autostart (3.x)."""
    env = dict(os.environ)
    env.pop('FORCE_COLOR', None)  # chalk lets FORCE_COLOR override NO_COLOR
    env['NO_COLOR'] = '1'
    env['RUFLO_DAEMON_AUTOSTART'] = '0'
    env.update(extra or {})
    return env


def strip_ansi(text):
    return ANSI_RE.sub('', text or '')


def _decode(data):
    if data is None:
        return ''
    if isinstance(data, bytes):
        return data.decode('utf-8', 'replace')
    return data


# ---------------------------------------------------------------- processes and their groups

def group_members(pgid):
    """Live (non-zombie) pids whose process group is pgid, from /proc; None where there is no /proc."""
    try:
        entries = os.listdir('/proc')
    except OSError:
        return None
    members = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join('/proc', entry, 'stat'), 'rb') as handle:
                stat = handle.read().decode('utf-8', 'replace')
        except (IOError, OSError):
            continue  # exited while we looked
        # Fields after the command name (which may contain spaces and parentheses): state ppid pgrp ...
        fields = stat[stat.rfind(')') + 2:].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != 'Z':
            members.append(int(entry))
    return sorted(members)


def _group_gone(proc, pgid):
    proc.poll()  # reap our own child, or it stays a zombie member of the group
    members = group_members(pgid)
    if members is not None:
        return not members
    try:
        os.killpg(pgid, 0)
    except OSError:
        return True
    return False


def _wait_group_gone(proc, pgid, seconds):
    deadline = time.monotonic() + seconds
    while not _group_gone(proc, pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _signal_group(pgid, signum):
    try:
        os.killpg(pgid, signum)
    except OSError:
        pass  # the group is already gone


def kill_group(proc, pgid, grace=TERM_GRACE_SECONDS):
    """SIGTERM the group, wait `grace`, SIGKILL what is left, reap. Returns the number of survivors
    (0 when the group is gone) or None when this system cannot list processes."""
    _signal_group(pgid, signal.SIGTERM)
    if not _wait_group_gone(proc, pgid, grace):
        _signal_group(pgid, signal.SIGKILL)
        _wait_group_gone(proc, pgid, KILL_WAIT_SECONDS)
    members = group_members(pgid)
    return None if members is None else len(members)


def run_command(executable, args, app_dir, timeout, extra_env=None):
    """Run `executable args...` in app_dir, in a new process group, for at most `timeout` seconds.

    Does not raise for what the command does; returns a dict:
      command (list), rc, stdout, stderr (ANSI stripped), timed_out, duration_ms, failures (lines
      with known failure texts), pgid, processes_killed (processes of the group still running when we
      stopped waiting, on timeout or after the command exited, all killed by us), orphans (processes
      of the group alive after the kill: 0 is the goal; None when this system cannot list processes).
    Raises ClaudeFlowError only when the executable cannot be started at all.
    """
    command = [executable] + [str(arg) for arg in args]
    started = time.monotonic()
    try:
        # run_command cannot start a new session nor kill a whole process group on timeout, and the 2.x CLI
        # leaves children that ignore SIGTERM: hence Popen here.
        proc = subprocess.Popen(command, cwd=app_dir, env=cli_env(extra_env), stdin=subprocess.DEVNULL,  # pylint: disable=ansible-bad-function
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
                                start_new_session=True)
    except OSError as exc:
        raise ClaudeFlowError('cannot start %s: %s; check that it is an executable claude-flow binary and that '
                              'node is installed' % (executable, exc))
    pgid = proc.pid  # start_new_session makes the child the leader of a new session and process group
    deadline = started + timeout
    exited_at = None
    finished = False
    timed_out = False
    stdout = stderr = b''
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = proc.poll() is None
            break
        try:
            stdout, stderr = proc.communicate(timeout=min(remaining, 0.25))
            finished = True
            break
        except subprocess.TimeoutExpired:
            if proc.poll() is not None:
                # The CLI exited but something it started still holds stdout/stderr open.
                exited_at = exited_at or time.monotonic()
                if time.monotonic() - exited_at >= LINGER_SECONDS:
                    break
    members = group_members(pgid)
    leftovers = members or []
    orphans = None if members is None else 0
    if not finished or leftovers:
        orphans = kill_group(proc, pgid)
        if not finished:
            stdout, stderr = _drain(proc)
    out_text = strip_ansi(_decode(stdout))
    err_text = strip_ansi(_decode(stderr))
    return {
        'command': command,
        'rc': proc.returncode,
        'stdout': out_text,
        'stderr': err_text,
        'timed_out': timed_out,
        'timeout': timeout,
        'duration_ms': int(round((time.monotonic() - started) * 1000)),
        'failures': find_failures(out_text, err_text),
        'pgid': pgid,
        'processes_killed': len(leftovers),
        'orphans': orphans,
    }


def _drain(proc):
    """Collect what is left in the pipes after the group was killed; never block for long."""
    try:
        return proc.communicate(timeout=KILL_WAIT_SECONDS)
    except subprocess.TimeoutExpired as exc:
        # A process outside the group (it called setsid) still holds a pipe: give up on the rest.
        partial = (exc.output or b'', exc.stderr or b'')
        for pipe in (proc.stdout, proc.stderr):
            try:
                pipe.close()
            except (IOError, OSError):
                pass
        proc.wait()
        return partial


def find_failures(*texts):
    """Lines carrying a known failure text, in order of appearance."""
    found = []
    for text in texts:
        for line in (text or '').splitlines():
            if any(marker in line for marker in FAILURE_MARKERS):
                found.append(line.strip())
    return found


def describe_failure(result, what):
    """One sentence for a result that did not succeed: timeout, failure text, or exit code."""
    name = 'claude-flow %s' % ' '.join(result['command'][1:])
    if result['timed_out']:
        return ('%s timed out after %s s; process group killed (orphans: %s)'
                % (name, _seconds(result['timeout']), result['orphans']))
    if result['failures']:
        return '%s failed (%s): %s' % (name, what, ' / '.join(result['failures']))
    if result['rc'] != 0:
        first = first_line(result['stderr']) or first_line(result['stdout'])
        return '%s exited with rc %s (%s): %s' % (name, result['rc'], what, first)
    return None


def _seconds(value):
    return int(value) if float(value).is_integer() else value


def first_line(text):
    for line in (text or '').splitlines():
        if line.strip():
            return line.strip()
    return ''


# ---------------------------------------------------------------- the CLI as an object

class ClaudeFlow(object):
    """A claude-flow install: its executable, its app dir, its product line."""

    def __init__(self, app_dir=DEFAULT_APP_DIR, executable=None, timeout=DEFAULT_TIMEOUT, extra_env=None):
        check_app_dir(app_dir)
        self.app_dir = app_dir
        self.executable = resolve_executable(app_dir, executable)
        self.timeout = timeout
        self.extra_env = extra_env
        self.uses_local_install = not executable
        self._version = None

    def run(self, args, timeout=None):
        return run_command(self.executable, args, self.app_dir, timeout or self.timeout, self.extra_env)

    def version(self):
        """{'version', 'major', 'product', 'line', 'source'}; cached. Raises ClaudeFlowError.

        From the local install's package.json when the executable is that install (no node start-up),
        else from `--version`."""
        if self._version is None and self.uses_local_install:
            self._version = installed_version(self.app_dir)
        if self._version is None:
            result = self.run(['--version'], timeout=min(self.timeout, VERSION_TIMEOUT))
            problem = describe_failure(result, 'version check')
            if problem and not result['stdout'].strip():
                raise ClaudeFlowError(problem)
            info = parse_version(result['stdout'])
            if info is None:
                raise ClaudeFlowError('%s --version printed %r, which is not a claude-flow version; set executable '
                                      'to the claude-flow binary' % (self.executable, first_line(result['stdout'])))
            check_product_line(info)
            info['source'] = '--version'
            self._version = info
        return self._version


def check_product_line(info):
    if info['major'] not in (2, 3):
        raise ClaudeFlowError('claude-flow %s is neither a 2.x nor a 3.x release; only those product lines '
                              'are known to this collection' % info['version'])


def installed_version(app_dir):
    """The version of <app_dir>/node_modules/claude-flow from its package.json (size-capped, regular file
    only), without starting node (saves ~0.3 s per call); None when there is no usable package.json.
    Raises ClaudeFlowError for a release that is neither 2.x nor 3.x."""
    path = os.path.join(app_dir, PACKAGE_JSON)
    try:
        data = read_json_capped(path, SMALL_FILE_MAX_BYTES, what='package.json')
    except (ValueError, UnsafeFileError, IOError, OSError):
        return None
    raw = data.get('version') if isinstance(data, dict) else None
    info = parse_version(raw) if isinstance(raw, str) else None
    if info is None:
        return None
    check_product_line(info)
    info.update(product='ruflo' if info['major'] >= 3 else 'claude-flow', line='%s (%s)' % (raw, path),
                source='package.json')
    return info


def writes_on_every_call(version):
    """True for 2.x: every call but `--version` rewrites files under <app_dir>/.claude-flow/metrics/, so no
    call of it is read-only and none may run in check mode."""
    return version['major'] == 2


# ---------------------------------------------------------------- parsers

def parse_version(text):
    """First non-empty line of `--version` output -> {'version', 'major', 'product', 'line'} or None."""
    line = first_line(strip_ansi(text))
    match = VERSION_RE.match(line)
    if not match:
        return None
    version = match.group(2)
    return {'version': version, 'major': int(version.split('.')[0]),
            'product': 'ruflo' if match.group(1) else 'claude-flow', 'line': line}


def parse_json_object(text):
    """The JSON object between the first `{` and the last `}` (banners and spinners around it are
    ignored), or None."""
    text = strip_ansi(text)
    start = text.find('{')
    end = text.rfind('}')
    if start < 0 or end < start:
        return None
    try:
        value = json.loads(text[start:end + 1])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def parse_truth_json(text):
    """`truth --json` (2.x) -> its dict, or None when the output is not that JSON (plain text is printed
    instead for --agent/--threshold, and on crashes)."""
    data = parse_json_object(text)
    if data is None or not ('totalVerifications' in data or 'averageScore' in data):
        return None
    return data


# `   ✅ t1 (coder): 0.97` (verify status) and `   ✅ [5:02:11 AM] task-101 (coder): 0.950` (truth --report)
_VERIFICATION_LINE = re.compile(
    u'^\\s*(\u2705|\u274c)\\s+(?:\\[[^\\]]*\\]\\s+)?(\\S+)\\s+\\(([^)]*)\\):\\s*(\\S+)\\s*$')


def parse_verify_status(text):
    """2.x `verify status` text -> {'mode', 'verifications', 'recent': [{task_id, agent, score, passed}]}."""
    result = {'mode': None, 'verifications': None, 'recent': []}
    for line in strip_ansi(text).splitlines():
        stripped = line.strip()
        if stripped.startswith('Mode:'):
            result['mode'] = stripped.split(':', 1)[1].strip()
        elif stripped.startswith('Verifications:'):
            result['verifications'] = to_int(stripped.split(':', 1)[1])
        else:
            match = _VERIFICATION_LINE.match(line)
            if match:
                result['recent'].append({'task_id': match.group(2), 'agent': match.group(3),
                                         'score': to_float(match.group(4)), 'passed': match.group(1) == u'\u2705'})
    return result


def _header_key(text):
    return re.sub(r'[^a-z0-9]+', '_', text.strip().lower()).strip('_')


def parse_tables(text):
    """Every box-drawn table (`| a | b |` rows between `+---+` borders) in the text.

    Returns [{'headers': [original header texts], 'keys': [snake_case keys], 'rows': [{key: cell}]}].
    A cell that itself contains ` | ` (3.x prints `SonaCoordinator | 0 trajectories`) gives a row with
    more cells than headers: the extra cells are joined back into the last column.
    """
    tables = []
    current = None
    for raw in strip_ansi(text).splitlines():
        line = raw.strip()
        if len(line) > 1 and line.startswith('|') and line.endswith('|'):
            cells = [cell.strip() for cell in line[1:-1].split('|')]
            if all(cell and set(cell) <= set('-:=') for cell in cells):
                continue  # markdown separator row
            if current is None:
                current = {'headers': cells, 'keys': [_header_key(cell) for cell in cells], 'rows': []}
                tables.append(current)
                continue
            width = len(current['keys'])
            if len(cells) > width:
                cells = cells[:width - 1] + [' | '.join(cells[width - 1:])]
            cells += [''] * (width - len(cells))
            current['rows'].append(dict(zip(current['keys'], cells)))
        elif line and set(line) <= set('+-='):
            continue  # border line: the table goes on
        else:
            current = None
    return tables


def table_by_first_column(table):
    """{first cell: {other key: cell}} for one parsed table."""
    first = table['keys'][0]
    return dict((row[first], dict((k, v) for k, v in row.items() if k != first)) for row in table['rows'])


def to_float(text):
    try:
        return float(str(text).strip())
    except (TypeError, ValueError):
        return None


def to_int(text):
    try:
        return int(str(text).strip().split()[0])
    except (TypeError, ValueError, IndexError):
        return None


def percent_to_ratio(text):
    """'100.0%' -> 1.0; '0.85' -> 0.85; anything else -> None."""
    raw = str(text or '').strip()
    if raw.endswith('%'):
        value = to_float(raw[:-1])
        return None if value is None else value / 100.0
    return to_float(raw)


# ---------------------------------------------------------------- neural (per product line)

def neural_train_args(major, data=None, epochs=50):
    """2.x: `training neural-train --data D --epochs N`; 3.x: `neural train --epochs N` (no --data)."""
    if major == 2:
        return ['training', 'neural-train', '--data', data or 'recent', '--epochs', str(int(epochs))]
    return ['neural', 'train', '--epochs', str(int(epochs))]


def neural_unsupported_reason(command, version):
    """Why a neural command cannot run on this release, or None when it can."""
    if command in ('status', 'patterns') and version['major'] == 2:
        return ('claude-flow %s has no `neural %s` (2.x `neural` knows only `init` and answers '
                '`Unknown neural subcommand: %s`, rc 1); upgrade to 3.x for neural status/patterns'
                % (version['version'], command, command))
    return None


def parse_neural_status(text):
    """3.x `neural status` -> {'components': {name: {'status', 'details'}}, 'summary': {status: count}}.

    The `Embedding Model` row can read `Loaded` offline: it is reported, not judged."""
    components = {}
    for table in parse_tables(text):
        if table['keys'][:2] == ['component', 'status']:
            components = table_by_first_column(table)
            break
    summary = {}
    for item in components.values():
        summary[item.get('status', '')] = summary.get(item.get('status', ''), 0) + 1
    return {'components': components, 'summary': summary}


_PATTERN_TOTAL = re.compile(r'Total:\s*(\d+)\s+patterns?(?:\s*\(([^)]*)\))?(?:.*?Trajectories:\s*(\d+))?')


def parse_neural_patterns(text):
    """3.x `neural patterns` -> {'patterns': [{id, type, confidence 0..1, usage}], 'total_patterns',
    'trajectories', 'storage'}. Pattern ids repeat in real output, so patterns stay a list."""
    patterns = []
    for table in parse_tables(text):
        if 'id' in table['keys'] and 'confidence' in table['keys']:
            for row in table['rows']:
                item = dict(row)
                item['confidence'] = percent_to_ratio(row.get('confidence'))
                if 'usage' in row:
                    item['usage'] = to_int(row['usage'])
                patterns.append(item)
            break
    total = trajectories = storage = None
    for line in strip_ansi(text).splitlines():
        match = _PATTERN_TOTAL.search(line)
        if match:
            total = int(match.group(1))
            storage = match.group(2)
            trajectories = int(match.group(3)) if match.group(3) else None
    return {'patterns': patterns, 'total_patterns': total if total is not None else len(patterns),
            'trajectories': trajectories, 'storage': storage}


def parse_train_output(text):
    """Metrics of a training run: the `| Metric | Value |` table (3.x) as a dict, plus `Key: value`
    lines (2.x). Values are text as printed; 2.x accuracy figures may be synthesised by the CLI."""
    metrics = {}
    for table in parse_tables(text):
        if len(table['keys']) >= 2:
            key, value = table['keys'][0], table['keys'][1]
            for row in table['rows']:
                metrics[row[key]] = row[value]
    if not metrics:
        for line in strip_ansi(text).splitlines():
            match = re.match(r'^\s*[^\w\s]*\s*([A-Za-z][\w ./-]{0,40}?):\s+(\S.*?)\s*$', line)
            if match:
                metrics[match.group(1).strip()] = match.group(2)
    return metrics


# ---------------------------------------------------------------- options shared by the modules

def common_argument_spec(**options):
    """Options documented in the claude_flow doc fragment, plus options."""
    spec = dict(
        app_dir=dict(type='path', default=DEFAULT_APP_DIR),
        executable=dict(type='path'),
        timeout=dict(type='int'),
    )
    spec.update(options)
    return spec


TIMEOUT_MAX = 86400  # a day: longer is a typo, and the hard timeout is what keeps a hung CLI from living on


def check_timeout(timeout):
    try:
        check_range('timeout', timeout, 1, TIMEOUT_MAX, 'seconds')
    except RangeError as exc:
        raise ClaudeFlowError(str(exc))
