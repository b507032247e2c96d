# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generate claude-flow `.swarm/memory.db` files with chosen metrics, and corrupt them on purpose.

Used by the unit tests, the lab hosts, the demo and the benchmarks. Pure standard library.

    generate(path, profile='runbook', rows=10000, preset=None, ...) -> summary dict
    corrupt(path, mode) -> dict describing the damage

Profiles follow plugins/module_utils/memory_db.py SOURCES:
  runbook        patterns, task_trajectories (task_type, execution_time_ms), verification_history;
                 TEXT UTC timestamps; no indexes beyond primary keys.
  reasoningbank  the DDL claude-flow 2.7.47 really writes (REASONINGBANK_DDL), plus the hooks'
                 memory_entries table (epoch seconds) for large row counts.
  v3             the DDL claude-flow 3.43.0 really writes (V3_DDL, 39 tables), epoch milliseconds,
                 file mode 0600.

Metrics come out as requested when measured relative to `now` (default: the time of generation):
rows "in the last hour" are placed in the last 45 minutes, and older rows end 70 minutes back, so a
check that runs up to 15 minutes after generation still sees the same numbers.

Command line: python memory_db_gen.py OUT.db --profile runbook --rows 100000 [--preset healthy] ...
prints the summary as JSON on stdout.
"""

import argparse
import array
import json
import math
import os
import random
import re
import sqlite3
import struct
import sys
import time
from urllib.parse import quote

PROFILES = ('runbook', 'reasoningbank', 'v3')
CORRUPT_MODES = ('overwritten_pages', 'truncated', 'zero_length', 'not_a_database', 'stale_wal',
                 'index_mismatch')
SQLITE_HEADER = b'SQLite format 3\x00'

HOUR = 3600
DAY = 86400
MIB = 1024 * 1024
# "Last hour" rows land in (now - 45 min, now - 1 s]: a check run up to 15 minutes later still counts them.
RECENT_SPAN = 2700
# Older rows end 70 minutes back and start 29 days back: inside "the last 30 days", outside "the last hour".
OLD_END = HOUR + 600
OLD_START = 29 * DAY
# Stale patterns (what the runbook's prune deletes) were last used 31 to 90 days ago.
STALE_END = 31 * DAY + 600
STALE_START = 90 * DAY
NEW_PATTERN_FRACTION = 0.02          # patterns created in the last 24 hours
HOT_PATTERN_FRACTION = 0.3           # share of non-stale patterns used in the last hour (when cache_hit > 0)
RECENT_VERIFICATION_FRACTION = 0.3   # share of verification rows in the last hour
AUTO_OPS_MAX_SHARE = 0.9             # default ops_per_second uses at most this share of trajectories
# The runbook's P3 threshold for the DB size (severity.py db_size_bytes); p3_size goes 4 MiB over it.
P3_SIZE_THRESHOLD = 858993459
MIN_ROWS = 100
BATCH = 20000
PROGRESS_ROWS = 500000               # print progress to stderr only for runs this large
GROWTH_SPAN_MIN_S = 300              # the growth sample lies at least this far back
VERIFY_PAGES = 65536                 # overwritten_pages checks its result on files up to 256 MiB (4 KiB pages)

DEFAULTS = {
    'truth_score': 0.97,
    'agents': ('coder', 'tester', 'reviewer', 'backend-dev'),
    'weak_agent': None,
    'weak_agent_score': None,
    'cache_hit': 0.90,
    'stale_fraction': 0.05,
    'anomalous_fraction': 0.02,
    'ops_per_second': 5.0,
    'goap_avg_ms': 40.0,
    'goap_fraction': 0.1,
    'growth_mb_per_hour': None,
    'wal': True,
    'min_size_bytes': None,
    'memory_entries': None,
    'corrupt': None,
}

PRESETS = {
    'healthy': {},
    'p3_size': {'min_size_bytes': P3_SIZE_THRESHOLD + 4 * MIB},
    'p2_goap': {'goap_avg_ms': 250.0},
    'p2_truth': {'truth_score': 0.93},
    'p1_truth': {'truth_score': 0.88},
    'p1_cache': {'cache_hit': 0.40},
    'p1_growth': {'growth_mb_per_hour': 500.0},
    'p0_truth': {'truth_score': 0.80},
    'p0_corrupt': {'corrupt': 'overwritten_pages'},
}

# Which knobs mean something in which profile (the others are reported as not applicable).
PROFILE_KNOBS = {
    'runbook': {'truth_score', 'agents', 'weak_agent', 'weak_agent_score', 'goap_avg_ms', 'goap_fraction'},
    'reasoningbank': {'agents'},
    'v3': set(),
}

TABLES = {
    'runbook': {'patterns': 'patterns', 'trajectories': 'task_trajectories',
                'verifications': 'verification_history', 'memory': None},
    'reasoningbank': {'patterns': 'patterns', 'trajectories': 'task_trajectories', 'verifications': None,
                      'memory': 'memory_entries'},
    'v3': {'patterns': 'patterns', 'trajectories': 'trajectories', 'verifications': None,
           'memory': 'memory_entries'},
}

_UNSET = object()


class GeneratorError(ValueError):
    """Bad arguments or an impossible combination, stated with the fix."""


# --------------------------------------------------------------------------- helpers

class _TextClock(object):
    """Epoch seconds -> 'YYYY-MM-DD HH:MM:SS' UTC; strftime once per day keeps 10M rows fast."""

    def __init__(self):
        self.days = {}

    def __call__(self, ts):
        day, sec = divmod(int(ts), DAY)
        prefix = self.days.get(day)
        if prefix is None:
            prefix = self.days[day] = time.strftime('%Y-%m-%d ', time.gmtime(day * DAY))
        return '%s%02d:%02d:%02d' % (prefix, sec // 3600, sec % 3600 // 60, sec % 60)


def _values_with_mean(rng, count, mean, spread, low, high, digits):
    """count values in [low, high] whose average is mean (to rounding at `digits`)."""
    if count <= 0:
        return []
    spread = max(0.0, min(spread, mean - low, high - mean))
    noise = [rng.uniform(-1.0, 1.0) for dummy in range(count)]
    centre = sum(noise) / count
    noise = [x - centre for x in noise]
    peak = max(abs(x) for x in noise) or 1.0
    return [round(mean + spread * x / peak, digits) for x in noise]


def _split_exact(rng, total, count):
    """count random non-negative integers that add up to exactly total."""
    if count <= 0:
        return []
    weights = [1 + int(rng.random() * rng.random() * 200) for dummy in range(count)]
    wsum = sum(weights)
    parts = [w * total // wsum for w in weights]
    for i in range(total - sum(parts)):
        parts[i % count] += 1
    return parts


def _chronological(rng, count, start, end):
    """count instants spread evenly with jitter over [start, end), in increasing order."""
    step = (end - start) / float(count) if count else 0.0
    for i in range(count):
        yield start + (i + rng.random()) * step


def _remove_set(path):
    for suffix in ('', '-wal', '-shm', '-journal', '.growth.json'):
        if os.path.lexists(path + suffix):
            os.unlink(path + suffix)


def _progress(enabled, text):
    if enabled:
        sys.stderr.write('memory_db_gen: %s\n' % text)
        sys.stderr.flush()


def _fraction(name, value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise GeneratorError('%s must be a number between 0 and 1, got %r' % (name, value))
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise GeneratorError('%s must be between 0 and 1 (a fraction, not a percentage), got %r' % (name, value))
    return value


def _non_negative(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise GeneratorError('%s must be a number >= 0, got %r' % (name, value))
    if value < 0 or math.isnan(value) or math.isinf(value):
        raise GeneratorError('%s must be a finite number >= 0, got %r' % (name, value))
    return value


# --------------------------------------------------------------------------- knobs

def _resolve_knobs(preset, explicit):
    if preset is not None and preset not in PRESETS:
        raise GeneratorError('unknown preset %r; use one of: %s' % (preset, ', '.join(sorted(PRESETS))))
    knobs = dict(DEFAULTS)
    knobs.update(PRESETS.get(preset) or {})
    knobs.update(explicit)
    knobs['truth_score'] = _fraction('truth_score', knobs['truth_score'])
    knobs['cache_hit'] = _fraction('cache_hit', knobs['cache_hit'])
    knobs['stale_fraction'] = _fraction('stale_fraction', knobs['stale_fraction'])
    knobs['anomalous_fraction'] = _fraction('anomalous_fraction', knobs['anomalous_fraction'])
    knobs['goap_fraction'] = _fraction('goap_fraction', knobs['goap_fraction'])
    knobs['ops_per_second'] = _non_negative('ops_per_second', knobs['ops_per_second'])
    knobs['goap_avg_ms'] = _non_negative('goap_avg_ms', knobs['goap_avg_ms'])
    if knobs['goap_avg_ms'] <= 0:
        raise GeneratorError('goap_avg_ms must be > 0 (an average planning time in ms), got %r'
                             % knobs['goap_avg_ms'])
    knobs['growth_mb_per_hour'] = _non_negative('growth_mb_per_hour', knobs['growth_mb_per_hour'], True)
    if knobs['min_size_bytes'] is not None:
        knobs['min_size_bytes'] = int(_non_negative('min_size_bytes', knobs['min_size_bytes']))
    if knobs['memory_entries'] is not None:
        knobs['memory_entries'] = int(_non_negative('memory_entries', knobs['memory_entries']))
    agents = knobs['agents']
    if isinstance(agents, str):
        agents = [a.strip() for a in agents.split(',') if a.strip()]
    agents = tuple(agents or ())
    if not agents or len(set(agents)) != len(agents) or not all(isinstance(a, str) and a for a in agents):
        raise GeneratorError('agents must be a non-empty list of distinct agent names, got %r' % (knobs['agents'],))
    knobs['agents'] = agents
    if knobs['weak_agent'] is not None:
        if knobs['weak_agent'] not in agents:
            raise GeneratorError('weak_agent %r is not one of agents %s; add it to agents or pick one of them'
                                 % (knobs['weak_agent'], list(agents)))
        if knobs['weak_agent_score'] is None:
            raise GeneratorError('weak_agent %r needs weak_agent_score (its average truth score, 0..1)'
                                 % knobs['weak_agent'])
        knobs['weak_agent_score'] = _fraction('weak_agent_score', knobs['weak_agent_score'])
    elif knobs['weak_agent_score'] is not None:
        raise GeneratorError('weak_agent_score is set but weak_agent is not; name the agent with weak_agent')
    if knobs['corrupt'] is not None and knobs['corrupt'] not in CORRUPT_MODES:
        raise GeneratorError('unknown corrupt mode %r; use one of: %s' % (knobs['corrupt'], ', '.join(CORRUPT_MODES)))
    knobs['wal'] = bool(knobs['wal'])
    return knobs


def _row_budget(profile, rows):
    patterns = int(round(rows * 0.4))
    verifications = int(round(rows * 0.1)) if profile == 'runbook' else 0
    return patterns, rows - patterns - verifications, verifications


# --------------------------------------------------------------------------- generate

def generate(path, profile='runbook', rows=10000, preset=None, now=None, seed=0, truth_score=_UNSET,
             agents=_UNSET, weak_agent=_UNSET, weak_agent_score=_UNSET, cache_hit=_UNSET,
             stale_fraction=_UNSET, anomalous_fraction=_UNSET, ops_per_second=_UNSET, goap_avg_ms=_UNSET,
             goap_fraction=_UNSET, growth_mb_per_hour=_UNSET, wal=_UNSET, min_size_bytes=_UNSET,
             memory_entries=_UNSET, corrupt=_UNSET):
    """Write a memory.db at path (replacing any DB set there) and return a summary dict.

    Defaults (DEFAULTS): truth_score 0.97, agents coder/tester/reviewer/backend-dev, cache_hit 0.90,
    stale_fraction 0.05, anomalous_fraction 0.02, ops_per_second 5.0, goap_avg_ms 40, goap_fraction 0.1,
    growth_mb_per_hour None (no growth file), wal True. A preset sets knobs; explicit arguments win.
    ops_per_second left at its default is lowered to what the row budget allows (at most 90% of the
    trajectories in the last hour; the summary says so); an explicit rate the budget cannot reach is an
    error. min_size_bytes appends notes to patterns until the file is at least that big (growth_mb_per_hour
    raises it so the growth sample can lie GROWTH_SPAN_MIN_S back). memory_entries is the
    number of memory_entries rows (None: v3 rows/20, reasoningbank rows/20 from 100000 rows, runbook 0);
    it is not counted in rows. corrupt applies corrupt(path, mode) after generating.
    """
    started = time.monotonic()
    explicit = {}
    for name, value in (('truth_score', truth_score), ('agents', agents), ('weak_agent', weak_agent),
                        ('weak_agent_score', weak_agent_score), ('cache_hit', cache_hit),
                        ('stale_fraction', stale_fraction), ('anomalous_fraction', anomalous_fraction),
                        ('ops_per_second', ops_per_second), ('goap_avg_ms', goap_avg_ms),
                        ('goap_fraction', goap_fraction), ('growth_mb_per_hour', growth_mb_per_hour),
                        ('wal', wal), ('min_size_bytes', min_size_bytes), ('memory_entries', memory_entries),
                        ('corrupt', corrupt)):
        if value is not _UNSET:
            explicit[name] = value
    if profile not in PROFILES:
        raise GeneratorError('unknown profile %r; use one of: %s' % (profile, ', '.join(PROFILES)))
    try:
        rows = int(rows)
    except (TypeError, ValueError):
        raise GeneratorError('rows must be an integer, got %r' % (rows,))
    if rows < MIN_ROWS:
        raise GeneratorError('rows must be at least %d, got %d' % (MIN_ROWS, rows))
    knobs = _resolve_knobs(preset, explicit)
    now = time.time() if now is None else float(now)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise GeneratorError('directory %s does not exist; create it first' % directory)

    n_patterns, n_traj, n_verif = _row_budget(profile, rows)
    plan = _plan(profile, rows, n_patterns, n_traj, n_verif, knobs, 'ops_per_second' in explicit)
    rng = random.Random(seed)
    show = rows >= PROGRESS_ROWS

    _remove_set(path)
    conn = sqlite3.connect(path, isolation_level=None)
    if profile == 'v3':
        os.chmod(path, 0o600)   # claude-flow 3.x creates memory.db readable by its owner only
    expected = {}
    try:
        # Bulk load without a journal: the file is new, so a crash leaves nothing worth keeping.
        conn.execute('PRAGMA journal_mode = OFF')
        conn.execute('PRAGMA synchronous = OFF')
        conn.execute('PRAGMA cache_size = -131072')
        conn.execute('PRAGMA temp_store = MEMORY')
        conn.executescript(_ddl(profile))
        if profile == 'reasoningbank' and plan['memory_entries']:
            conn.executescript(REASONINGBANK_HOOKS_DDL)   # what 2.x hooks add
        conn.execute('BEGIN')
        expected.update(_load_patterns(conn, profile, rng, now, plan, knobs, show))
        expected.update(_load_trajectories(conn, profile, rng, now, plan, knobs, show))
        if profile == 'runbook':
            expected.update(_load_verifications(conn, rng, now, plan, knobs, show))
        if plan['memory_entries']:
            _load_memory_entries(conn, profile, rng, now, plan['memory_entries'])
        if plan['min_size_bytes']:
            _pad_to(conn, profile, plan['min_size_bytes'])
        conn.execute('COMMIT')
        journal = conn.execute('PRAGMA journal_mode = %s' % ('WAL' if knobs['wal'] else 'DELETE')).fetchone()[0]
        if knobs['wal']:
            conn.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    finally:
        conn.close()   # last connection closes: SQLite checkpoints and removes -wal/-shm
    _progress(show, 'wrote %d rows in %.1fs' % (rows, time.monotonic() - started))

    size = os.path.getsize(path) + (os.path.getsize(path + '-wal') if os.path.exists(path + '-wal') else 0)
    growth_file = None
    if knobs['growth_mb_per_hour'] is not None:
        growth_file = write_growth_state(path, knobs['growth_mb_per_hour'], now, size)
        expected['growth_mb_per_hour'] = knobs['growth_mb_per_hour']

    table_names = TABLES[profile]
    row_counts = {table_names['patterns']: n_patterns, table_names['trajectories']: n_traj}
    if table_names['verifications']:
        row_counts[table_names['verifications']] = n_verif
    if plan['memory_entries']:
        row_counts[table_names['memory']] = plan['memory_entries']
    applied = dict((k, v) for k, v in knobs.items() if k != 'corrupt')
    applied['agents'] = list(knobs['agents'])
    applied['ops_per_second'] = plan['ops_per_second']
    applied['memory_entries'] = plan['memory_entries']
    summary = {
        'path': path,
        'profile': profile,
        'preset': preset,
        'seed': seed,
        'now': now,
        'rows': rows,
        'row_counts': row_counts,
        'knobs': applied,
        'explicit': sorted(explicit),
        'not_applicable': sorted(k for k in ('truth_score', 'weak_agent', 'weak_agent_score', 'goap_avg_ms',
                                             'goap_fraction')
                                 if k not in PROFILE_KNOBS[profile]),
        'notes': plan['notes'],
        'expected': expected,
        'journal_mode': journal,
        'size_bytes': size,
        'growth_file': growth_file,
        'corruption': None,
        'elapsed_s': None,
    }
    if knobs['corrupt']:
        summary['corruption'] = corrupt_db(path, knobs['corrupt'], seed=seed)
        summary['size_bytes'] = os.path.getsize(path)
    summary['elapsed_s'] = round(time.monotonic() - started, 3)
    return summary


def _plan(profile, rows, n_patterns, n_traj, n_verif, knobs, ops_explicit):
    """Counts of every category of row, checked against the budget before anything is written."""
    notes = []
    plan = {'patterns': n_patterns, 'trajectories': n_traj, 'verifications': n_verif, 'notes': notes}
    recent = int(round(knobs['ops_per_second'] * HOUR))
    if recent > n_traj:
        if ops_explicit:
            share = n_traj / float(rows)
            raise GeneratorError(
                'ops_per_second %g needs %d trajectories in the last hour, but rows=%d gives only %d '
                'trajectories; raise rows to at least %d or lower ops_per_second to at most %.3f'
                % (knobs['ops_per_second'], recent, rows, n_traj, int(math.ceil(recent / share)) + 2,
                   n_traj / float(HOUR)))
        recent = int(n_traj * AUTO_OPS_MAX_SHARE)
        notes.append('ops_per_second lowered from the default %g to %.4f: rows=%d gives %d trajectories; '
                     'pass rows >= %d for the default rate'
                     % (knobs['ops_per_second'], recent / float(HOUR), rows, n_traj,
                        int(math.ceil(knobs['ops_per_second'] * HOUR / (n_traj / float(rows))))))
    plan['recent_trajectories'] = recent
    plan['ops_per_second'] = recent / float(HOUR)

    stale = int(round(knobs['stale_fraction'] * n_patterns))
    nonstale = n_patterns - stale
    hot = 0
    if knobs['cache_hit'] > 0:
        if nonstale == 0:
            raise GeneratorError('stale_fraction %g leaves no recently used patterns, so cache_hit %g cannot '
                                 'be reached; lower stale_fraction or set cache_hit 0'
                                 % (knobs['stale_fraction'], knobs['cache_hit']))
        hot = max(1, int(round(nonstale * HOT_PATTERN_FRACTION)))
    plan.update(stale=stale, hot=hot, warm=nonstale - hot,
                new=min(nonstale, int(round(n_patterns * NEW_PATTERN_FRACTION))),
                anomalous=int(round(knobs['anomalous_fraction'] * n_patterns)))

    if profile == 'runbook':
        k = len(knobs['agents'])
        if n_verif < k:
            raise GeneratorError('rows=%d gives %d verification rows, fewer than the %d agents; raise rows to '
                                 'at least %d' % (rows, n_verif, k, k * 10 + 10))
        plan['recent_verifications'] = min(n_verif, max(k, int(round(n_verif * RECENT_VERIFICATION_FRACTION))))
        goap = int(round(knobs['goap_fraction'] * recent))
        if knobs['goap_fraction'] > 0 and recent > 0:
            goap = max(1, goap)
        plan['recent_goap'] = goap
    memory = knobs['memory_entries']
    if memory is None:
        memory = {'runbook': 0, 'v3': rows // 20,
                  'reasoningbank': rows // 20 if rows >= 100000 else 0}[profile]
    if memory and profile == 'runbook':
        raise GeneratorError('the runbook profile has no memory_entries table; use memory_entries only with '
                             'the reasoningbank or v3 profile')
    plan['memory_entries'] = memory

    size = knobs['min_size_bytes'] or 0
    if knobs['growth_mb_per_hour']:
        # memory_db_info ignores size samples younger than a minute; a sample GROWTH_SPAN_MIN_S back
        # at size 0 needs a file of at least rate * that span.
        need = int(math.ceil(knobs['growth_mb_per_hour'] * MIB * GROWTH_SPAN_MIN_S / float(HOUR)))
        if need > size:
            size = need
            notes.append('file padded to at least %d bytes so the growth sample can lie %d s back'
                         % (need, GROWTH_SPAN_MIN_S))
    plan['min_size_bytes'] = size
    return plan


def _pad_to(conn, profile, target):
    """Append notes to patterns until the file holds at least target bytes (one pass nearly always)."""
    page_size = conn.execute('PRAGMA page_size').fetchone()[0]
    if profile == 'v3':
        sql = "UPDATE patterns SET description = description || ' ' || ? WHERE rowid > ? AND rowid <= ?"
    else:
        sql = ("UPDATE patterns SET pattern_data = substr(pattern_data, 1, length(pattern_data) - 1) "
               "|| ',\"notes\":\"' || ? || '\"}' WHERE rowid > ? AND rowid <= ?")
    total = conn.execute('SELECT COUNT(*) FROM patterns').fetchone()[0]
    done = 0
    while done < total:
        missing = target - conn.execute('PRAGMA page_count').fetchone()[0] * page_size
        if missing <= 0:
            return
        rows = min(total - done, int(math.ceil(missing / 4000.0)))
        per_row = int(math.ceil(missing / float(rows)))
        conn.execute(sql, ((PAD_TEXT * (per_row // len(PAD_TEXT) + 1))[:per_row], done, done + rows))
        done += rows


def _ddl(profile):
    if profile == 'runbook':
        return RUNBOOK_DDL
    # sqlite_sequence appears in `.schema` output but SQLite creates it itself (AUTOINCREMENT).
    text = REASONINGBANK_DDL if profile == 'reasoningbank' else V3_DDL
    return text.replace('CREATE TABLE sqlite_sequence(name,seq);\n', '')


def _insert(conn, sql, row_iter, show, label, total):
    """executemany in batches; one transaction is already open."""
    batch = []
    done = 0
    next_report = PROGRESS_ROWS
    for row in row_iter:
        batch.append(row)
        if len(batch) >= BATCH:
            conn.executemany(sql, batch)
            done += len(batch)
            batch = []
            if done >= next_report:
                _progress(show, '%s: %d/%d rows' % (label, done, total))
                next_report += PROGRESS_ROWS
    if batch:
        conn.executemany(sql, batch)


# --------------------------------------------------------------------------- patterns

PATTERN_TYPES = {
    'runbook': ('task_routing', 'error_recovery', 'optimization', 'coordination', 'goap_heuristic'),
    'reasoningbank': ('reasoning_memory',),
    'v3': ('task-routing', 'error-recovery', 'optimization', 'learning', 'coordination', 'prediction',
           'code-pattern', 'workflow'),
}
DOMAINS = ('api', 'auth', 'database', 'frontend', 'testing', 'deployment', 'security', 'performance')
VERBS = ('retry', 'cache', 'split', 'validate', 'batch', 'index', 'refactor', 'mock', 'parallelise', 'escalate')
OBJECTS = ('request', 'query', 'module', 'endpoint', 'schema', 'test suite', 'migration', 'job', 'payload')
PAD_TEXT = 'observed context and notes kept for later consolidation; '


def _pattern_categories(rng, plan, cache_hit):
    """Category per pattern (0 stale, 1 hot, 2 warm) and usage per pattern, with the cache hit exact."""
    n = plan['patterns']
    cats = bytearray(n)
    usage = array.array('q', bytes(8 * n))
    remaining = [plan['stale'], plan['hot'], plan['warm']]
    left = n
    rnd = rng.random
    cold_sum = 0
    hot_index = []
    for i in range(n):
        r = rnd() * left
        if r < remaining[0]:
            cat = 0
        elif r < remaining[0] + remaining[1]:
            cat = 1
        else:
            cat = 2
        remaining[cat] -= 1
        left -= 1
        cats[i] = cat
        if cat == 1:
            hot_index.append(i)
        elif cache_hit < 1.0:
            # Stale patterns keep a little usage (< 5, what prune deletes); warm ones are skewed.
            value = int(rnd() * 5) if cat == 0 else 1 + int(rnd() * rnd() * 120)
            usage[i] = value
            cold_sum += value
    if cache_hit >= 1.0:
        hot_total = 50 * len(hot_index)
    elif cache_hit <= 0.0 or not hot_index:
        hot_total = 0
    else:
        if cold_sum == 0:  # only possible when every cold pattern drew 0: give one a single use
            first_cold = next(i for i in range(n) if cats[i] != 1)
            usage[first_cold] = 1
            cold_sum = 1
        hot_total = int(round(cache_hit * cold_sum / (1.0 - cache_hit)))
    for i, value in zip(hot_index, _split_exact(rng, hot_total, len(hot_index))):
        usage[i] = value
    total = cold_sum + hot_total
    rate = round(100.0 * hot_total / total, 4) if total else None
    return cats, usage, rate


def _load_patterns(conn, profile, rng, now, plan, knobs, show):
    n = plan['patterns']
    cats, usage, rate = _pattern_categories(rng, plan, knobs['cache_hit'])
    rnd = rng.random
    text = _TextClock()
    types = PATTERN_TYPES[profile]

    def rows():
        new_left, nonstale_left = plan['new'], n - plan['stale']
        anom_left, all_left = plan['anomalous'], n
        for i in range(n):
            cat = cats[i]
            # exact counts by selection sampling: pick with probability wanted/remaining
            anomalous = rnd() * all_left < anom_left
            all_left -= 1
            if anomalous:
                anom_left -= 1
                confidence = round(0.02 + rnd() * 0.27, 4) if rnd() < 0.5 else round(0.955 + rnd() * 0.044, 4)
            else:
                confidence = round(0.31 + rnd() * 0.63, 4)
            new = False
            if cat != 0:
                new = rnd() * nonstale_left < new_left
                nonstale_left -= 1
                if new:
                    new_left -= 1
            if cat == 0:
                last_used = now - STALE_END - rnd() * (STALE_START - STALE_END)
                created = last_used - rnd() * 30 * DAY
            else:
                if new:
                    created = now - 23 * HOUR + rnd() * 20 * HOUR
                else:
                    created = now - 60 * DAY + rnd() * (60 * DAY - 25 * HOUR)
                if cat == 1:
                    last_used = now - 1 - rnd() * (RECENT_SPAN - 1)
                else:
                    low = max(created, now - OLD_START)
                    last_used = low + rnd() * (now - OLD_END - low)
            ptype = types[int(rnd() * len(types))]
            domain = DOMAINS[int(rnd() * len(DOMAINS))]
            verb = VERBS[int(rnd() * len(VERBS))]
            obj = OBJECTS[int(rnd() * len(OBJECTS))]
            yield i, ptype, domain, verb, obj, confidence, usage[i], created, last_used

    if profile in ('runbook', 'reasoningbank'):
        sql = ('INSERT INTO patterns (id, type, pattern_data, confidence, usage_count, created_at, last_used) '
               'VALUES (?, ?, ?, ?, ?, ?, ?)')
        tail = '}'

        def shaped():
            for i, ptype, domain, verb, obj, conf, use, created, last_used in rows():
                if profile == 'runbook':
                    data = '{"name":"%s %s","domain":"%s","trigger":"%s on %s"%s' % (
                        verb, obj, domain, domain, obj, tail)
                else:
                    data = ('{"title":"%s the %s","description":"When a %s task touches the %s, %s it first.",'
                            '"content":"1. Inspect the %s\\n2. %s it\\n3. Verify","source":{"task_id":"task-%d",'
                            '"outcome":"Success"},"tags":["%s","%s"],"domain":"%s"%s') % (
                        verb, obj, domain, obj, verb, obj, verb, i, domain, verb, domain, tail)
                yield ('pat-%09d' % i, ptype, data, conf, use, text(created), text(last_used))
    else:
        sql = ('INSERT INTO patterns (id, name, pattern_type, condition, action, description, confidence, '
               'success_count, failure_count, created_at, updated_at, last_matched_at, last_success_at, '
               'last_failure_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')

        def shaped():
            for i, ptype, domain, verb, obj, conf, use, created, last_used in rows():
                success = int(round(use * conf))
                failure = use - success
                last_ms = int(last_used * 1000)
                yield ('pat-%09d' % i, '%s-%s-%s' % (verb, obj.replace(' ', '-'), domain), ptype,
                       '%s.*%s' % (domain, obj), '%s the %s' % (verb, obj),
                       'Learned from %s tasks' % domain,
                       conf, success, failure, int(created * 1000), last_ms, last_ms,
                       last_ms if success else None, last_ms if failure else None, 'active')

    _insert(conn, sql, shaped(), show, 'patterns', n)
    return {
        'cache_hit_rate': rate,
        'stale_patterns': plan['stale'],
        'anomalous_patterns': plan['anomalous'],
        'patterns_created_24h': plan['new'],
        'patterns_used_last_hour': plan['hot'],
    }


# --------------------------------------------------------------------------- trajectories

TASK_TYPES = ('code_generation', 'review', 'test', 'analysis', 'refactor')
QUERIES = ('implement %s for the %s', 'fix failing %s in %s', 'review %s changes in %s', 'write tests for %s %s',
           'optimise %s of the %s')


def _load_trajectories(conn, profile, rng, now, plan, knobs, show):
    total = plan['trajectories']
    recent = plan['recent_trajectories']
    older = total - recent
    rnd = rng.random
    text = _TextClock()
    agents = knobs['agents']
    goap_recent = plan.get('recent_goap', 0)
    goap_values = _values_with_mean(rng, goap_recent, knobs['goap_avg_ms'], knobs['goap_avg_ms'] * 0.5,
                                    0.01, float('inf'), 2)
    goap_fraction = knobs['goap_fraction']
    goap_avg = knobs['goap_avg_ms']

    def instants():
        for ts in _chronological(rng, older, now - OLD_START, now - OLD_END):
            yield ts, False
        for ts in _chronological(rng, recent, now - RECENT_SPAN, now - 1):
            yield ts, True

    def base():
        goap_left, recent_left = goap_recent, recent
        for i, (ts, is_recent) in enumerate(instants()):
            agent = agents[int(rnd() * len(agents))]
            domain = DOMAINS[int(rnd() * len(DOMAINS))]
            obj = OBJECTS[int(rnd() * len(OBJECTS))]
            query = QUERIES[int(rnd() * len(QUERIES))] % (obj, domain)
            if is_recent:
                goap = rnd() * recent_left < goap_left
                recent_left -= 1
                if goap:
                    goap_left -= 1
                    ms = goap_values[goap_left]
            else:
                goap = rnd() < goap_fraction
                if goap:
                    ms = round(goap_avg * (0.5 + rnd()), 2)
            if goap:
                task_type = 'goap_planning'
            else:
                task_type = TASK_TYPES[int(rnd() * len(TASK_TYPES))]
                ms = round(150 + rnd() * rnd() * 6000, 2)
            yield i, ts, agent, task_type, ms, query, rnd()

    if profile == 'runbook':
        sql = ('INSERT INTO task_trajectories (task_id, agent_id, task_type, execution_time_ms, query, created_at) '
               'VALUES (?, ?, ?, ?, ?, ?)')
        rows = (('task-%09d' % i, agent, task_type, ms, query, text(ts))
                for i, ts, agent, task_type, ms, query, dummy in base())
    elif profile == 'reasoningbank':
        sql = ('INSERT INTO task_trajectories (task_id, agent_id, query, trajectory_json, started_at, ended_at, '
               'judge_label, judge_conf, judge_reasons, matts_run_id, created_at) '
               'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')

        def rb_rows():
            for i, ts, agent, _task_type, ms, query, roll in base():
                ok = roll < 0.85
                yield ('task-%09d' % i, agent, query,
                       '{"steps":[{"action":"plan"},{"action":"edit"},{"action":"verify"}],"duration_ms":%d}' % ms,
                       text(ts - ms / 1000.0), text(ts), 'Success' if ok else 'Failure',
                       round(0.6 + roll * 0.4, 3), '["tests pass"]' if ok else '["tests fail"]', None, text(ts))
        rows = rb_rows()
    else:
        sql = ('INSERT INTO trajectories (id, session_id, status, verdict, task, context, total_steps, '
               'total_reward, started_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')

        def v3_rows():
            for i, ts, agent, _task_type, ms, query, roll in base():
                verdict = 'success' if roll < 0.8 else ('partial' if roll < 0.9 else 'failure')
                status = 'completed' if verdict != 'failure' else 'failed'
                started = int(ts * 1000)
                yield ('traj-%09d' % i, 'session-%d' % (i // 50), status, verdict, query,
                       '{"agent":"%s"}' % agent, 3 + i % 7, round(roll, 3), started, started + int(ms))
        rows = v3_rows()
    _insert(conn, sql, rows, show, 'trajectories', total)
    out = {'ops_per_second': recent / float(HOUR), 'trajectories_last_hour': recent}
    if profile == 'runbook':
        out['goap_avg_ms'] = round(sum(goap_values) / len(goap_values), 3) if goap_values else None
        out['goap_last_hour'] = goap_recent
    return out


# --------------------------------------------------------------------------- verifications

def _agent_targets(knobs, counts):
    """Average truth score per agent so the overall average is truth_score (weak agent aside)."""
    truth = knobs['truth_score']
    weak = knobs['weak_agent']
    targets = dict((agent, truth) for agent in counts)
    if weak is None:
        return targets, None
    targets[weak] = knobs['weak_agent_score']
    others = sum(c for a, c in counts.items() if a != weak)
    note = None
    if others:
        wanted = (truth * sum(counts.values()) - knobs['weak_agent_score'] * counts[weak]) / float(others)
        clamped = min(1.0, max(0.0, wanted))
        if abs(clamped - wanted) > 1e-9:
            note = ('the other agents would need an average of %.4f to keep the overall truth score at %g; '
                    'clamped to %g, so the overall average shifts' % (wanted, truth, clamped))
        for agent in counts:
            if agent != weak:
                targets[agent] = clamped
    else:
        note = 'weak_agent is the only agent, so the overall average is weak_agent_score'
    return targets, note


def _load_verifications(conn, rng, now, plan, knobs, show):
    total = plan['verifications']
    recent = plan['recent_verifications']
    older = total - recent
    agents = knobs['agents']
    labels = [agents[i % len(agents)] for i in range(recent)]
    rng.shuffle(labels)
    counts = dict((a, labels.count(a)) for a in agents)
    targets, note = _agent_targets(knobs, counts)
    if note:
        plan['notes'].append(note)
    values = dict((a, _values_with_mean(rng, counts[a], targets[a], 0.03, 0.0, 1.0, 4)) for a in agents)
    recent_scores = dict((a, list(v)) for a, v in values.items())
    rnd = rng.random
    text = _TextClock()

    def rows():
        for ts in _chronological(rng, older, now - OLD_START, now - OLD_END):
            agent = agents[int(rnd() * len(agents))]
            score = min(1.0, max(0.0, round(targets[agent] + (rnd() - 0.5) * 0.06, 4)))
            yield text(ts), agent, score, 'passed' if score >= 0.85 else 'failed'
        for ts, agent in zip(_chronological(rng, recent, now - RECENT_SPAN, now - 1), labels):
            score = values[agent].pop()
            yield text(ts), agent, score, 'passed' if score >= 0.85 else 'failed'

    _insert(conn, 'INSERT INTO verification_history (timestamp, agent_name, truth_score, verification_status) '
                  'VALUES (?, ?, ?, ?)', rows(), show, 'verifications', total)
    all_scores = [s for v in recent_scores.values() for s in v]
    return {
        'truth_score': round(sum(all_scores) / len(all_scores), 4),
        'agent_scores': dict((a, round(sum(v) / len(v), 4)) for a, v in recent_scores.items() if v),
        'verifications_last_hour': recent,
    }


# --------------------------------------------------------------------------- memory_entries

NAMESPACES = ('default', 'swarm', 'agents', 'tasks', 'sessions', 'hooks')


def _load_memory_entries(conn, profile, rng, now, count):
    rnd = rng.random
    if profile == 'reasoningbank':
        # created by claude-flow 2.x hooks (sqlite-store): epoch seconds
        def rows():
            for i, ts in enumerate(_chronological(rng, count, now - OLD_START, now - 1)):
                sec = int(ts)
                accessed = sec + int(rnd() * (now - sec))
                yield ('hooks/%s/%d' % (NAMESPACES[i % len(NAMESPACES)], i), '{"event":"post-edit","n":%d}' % i,
                       NAMESPACES[int(rnd() * len(NAMESPACES))], '{"source":"hooks"}', sec, sec, accessed,
                       int(rnd() * 20))
        sql = ('INSERT INTO memory_entries (key, value, namespace, metadata, created_at, updated_at, accessed_at, '
               'access_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
    else:
        def rows():
            for i, ts in enumerate(_chronological(rng, count, now - OLD_START, now - 1)):
                ms = int(ts * 1000)
                yield ('mem-%09d' % i, 'key-%d' % i, NAMESPACES[int(rnd() * len(NAMESPACES))],
                       'stored value %d' % i, 'semantic', ms, ms, ms + int(rnd() * (now * 1000 - ms)),
                       int(rnd() * 20), 'active')
        sql = ('INSERT INTO memory_entries (id, key, namespace, content, type, created_at, updated_at, '
               'last_accessed_at, access_count, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
    _insert(conn, sql, rows(), False, 'memory_entries', count)


# --------------------------------------------------------------------------- growth state

def growth_state_path(db_path):
    return db_path + '.growth.json'


def write_growth_state(db_path, mb_per_hour, now, size_bytes):
    """One sample that makes memory_db_info compute mb_per_hour against the current size at `now`.

    The sample is one hour back with size - rate; when that would be negative, the sample is size 0
    only a fraction of an hour back, so the rate still equals the knob.
    """
    grow = mb_per_hour * MIB
    if size_bytes - grow >= 0:
        sample = {'ts': now - HOUR, 'size_bytes': int(round(size_bytes - grow))}
    else:
        sample = {'ts': now - HOUR * (size_bytes / grow), 'size_bytes': 0}
    target = growth_state_path(db_path)
    tmp = target + '.tmp'
    with open(tmp, 'w') as handle:
        json.dump({'samples': [sample]}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    return target


# --------------------------------------------------------------------------- corruption

def _read_header(path):
    with open(path, 'rb') as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(SQLITE_HEADER):
        raise GeneratorError('%s is not an intact SQLite database; corrupt a freshly generated DB' % path)
    page_size = struct.unpack('>H', header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    page_count = struct.unpack('>I', header[28:32])[0]
    return page_size, page_count


def _settle(path):
    """Fold any -wal into the file so the bytes we damage are the DB's real pages."""
    if not (os.path.exists(path + '-wal') or os.path.exists(path + '-shm')):
        return
    with open(path, 'rb') as handle:
        intact = handle.read(16) == SQLITE_HEADER
    if intact:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute('PRAGMA wal_checkpoint(TRUNCATE)')
        finally:
            conn.close()   # the last connection removes -wal and -shm
    if os.path.exists(path + '-wal') and os.path.getsize(path + '-wal') > 0:
        raise GeneratorError('%s-wal still holds frames (is another process using the DB?); stop it and retry'
                             % path)
    for suffix in ('-wal', '-shm'):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)


