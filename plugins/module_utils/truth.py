# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Truth (verification) scores from the three places they can live, in one shape.

  cli         claude-flow 2.x `truth --json` (it reads .swarm/verification-memory.json itself):
              overall = averageScore, agents = agentReliability (a dict keyed by agent type).
  state_file  .swarm/verification-memory.json read directly: per-task history, so a time window
              and per-agent verification counts are possible.
  db          a `verification_history` table in memory.db (the runbook's schema; no claude-flow
              release has it).

Rules: scores are 0..1 (a source in percent is divided by 100); no data is `no_data` with overall
None, never 0 (claude-flow prints averageScore 0 for no data, a missing file and a corrupted file);
an agent without a score is not below any threshold.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import math
import os
import re
import time

from ansible_collections.claude_flow.runbook.plugins.module_utils import claude_flow
from ansible_collections.claude_flow.runbook.plugins.module_utils.memory_db import (
    TEXT_UTC, MemoryDbError, epoch_expr, open_for_reading, quote_ident, to_iso)
from ansible_collections.claude_flow.runbook.plugins.module_utils.safe_read import (
    STATE_FILE_MAX_BYTES, UnsafeFileError, read_json_capped)
from ansible_collections.claude_flow.runbook.plugins.module_utils.severity import THRESHOLDS

OK = 'ok'
NO_DATA = 'no_data'
UNSUPPORTED = 'unsupported'
ERROR = 'error'

STATE_FILE = os.path.join('.swarm', 'verification-memory.json')
DB_FILE = os.path.join('.swarm', 'memory.db')
# An agent below the runbook's P1 truth level is degraded (the severity table is the one place it lives).
DEFAULT_THRESHOLD = THRESHOLDS['truth_score']['levels']['P1']
HISTORY_LIMIT = 50
# verification_status values counted as passed in a verification_history table.
PASSED_STATUSES = ('passed', 'pass', 'success', 'succeeded', 'verified', 'ok', 'true', '1')

CHECK_MODE_CLI = ('check mode: claude-flow %s rewrites files under <app_dir>/.claude-flow/metrics/ on every call '
                  '(--version aside), so `truth --json` is not run in check mode')

NO_DATA_CLI = ('claude-flow reports 0 verifications; it prints the same for no state file, an empty one and '
               'a corrupted one, so this is no data, not a score of zero')


class TruthError(Exception):
    """Bad input to a truth query (an option value), stated with its fix."""


class ScoreRangeError(Exception):
    """Scores a source holds are neither ratios nor percentages."""


def result(source, status=OK, reason=None):
    return {'source': source, 'status': status, 'reason': reason, 'overall': None, 'agents': [],
            'agents_below': [], 'total_verifications': None, 'passed_verifications': None, 'history': [],
            'cli_version': None, 'cli_command': None}


def score_scale(values):
    """1 for 0..1 scores, 100 for percentages; TruthError for anything else."""
    present = [v for v in values if v is not None]
    if not present:
        return 1
    if min(present) < 0 or max(present) > 100:
        raise ScoreRangeError('scores outside 0..1 and 0..100 (%s .. %s): the source is not a truth score'
                              % (min(present), max(present)))
    return 100 if max(present) > 1 else 1


