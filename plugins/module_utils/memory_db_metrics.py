# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbook's memory.db metrics, each declaring the data it needs.

A metric whose table or columns are absent, or whose source table has never
held a row, is *unavailable with a reason*: never zero, never a breach.
Rows that exist but fall outside the window are a real zero for counts; a
rate, ratio or average over no activity in the window (no lookup, fewer than
two trajectories, no planning row) is unavailable ("idle: ..."), not 0.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import os
import time

from ansible_collections.claude_flow.runbook.plugins.module_utils.memory_db import (
    RECOMMENDED_INDEXES, MemoryDbError, indexes, quote_ident, to_iso, to_native)
from ansible_collections.claude_flow.runbook.plugins.module_utils.safe_files import atomic_write_json
from ansible_collections.claude_flow.runbook.plugins.module_utils.safe_read import (
    SMALL_FILE_MAX_BYTES, UnsafeFileError, read_json_capped)

ANOMALY_LOW = 0.3
ANOMALY_HIGH = 0.95
GROWTH_SAMPLE_KEEP_S = 7 * 86400
GROWTH_MIN_SPAN_S = 60


class Unavailable(Exception):
    """Raised by a collector: the metric cannot be measured on this DB, and why."""


class Context(object):
    """What every collector needs: the open Database, the window, 'now', growth-state options."""

    def __init__(self, db, window_s, now=None, growth_state=None, record_growth=True):
        self.db = db
        self.window_s = window_s
        self.now = time.time() if now is None else now
        self.growth_state = growth_state or (db.path + '.growth.json')
        self.record_growth = record_growth
        self.growth_note = None

    def cutoff(self, source, seconds_ago):
        return to_native(self.now - seconds_ago, source.time_unit)

    def need(self, source_name, roles, populated=True):
        """The Source after checking its table/columns exist and (optionally) have ever held a row."""
        source = self.db.source(source_name)
        reason = source.missing(self.db.table_map, roles)
        if reason:
            raise Unavailable(reason)
        if populated and not self.db.has_rows(source.table):
            raise Unavailable('table %s has never held a row (the feature is not in use)' % source.table)
        return source


def ops_per_second(ctx):
    # The runbook divides by the time since the window's first row; on a steady system that is
    # the window, and dividing by the window keeps one fresh row from reading as a huge rate.
    src = ctx.need('trajectories', ['created'])
    col = src.col('created')
    count = ctx.db.scalar('SELECT COUNT(*) FROM %s WHERE %s > ?' % (quote_ident(src.table), col),
                          (ctx.cutoff(src, ctx.window_s),))
    if count < 2:
        # One operation or none is no rate: an idle host, not a slow one.
        raise Unavailable('idle: %s trajector%s in the last %d s, a rate needs at least two'
                          % (count, 'y' if count == 1 else 'ies', ctx.window_s))
    return round(float(count) / ctx.window_s, 6)


def cache_hit_rate(ctx):
    src = ctx.need('patterns', ['usage', 'last_used'])
    usage, last_used = src.col('usage'), src.col('last_used')
    value, recent = ctx.db.query(
        'SELECT ROUND(100.0 * SUM(CASE WHEN %s > ? THEN %s ELSE 0 END) / NULLIF(SUM(%s), 0), 2), '
        'SUM(CASE WHEN %s > ? THEN 1 ELSE 0 END) FROM %s'
        % (last_used, usage, usage, last_used, quote_ident(src.table)),
        (ctx.cutoff(src, ctx.window_s), ctx.cutoff(src, ctx.window_s)))[0]
    if value is None:
        raise Unavailable('no pattern in %s has been used yet (usage is 0 everywhere)' % src.table)
    if not recent:
        # No lookup in the window: nothing hit or missed, so there is no hit rate (not a rate of 0).
        raise Unavailable('idle: no pattern lookup in the last %d s' % ctx.window_s)
    return value