def make_idle(path):
    """Make the last day idle in a runbook/reasoningbank DB: no pattern used and a single trajectory in it
    (everything else moved three days back). A rate or hit rate over that is no measurement."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("UPDATE patterns SET last_used = datetime('now', '-3 days')")
        conn.execute("UPDATE task_trajectories SET created_at = datetime('now', '-3 days')")
        conn.execute("UPDATE task_trajectories SET created_at = datetime('now', '-1 minute') WHERE rowid = "
                     "(SELECT MIN(rowid) FROM task_trajectories)")
        conn.commit()
    finally:
        conn.close()


def corrupt(path, mode, seed=0):
    """Damage the DB at path the way `mode` says and return what was done.

    overwritten_pages  four table leaf pages in the middle lose their cells; file header intact;
                       integrity_check lists the damaged cells ("Offset ... out of range").
    truncated          cut to half its pages; the header still declares the old page count.
    zero_length        0 bytes.
    not_a_database     the first 100 bytes replaced by text: every query raises "file is not a database".
    stale_wal          a -wal written by another database placed beside it (no -shm): SQLite replays
                       it over this file, so reads show the other DB's schema or fail as malformed.
    index_mismatch     patterns rows deleted while the primary-key index did not see it: integrity_check
                       reports "wrong # of entries in index sqlite_autoindex_patterns_1"; quick_check is ok.
    A -wal already beside the DB is checkpointed into it first.
    """
    return corrupt_db(path, mode, seed=seed)


def corrupt_db(path, mode, seed=0):
    if mode not in CORRUPT_MODES:
        raise GeneratorError('unknown corrupt mode %r; use one of: %s' % (mode, ', '.join(CORRUPT_MODES)))
    if not os.path.isfile(path):
        raise GeneratorError('%s does not exist; generate a DB first' % path)
    rng = random.Random(seed)
    result = {'mode': mode, 'path': path}
    if mode == 'zero_length':
        _settle(path)
        with open(path, 'r+b') as handle:
            handle.truncate(0)
        return result
    if mode == 'not_a_database':
        _settle(path)
        text = b'This is not a database: a log line was written over the start of this file by mistake.\n'
        with open(path, 'r+b') as handle:
            handle.write((text * 2)[:100])
        return result
    _settle(path)
    page_size, page_count = _read_header(path)
    result.update(page_size=page_size, page_count=page_count)
    if mode == 'overwritten_pages':
        result.update(_overwrite_pages(path, page_size, page_count, rng))
    elif mode == 'truncated':
        if page_count < 2:
            raise GeneratorError('%s has only %d page; generate more rows before truncating' % (path, page_count))
        keep = page_count // 2
        with open(path, 'r+b') as handle:
            handle.truncate(keep * page_size)
        result.update(size_bytes=keep * page_size, declared_bytes=page_count * page_size)
    elif mode == 'stale_wal':
        result.update(_stale_wal(path, page_size, seed))
    elif mode == 'index_mismatch':
        result.update(_index_mismatch(path, rng))
    return result


def _overwrite_pages(path, page_size, page_count, rng):
    """Overwrite the cells of a few table leaf pages in the middle of the file; the file header stays.

    Each page keeps its type byte and cell count, gets random out-of-range cell offsets and loses its
    cell content: integrity_check then lists every damaged cell. Fully random bytes more often make
    integrity_check abort with "database disk image is malformed" instead of listing the damage, so
    for files up to VERIFY_PAGES pages the result is checked and another set of pages tried if it aborts.
    """
    leaves = []
    with open(path, 'rb') as handle:
        for page in range(2, page_count + 1):
            handle.seek((page - 1) * page_size)
            head = handle.read(8)
            if head[0] == 13 and struct.unpack('>H', head[3:5])[0] > 0:   # table leaf holding rows
                leaves.append(page)
    if len(leaves) < 4:
        raise GeneratorError('%s has only %d table leaf pages with rows; generate more rows before '
                             'overwriting pages' % (path, len(leaves)))
    start = len(leaves) // 2 - 2
    for attempt in range(8):
        first = (start + attempt * 4) % (len(leaves) - 3)
        pages = leaves[first:first + 4]
        originals = {}
        with open(path, 'r+b') as handle:
            for page in pages:
                handle.seek((page - 1) * page_size)
                original = originals[page] = handle.read(page_size)
                cells = struct.unpack('>H', original[3:5])[0]
                # type, no freeblocks, cell count and content start kept, no fragments
                head = original[0:1] + b'\0\0' + original[3:7] + b'\0'
                offsets = b''.join(struct.pack('>H', 0x8000 | rng.getrandbits(15)) for dummy in range(cells))
                handle.seek((page - 1) * page_size)
                handle.write(head + offsets + bytes(page_size - len(head) - len(offsets)))
        if page_count > VERIFY_PAGES:
            break
        if _integrity(path) not in (None, 'ok'):
            break
        with open(path, 'r+b') as handle:   # put the pages back and damage another set
            for page, original in originals.items():
                handle.seek((page - 1) * page_size)
                handle.write(original)
    return {'pages': pages}


def _integrity(path):
    """integrity_check's first line, or None when it aborts instead of reporting."""
    conn = sqlite3.connect('file:%s?mode=ro' % quote(os.path.abspath(path)), uri=True)
    try:
        return conn.execute('PRAGMA integrity_check').fetchone()[0]
    except sqlite3.DatabaseError:
        return None
    finally:
        conn.close()