def as_score(value):
    """A stored score as float, or None for null/missing/non-numeric/NaN."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def mean(values):
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def parse_iso(text):
    """'2026-11-28T05:02:11.417Z' (or with a space, or without fraction/zone) -> epoch seconds; None."""
    if not isinstance(text, str):
        return None
    match = re.match(r'^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$', text.strip())
    if not match:
        return None
    parts = [int(match.group(i)) for i in range(1, 7)]
    seconds = calendar.timegm(tuple(parts) + (0, 0, 0)) + float(match.group(7) or 0)
    zone = match.group(8)
    if zone and zone != 'Z':
        sign = 1 if zone[0] == '+' else -1
        digits = zone[1:].replace(':', '')
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return seconds


def finish(res, threshold):
    """Sort agents, mark those below the threshold (the runbook's `select(.score < 0.90)`)."""
    res['agents'] = sorted(res['agents'], key=lambda a: a['agent'])
    below = [a for a in res['agents'] if a['score'] is not None and a['score'] < threshold]
    res['agents_below'] = sorted(below, key=lambda a: (a['score'], a['agent']))
    res['threshold'] = threshold
    return res


# ---------------------------------------------------------------- cli (2.x truth --json)

def from_cli(cli, state_path=None):
    """`truth --json` on a 2.x install. cli is a claude_flow.ClaudeFlow."""
    version = cli.version()
    res = result('cli')
    res['cli_version'] = version['version']
    if version['major'] != 2:
        res.update(status=UNSUPPORTED, reason='claude-flow %s has no truth command (`truth` answers '
                   '`[ERROR] Unknown command: truth`); use source state_file or db' % version['version'])
        return res
    run = cli.run(claude_flow.TRUTH_JSON_ARGS)
    res['cli_command'] = run['command']
    problem = claude_flow.describe_failure(run, 'truth scores')
    data = claude_flow.parse_truth_json(run['stdout'])
    if run['timed_out'] or run['failures'] or data is None:
        # Plain text instead of JSON happens for --agent/--threshold and on crashes, with rc 0.
        printed = claude_flow.first_line(run['stdout']) or claude_flow.first_line(run['stderr'])
        res.update(status=ERROR, reason=problem or 'claude-flow truth --json printed no truth JSON (rc %s): %s'
                   % (run['rc'], printed))
        return res
    total = data.get('totalVerifications')
    res['total_verifications'] = total if isinstance(total, int) else None
    passed = data.get('passedVerifications')
    res['passed_verifications'] = passed if isinstance(passed, int) else None
    if not total:
        res.update(status=NO_DATA, reason=NO_DATA_CLI + state_file_hint(state_path))
        return res
    reliability = data.get('agentReliability') or {}
    if not isinstance(reliability, dict):
        reliability = {}
    average = as_score(data.get('averageScore'))
    scores = dict((str(agent), as_score(score)) for agent, score in reliability.items())
    scale = score_scale([average] + list(scores.values()))
    res['agents'] = [{'agent': agent, 'score': None if score is None else score / scale, 'verifications': None}
                     for agent, score in scores.items()]
    if average is None:
        res.update(status=NO_DATA, reason='claude-flow reports averageScore null: a verification entry has no '
                   'score, so no overall score exists (agents with a score are still listed)')
        return res
    res['overall'] = average / scale
    return res


def state_file_hint(path):
    """What the state file looks like, to tell the three causes of `0 verifications` apart."""
    if not path:
        return ''
    if not os.path.exists(path):
        return '; %s does not exist (no verification has been recorded)' % path
    try:
        data = read_state(path)
    except UnsafeFileError as exc:
        return '; %s' % exc
    except (ValueError, IOError, OSError) as exc:
        return '; %s is corrupted: %s' % (path, exc)
    if not isinstance(data, dict) or not isinstance(data.get('history'), list):
        return '; %s has no history list (corrupted)' % path
    if not data['history']:
        return '; %s has an empty history' % path
    return ''


# ---------------------------------------------------------------- state file

def read_state(path):
    """The state file's JSON: regular files only, at most STATE_FILE_MAX_BYTES (never a FIFO, never /dev/zero).
    Bytes that are not UTF-8 become U+FFFD, as in the CLI (node's readFile), so both read the same history."""
    return read_json_capped(path, STATE_FILE_MAX_BYTES, what='state file', errors='replace')


def from_state_file(path, window=None, now=None):
    """Read .swarm/verification-memory.json directly. window: seconds of history to keep (None = all)."""
    res = result('state_file')
    res['state_file'] = path
    if not os.path.exists(path):
        res.update(status=NO_DATA, reason='%s does not exist: no verification has been recorded' % path)
        return res
    try:
        data = read_state(path)
    except UnsafeFileError as exc:
        res.update(status=ERROR, reason=str(exc))
        return res
    except ValueError as exc:
        res.update(status=NO_DATA, reason='state file is corrupted (%s); claude-flow itself treats a corrupted file '
                   'as no data' % exc)
        return res
    except (IOError, OSError) as exc:
        res.update(status=ERROR, reason='cannot read %s (%s); check its permissions' % (path, exc))
        return res
    history = data.get('history') if isinstance(data, dict) else None
    if not isinstance(history, list):
        res.update(status=NO_DATA, reason='state file %s has no `history` list, so it is corrupted or not a '
                   'claude-flow verification memory; claude-flow treats it as no data' % path)
        return res
    now = time.time() if now is None else now
    entries = []
    for item in history:
        if not isinstance(item, dict):
            continue
        stamp = parse_iso(item.get('timestamp'))
        if window is not None and (stamp is None or stamp < now - window):
            continue
        entries.append({'task_id': item.get('taskId'), 'agent': str(item.get('agentType') or 'unknown'),
                        'score': as_score(item.get('score')), 'passed': item.get('passed') is True,
                        'epoch': stamp, 'timestamp': item.get('timestamp')})
    return summarise(res, entries, window)


def summarise(res, entries, window, scale=None):
    """Fill overall/agents/counts/history of res from normalised entries [{agent, score, passed, epoch,...}]."""
    res['window_seconds'] = window
    res['total_verifications'] = len(entries)
    res['passed_verifications'] = sum(1 for e in entries if e['passed'])
    if not entries:
        res.update(status=NO_DATA, reason='no verification recorded%s'
                   % (' in the last %d s' % window if window else ''))
        return res
    scale = scale or score_scale([e['score'] for e in entries])
    per_agent = {}
    for entry in entries:
        if entry['score'] is not None:
            entry['score'] = entry['score'] / scale
        per_agent.setdefault(entry['agent'], []).append(entry['score'])
    res['agents'] = [{'agent': agent, 'score': mean(scores), 'verifications': len(scores)}
                     for agent, scores in per_agent.items()]
    res['overall'] = mean([e['score'] for e in entries])
    unscored = sum(1 for e in entries if e['score'] is None)
    if res['overall'] is None:
        res.update(status=NO_DATA, reason='%d verifications recorded but none has a score' % len(entries))
    elif unscored:
        res['reason'] = '%d of %d verifications have no score and are left out of the averages' % (
            unscored, len(entries))
    ordered = sorted(entries, key=lambda e: e['epoch'] or 0, reverse=True)[:HISTORY_LIMIT]
    res['history'] = [dict((k, v) for k, v in e.items() if k != 'epoch') for e in ordered]
    return res


# ---------------------------------------------------------------- memory.db verification_history

def verification_table_reason(db):
    """None when db has a usable verification_history, else why not."""
    source = db.source('verifications')
    missing = source.missing(db.table_map, ['time', 'agent', 'score'])
    if missing:
        return ('%s (schema profile %s); no claude-flow release keeps verification_history, its truth data is '
                'in .swarm/verification-memory.json: use source state_file or cli' % (missing, db.profile))
    return None


def db_agents(path):
    """Distinct agent names in verification_history (empty when the table is absent or the DB unusable)."""
    try:
        with open_for_reading(path) as db:
            if verification_table_reason(db):
                return []
            source = db.source('verifications')
            rows = db.query('SELECT DISTINCT %s FROM %s WHERE %s IS NOT NULL' % (
                quote_ident(source.col('agent')), quote_ident(source.table), quote_ident(source.col('agent'))))
            return sorted(str(row[0]) for row in rows)
    except MemoryDbError:
        return []


def from_db(path, window=None, now=None):
    res = result('db')
    res['path'] = path
    if not os.path.isfile(path):
        res.update(status=ERROR, reason='database %s does not exist; set path to the memory.db that holds '
                   'verification_history' % path)
        return res
    try:
        with open_for_reading(path) as db:
            return _read_db(db, res, window, time.time() if now is None else now)
    except MemoryDbError as exc:
        res.update(status=ERROR, reason=str(exc))
        return res


def _read_db(db, res, window, now):
    res['schema_profile'] = db.profile
    reason = verification_table_reason(db)
    if reason:
        res.update(status=UNSUPPORTED, reason=reason)
        return res
    source = db.source('verifications')
    time_col = quote_ident(source.col('time'))
    agent_col = quote_ident(source.col('agent'))
    score_col = quote_ident(source.col('score'))
    has_status = source.missing(db.table_map, ['status']) is None
    status_col = quote_ident(source.col('status')) if has_status else 'NULL'
    sql = 'SELECT %s, %s, %s, %s FROM %s' % (time_col, agent_col, score_col, status_col, quote_ident(source.table))
    params = ()
    if window is not None:
        # epoch_expr reads TEXT timestamps with or without 'T'/'Z'; a plain text compare would not.
        sql += ' WHERE %s >= ?' % epoch_expr(time_col, source.time_unit)
        params = (now - window,)
        if source.time_unit == TEXT_UTC:
            # Any text form of a time on or after the cutoff's day sorts at or after 'YYYY-MM-DD', so this
            # coarse bound lets an index on the column skip older rows before the exact test above.
            sql += ' AND %s >= ?' % time_col
            params += (time.strftime('%Y-%m-%d', time.gmtime(now - window)),)
    rows = db.query(sql, params)
    entries = []
    for stamp, agent, score, status in rows:
        entries.append({'agent': str(agent if agent is not None else 'unknown'), 'score': as_score(score),
                        'passed': str(status).strip().lower() in PASSED_STATUSES if has_status else False,
                        'status': status, 'timestamp': to_iso(stamp, source.time_unit),
                        'epoch': parse_iso(to_iso(stamp, source.time_unit))})
    summarise(res, entries, window)
    if not has_status:
        res['passed_verifications'] = None
    res['queries'] = list(db.queries)
    return res


def db_has_verifications(path):
    """(True, None) when path is a DB whose verification_history has rows, else (False, why not)."""
    if not os.path.isfile(path):
        return False, 'database %s does not exist' % path
    try:
        with open_for_reading(path) as db:
            reason = verification_table_reason(db)
            if reason:
                return False, reason
            if not db.has_rows(db.source('verifications').table):
                return False, 'verification_history in %s is empty' % path
    except MemoryDbError as exc:
        return False, str(exc)
    return True, None


# ---------------------------------------------------------------- choosing the source

def collect(source, app_dir, executable=None, timeout=None, state_file=None, db_path=None, window=None,
            threshold=DEFAULT_THRESHOLD, now=None, check_mode=False):
    """Truth scores from `source` (auto|cli|state_file|db), finished with agents_below.

    check_mode: never run a CLI command that writes (every 2.x call does); the state file is read
    instead where auto may choose, else the status says why nothing was measured.

    Raises claude_flow.ClaudeFlowError or TruthError for unusable option values only; everything the
    deployment does wrong is a status with a reason.
    """
    if not 0 < threshold <= 1:
        raise TruthError('threshold %s is outside 0..1; truth scores are ratios, write 0.90 rather than 90'
                         % threshold)
    if source == 'cli' and window is not None:
        raise TruthError('`truth --json` cannot filter by time, so window does not work with source cli; use '
                         'source state_file (the same data, read directly) or db')
    claude_flow.reject_npx(executable)
    state_file = state_file or os.path.join(app_dir, STATE_FILE)
    db_path = db_path or os.path.join(app_dir, DB_FILE)
    timeout = timeout or claude_flow.DEFAULT_TIMEOUT
    try:
        if source == 'state_file':
            res = from_state_file(state_file, window, now)
        elif source == 'db':
            res = from_db(db_path, window, now)
        elif source == 'cli':
            res = _cli_or_error(app_dir, executable, timeout, state_file, check_mode)
        else:
            res = _auto(app_dir, executable, timeout, state_file, db_path, window, now, check_mode)
    except ScoreRangeError as exc:
        res = result(source, ERROR, str(exc))
    return finish(res, threshold)


def _cli_or_error(app_dir, executable, timeout, state_file, check_mode=False):
    try:
        cli = claude_flow.ClaudeFlow(app_dir, executable, timeout)
        version = cli.version()
        if check_mode and claude_flow.writes_on_every_call(version):
            res = result('cli', NO_DATA, CHECK_MODE_CLI % version['version'] + '; use source state_file to read the '
                         'same scores without it')
            res['cli_version'] = version['version']
            return res
        return from_cli(cli, state_file)
    except claude_flow.ClaudeFlowError as exc:
        res = result('cli', ERROR, str(exc))
        return res


def _auto(app_dir, executable, timeout, state_file, db_path, window, now, check_mode=False):
    """db when verification_history has rows; else cli on 2.x (state_file when a window is asked, as
    the CLI cannot filter by time, or in check mode, as every 2.x call writes); else state_file when it
    exists; else unsupported (3.x) or error."""
    attempts = []
    usable, why = db_has_verifications(db_path)
    if usable:
        res = from_db(db_path, window, now)
        res['attempts'] = attempts
        return res
    attempts.append({'source': 'db', 'outcome': why})
    version = None
    try:
        cli = claude_flow.ClaudeFlow(app_dir, executable, timeout)
        version = cli.version()
    except claude_flow.ClaudeFlowError as exc:
        attempts.append({'source': 'cli', 'outcome': str(exc)})
    state_exists = os.path.lexists(state_file)
    cli_writes = check_mode and version is not None and claude_flow.writes_on_every_call(version)
    if version and version['major'] == 2 and not (window is not None and state_exists) and not cli_writes:
        res = from_cli(cli, state_file)
    elif state_exists:
        if version and version['major'] == 2:
            why = (CHECK_MODE_CLI % version['version'] if cli_writes else 'truth --json cannot filter by window')
            attempts.append({'source': 'cli', 'outcome': 'skipped: %s; reading the same state file directly' % why})
        res = from_state_file(state_file, window, now)
        if version and version['major'] != 2:
            attempts.append({'source': 'cli', 'outcome': 'claude-flow %s has no truth command' % version['version']})
            if res['status'] == OK:
                # 3.x never writes this file: what it holds is left over from an earlier 2.x install.
                note = ('claude-flow %s does not write %s; these scores come from an earlier 2.x install (newest '
                        'entry %s)' % (version['version'], state_file, res['history'][0]['timestamp']))
                res['reason'] = '; '.join(text for text in (res['reason'], note) if text)
    elif cli_writes:
        res = result('auto', NO_DATA, '%s; %s does not exist, so no verification has been recorded there'
                     % (CHECK_MODE_CLI % version['version'], state_file))
    elif version:
        res = result('auto', UNSUPPORTED, 'claude-flow %s has no truth command and %s does not exist; this release '
                     'keeps no truth score, so none can be measured' % (version['version'], state_file))
    else:
        res = result('auto', ERROR, 'no truth source is available: %s; %s does not exist'
                     % ('; '.join(a['outcome'] for a in attempts), state_file))
    if version:
        res['cli_version'] = version['version']
    res['attempts'] = attempts
    return res