def truth_score_avg(ctx):
    src = _verifications(ctx)
    value = ctx.db.scalar('SELECT AVG(%s) FROM %s WHERE %s > ?' % (
        src.col('score'), quote_ident(src.table), src.col('time')), (ctx.cutoff(src, ctx.window_s),))
    if value is None:
        raise Unavailable('idle: no verification in the last %d s' % ctx.window_s)
    return round(value, 6)


def truth_agents(ctx):
    src = _verifications(ctx)
    rows = ctx.db.query(
        'SELECT %s, AVG(%s), COUNT(*) FROM %s WHERE %s > ? GROUP BY %s ORDER BY AVG(%s) ASC' % (
            src.col('agent'), src.col('score'), quote_ident(src.table), src.col('time'), src.col('agent'),
            src.col('score')), (ctx.cutoff(src, ctx.window_s),))
    if not rows:
        raise Unavailable('idle: no verification in the last %d s' % ctx.window_s)
    return [{'agent': agent, 'score': round(score, 6), 'verifications': count} for agent, score, count in rows]


def _verifications(ctx):
    try:
        return ctx.need('verifications', ['time', 'agent', 'score'])
    except Unavailable as exc:
        if 'does not exist' in str(exc):
            raise Unavailable('%s; claude-flow keeps truth scores in .swarm/verification-memory.json '
                              '(use claude_flow.runbook.truth_info)' % exc)
        raise


def patterns_by_type(ctx):
    src = ctx.need('patterns', ['type', 'confidence', 'usage'])
    rows = ctx.db.query(
        'SELECT %s, COUNT(*), ROUND(AVG(confidence), 3), ROUND(AVG(%s), 1) FROM %s GROUP BY %s '
        'ORDER BY AVG(%s) ASC' % (src.col('type'), src.col('usage'), quote_ident(src.table), src.col('type'),
                                  src.col('usage')))
    return [{'type': t, 'count': c, 'avg_confidence': conf, 'avg_usage': usage} for t, c, conf, usage in rows]


def anomalous_patterns(ctx, limit=20):
    src = ctx.need('patterns', ['id', 'type', 'confidence', 'created'])
    table = quote_ident(src.table)
    where = 'confidence < ? OR confidence > ?'
    count = ctx.db.scalar('SELECT COUNT(*) FROM %s WHERE %s' % (table, where), (ANOMALY_LOW, ANOMALY_HIGH))
    rows = ctx.db.query('SELECT %s, %s, %s, confidence FROM %s WHERE %s ORDER BY %s DESC LIMIT ?' % (
        src.col('id'), src.col('created'), src.col('type'), table, where, src.col('created')),
        (ANOMALY_LOW, ANOMALY_HIGH, limit))
    return {'count': count, 'low': ANOMALY_LOW, 'high': ANOMALY_HIGH,
            'recent': [{'id': i, 'created_at': to_iso(created, src.time_unit), 'type': t, 'confidence': conf}
                       for i, created, t, conf in rows]}


def goap_planning(ctx):
    src = ctx.need('trajectories', ['created', 'task_type', 'exec_ms'])
    avg_ms, max_ms, count = ctx.db.query(
        "SELECT AVG(%s), MAX(%s), COUNT(*) FROM %s WHERE %s = 'goap_planning' AND %s > ?" % (
            src.col('exec_ms'), src.col('exec_ms'), quote_ident(src.table), src.col('task_type'), src.col('created')),
        (ctx.cutoff(src, ctx.window_s),))[0]
    if not count:
        raise Unavailable('idle: no goap_planning trajectory in the last %d s' % ctx.window_s)
    return {'avg_ms': round(avg_ms, 3), 'max_ms': max_ms, 'count': count}


def patterns_created_24h(ctx):
    src = ctx.need('patterns', ['created'])
    return ctx.db.scalar('SELECT COUNT(*) FROM %s WHERE %s > ?' % (quote_ident(src.table), src.col('created')),
                         (ctx.cutoff(src, 86400),))


def db_size_bytes(ctx):
    return os.path.getsize(ctx.db.path)


def wal_size_bytes(ctx):
    wal = ctx.db.path + '-wal'
    return os.path.getsize(wal) if os.path.exists(wal) else 0