def _stale_wal(path, page_size, seed):
    """Put beside path a -wal that belongs to another database (e.g. a restore that left the old -wal).

    SQLite has no way to tell: it replays the foreign frames over this file's pages.
    """
    other = path + '.other-db'
    _remove_set(other)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        profile = _profile_of(conn)
    finally:
        conn.close()
    generate(other, profile=profile or 'runbook', rows=2000, seed=seed + 1, ops_per_second=0.1, wal=False)
    conn = sqlite3.connect(other, isolation_level=None)
    try:
        # WAL frames are whole pages: the other DB must use this DB's page size
        conn.execute('PRAGMA page_size = %d' % page_size)
        conn.execute('VACUUM')
        conn.execute('PRAGMA journal_mode = WAL')
        conn.execute('PRAGMA wal_autocheckpoint = 0')   # keep every frame in the -wal
        conn.execute('BEGIN')
        conn.execute('CREATE TABLE stale_wal_marker (note TEXT)')   # rewrites page 1 (the schema)
        conn.execute("INSERT INTO stale_wal_marker VALUES ('this schema came from another database')")
        conn.execute('DELETE FROM patterns WHERE rowid % 3 = 0')
        conn.execute("UPDATE patterns SET confidence = 0.5 WHERE rowid % 3 = 1")
        conn.execute('COMMIT')
        with open(other + '-wal', 'rb') as src:
            wal_bytes = src.read()   # copied while the connection still holds it
    finally:
        conn.close()
    _remove_set(other)
    if os.path.exists(path + '-shm'):
        os.unlink(path + '-shm')
    with open(path + '-wal', 'wb') as dst:
        dst.write(wal_bytes)
    return {'wal_bytes': len(wal_bytes), 'wal_frames': (len(wal_bytes) - 32) // (page_size + 24)}


def _profile_of(conn):
    names = set(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    if 'verification_history' in names:
        return 'runbook'
    if 'trajectories' in names:
        return 'v3'
    if 'task_trajectories' in names:
        return 'reasoningbank'
    return None


def _index_mismatch(path, rng):
    """Delete patterns rows behind the back of the primary-key index sqlite_autoindex_patterns_1.

    While the rows go, the index's sqlite_master entry points at an empty scratch index, so the real
    index keeps entries for rows that no longer exist: integrity_check then reports the index.
    """
    index = 'sqlite_autoindex_patterns_1'
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (index,)).fetchone()
        if root is None:
            raise GeneratorError('%s has no %s index (no patterns table?); generate a DB first' % (path, index))
        root = root[0]
        total = conn.execute('SELECT COUNT(*) FROM patterns').fetchone()[0]
        if total < 10:
            raise GeneratorError('%s has only %d patterns; generate more rows first' % (path, total))
        conn.execute('CREATE TABLE zz_index_scratch (id TEXT PRIMARY KEY)')
        scratch = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_zz_index_scratch_1'"
                               ).fetchone()[0]
        conn.execute('PRAGMA writable_schema = ON')
        conn.execute('UPDATE sqlite_master SET rootpage = ? WHERE name = ?', (scratch, index))
        conn.execute('PRAGMA writable_schema = OFF')
    finally:
        conn.close()   # the next connection reads the edited schema
    rowids = sorted(rng.sample(range(1, total + 1), 5))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute('PRAGMA writable_schema = ON')   # tolerate the scratch index not holding the keys
        conn.execute('DELETE FROM patterns WHERE rowid IN (%s)' % ','.join(str(r) for r in rowids))
        conn.execute('UPDATE sqlite_master SET rootpage = ? WHERE name = ?', (root, index))
        conn.execute('PRAGMA writable_schema = OFF')
    finally:
        conn.close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute('DROP TABLE zz_index_scratch')
    finally:
        conn.close()
    return {'index': index, 'table': 'patterns', 'deleted_rowids': rowids}


# --------------------------------------------------------------------------- CLI

def main(argv=None):
    parser = argparse.ArgumentParser(description='Generate a claude-flow memory.db with chosen metrics.')
    parser.add_argument('out', help='path of the DB to write (an existing DB set there is replaced)')
    parser.add_argument('--profile', default='runbook', choices=PROFILES)
    parser.add_argument('--rows', type=int, default=10000)
    parser.add_argument('--preset', choices=sorted(PRESETS))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--now', type=float, help='epoch seconds the metrics are relative to (default: now)')
    for flag in ('truth-score', 'cache-hit', 'stale-fraction', 'anomalous-fraction', 'ops-per-second',
                 'goap-avg-ms', 'goap-fraction', 'growth-mb-per-hour', 'weak-agent-score'):
        parser.add_argument('--' + flag, type=float)
    parser.add_argument('--agents', help='comma-separated agent names')
    parser.add_argument('--weak-agent')
    parser.add_argument('--min-size-bytes', type=int)
    parser.add_argument('--memory-entries', type=int)
    parser.add_argument('--no-wal', action='store_true', help='leave the DB in rollback-journal mode')
    parser.add_argument('--corrupt', choices=CORRUPT_MODES)
    args = parser.parse_args(argv)
    kwargs = {}
    for name in ('truth_score', 'cache_hit', 'stale_fraction', 'anomalous_fraction', 'ops_per_second',
                 'goap_avg_ms', 'goap_fraction', 'growth_mb_per_hour', 'weak_agent_score', 'agents', 'weak_agent',
                 'min_size_bytes', 'memory_entries', 'corrupt'):
        value = getattr(args, name)
        if value is not None:
            kwargs[name] = value
    if args.no_wal:
        kwargs['wal'] = False
    try:
        summary = generate(args.out, profile=args.profile, rows=args.rows, preset=args.preset, now=args.now,
                           seed=args.seed, **kwargs)
    except GeneratorError as exc:
        sys.stderr.write('memory_db_gen: error: %s\n' % exc)
        return 2
    json.dump(summary, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write('\n')
    return 0


# --------------------------------------------------------------------------- schemas

# The seed's tables, as the incident runbook queries them. Primary keys only: memory_db_optimize adds the rest.
RUNBOOK_DDL = """
CREATE TABLE patterns (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  pattern_data TEXT NOT NULL,
  confidence REAL NOT NULL DEFAULT 0.5,
  usage_count INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_used TEXT
);
CREATE TABLE task_trajectories (
  task_id TEXT PRIMARY KEY,
  agent_id TEXT NOT NULL,
  task_type TEXT NOT NULL,
  execution_time_ms REAL,
  query TEXT,
  created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE verification_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  timestamp TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  agent_name TEXT NOT NULL,
  truth_score REAL NOT NULL,
  verification_status TEXT NOT NULL
);
"""

# memory_entries as claude-flow 2.x hooks create it (src/memory sqlite store): epoch-second integers.
REASONINGBANK_HOOKS_DDL = """
CREATE TABLE IF NOT EXISTS memory_entries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  namespace TEXT NOT NULL DEFAULT 'default',
  metadata TEXT,
  created_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now')),
  updated_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now')),
  accessed_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now')),
  access_count INTEGER NOT NULL DEFAULT 0,
  ttl INTEGER,
  expires_at INTEGER,
  UNIQUE(key, namespace)
);
CREATE INDEX IF NOT EXISTS idx_memory_namespace ON memory_entries(namespace);
CREATE INDEX IF NOT EXISTS idx_memory_expires ON memory_entries(expires_at);
CREATE INDEX IF NOT EXISTS idx_memory_accessed ON memory_entries(accessed_at);
"""

REFERENCE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'fixtures',
                             'claude-flow-reference')


def _reference_ddl(name):
    """`sqlite3 .swarm/memory.db .schema` as captured from a real claude-flow release (tests/fixtures).

    The sqlite3 shell prints a `/* view(columns) */` line after each view that is not part of the
    stored SQL (it adds it again when printing this DB's schema): dropped here.
    """
    with open(os.path.join(REFERENCE_DIR, name)) as handle:
        text = handle.read()
    return re.sub(r'\n/\* \w+\([^)]*\) \*/;', ';', text)


# claude-flow 2.7.47 after `memory store`; claude-flow 3.43.0 after `memory init`, `memory store`,
# `neural train` (39 tables).
REASONINGBANK_DDL = _reference_ddl('v2.7.47-memory.schema.sql')
V3_DDL = _reference_ddl('v3.43.0-memory.schema.sql')


if __name__ == '__main__':
    sys.exit(main())