def growth_bytes_per_hour(ctx):
    """Growth of db+wal between the oldest kept sample and now; keeps samples in a small state file."""
    size = db_size_bytes(ctx) + wal_size_bytes(ctx)
    try:
        state = read_json_capped(ctx.growth_state, SMALL_FILE_MAX_BYTES, what='growth state',
                                 default={'samples': []})
        samples = [s for s in state.get('samples', []) if ctx.now - float(s['ts']) <= GROWTH_SAMPLE_KEEP_S]
    except (ValueError, KeyError, TypeError, AttributeError, UnsafeFileError, OSError) as exc:
        raise Unavailable('growth state %s is unreadable (%s); delete it to start sampling again'
                          % (ctx.growth_state, exc))
    previous = [s for s in samples if ctx.now - float(s['ts']) >= GROWTH_MIN_SPAN_S]
    if ctx.record_growth:
        try:
            atomic_write_json(ctx.growth_state, {'samples': (samples + [{'ts': ctx.now, 'size_bytes': size}])[-500:]})
        except OSError as exc:
            ctx.growth_note = 'sample not recorded: %s' % exc
    if not previous:
        raise Unavailable('needs an earlier size sample at least %d s old in %s; this run recorded one'
                          % (GROWTH_MIN_SPAN_S, ctx.growth_state))
    # Growth over the last hour when a sample covers it, else over the longest span available.
    hour = [s for s in previous if ctx.now - float(s['ts']) <= 3600]
    base = min(hour or previous, key=lambda s: float(s['ts']))
    span_h = (ctx.now - float(base['ts'])) / 3600.0
    return round((size - int(base['size_bytes'])) / span_h, 1)


def index_report(ctx):
    present = indexes(ctx.db.conn)
    have = set((i['table'], tuple(i['columns'])) for i in present)
    missing = []
    for name, table, columns in RECOMMENDED_INDEXES.get(ctx.db.profile, []):
        if table not in ctx.db.table_map:
            continue
        if not any(t == table and cols[:len(columns)] == tuple(columns) for t, cols in have):
            missing.append({'name': name, 'table': table, 'columns': columns})
    return {'present': [i['name'] for i in present], 'recommended_missing': missing}


def schema_profile(ctx):
    return ctx.db.profile


COLLECTORS = {
    'ops_per_second': ops_per_second,
    'cache_hit_rate': cache_hit_rate,
    'truth_score_avg': truth_score_avg,
    'truth_agents': truth_agents,
    'patterns_by_type': patterns_by_type,
    'anomalous_patterns': anomalous_patterns,
    'goap_planning': goap_planning,
    'db_size_bytes': db_size_bytes,
    'wal_size_bytes': wal_size_bytes,
    'growth_bytes_per_hour': growth_bytes_per_hour,
    'patterns_created_24h': patterns_created_24h,
    'indexes': index_report,
    'schema_profile': schema_profile,
}


def select_subsets(gather):
    """postgresql_info-style selection: names, shell wildcards, and '!name' exclusions; 'all' = everything."""
    names = sorted(COLLECTORS)
    include = [g for g in gather if not g.startswith('!')] or ['all']
    exclude = [g[1:] for g in gather if g.startswith('!')]
    chosen = []
    for pattern in include + exclude:
        if pattern != 'all' and not fnmatch.filter(names, pattern):
            raise MemoryDbError('gather subset %r matches nothing; choose from: %s' % (pattern, ', '.join(names)))
    for name in names:
        wanted = any(p == 'all' or fnmatch.fnmatchcase(name, p) for p in include)
        if wanted and not any(fnmatch.fnmatchcase(name, p) for p in exclude):
            chosen.append(name)
    return chosen


def collect(ctx, subsets):
    """Run the chosen collectors. Returns (metrics, unavailable) with unavailable = {metric: reason}."""
    metrics, unavailable = {}, {}
    for name in subsets:
        try:
            metrics[name] = COLLECTORS[name](ctx)
        except Unavailable as exc:
            metrics[name] = None
            unavailable[name] = str(exc)
    return metrics, unavailable
