# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pruning and optimizing memory.db: the runbook's DELETE/VACUUM/ANALYZE/CREATE INDEX, made safe.

Deletes run in small batches, each its own transaction, so the service's
writers wait at most one batch; every value is a bound parameter.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.claude_flow.runbook.plugins.module_utils.memory_db import (
    Database, MemoryDbError, check_integrity, parse_window, quote_ident, to_native)
from ansible_collections.claude_flow.runbook.plugins.module_utils.memory_db_metrics import Context, index_report
from ansible_collections.claude_flow.runbook.plugins.module_utils.safe_files import (
    UnsafePath, check_range, free_bytes, resolve_db_path)

RULE_KEYS = ('name', 'older_than', 'usage_below', 'type', 'confidence_below', 'confidence_above')

# The runbook's own pruning statements, by the name an operator will look for.
RUNBOOK_RULES = {
    'stale_patterns': {'name': 'stale_patterns', 'older_than': '30d', 'usage_below': 5},
    'old_patterns': {'name': 'old_patterns', 'older_than': '90d', 'usage_below': 3},
    'goap_low_confidence': {'name': 'goap_low_confidence', 'type': 'goap_planning', 'confidence_below': 0.5},
}


def normalise_rules(rules):
    """Validate prune rules; a string names one of RUNBOOK_RULES. Raises MemoryDbError with the fix."""
    out = []
    for index, rule in enumerate(rules or []):
        if isinstance(rule, str):
            if rule not in RUNBOOK_RULES:
                raise MemoryDbError('rule %r is not a runbook rule; use one of %s or a dict with %s'
                                    % (rule, ', '.join(sorted(RUNBOOK_RULES)), ', '.join(RULE_KEYS)))
            rule = dict(RUNBOOK_RULES[rule])
        if not isinstance(rule, dict):
            raise MemoryDbError('rules[%d] must be a runbook rule name or a dict, got %r' % (index, rule))
        unknown = set(rule) - set(RULE_KEYS)
        if unknown:
            raise MemoryDbError('rules[%d] has unknown keys %s; allowed: %s'
                                % (index, ', '.join(sorted(unknown)), ', '.join(RULE_KEYS)))
        clean = {'name': str(rule.get('name') or 'rule%d' % index)}
        if rule.get('older_than') is not None:
            clean['older_than_s'] = parse_window(rule['older_than'])
        for key in ('usage_below', 'confidence_below', 'confidence_above'):
            if rule.get(key) is not None:
                try:
                    clean[key] = float(rule[key])
                except (TypeError, ValueError):
                    raise MemoryDbError('rules[%d].%s must be a number, got %r' % (index, key, rule[key]))
        if rule.get('type') is not None:
            clean['type'] = str(rule['type'])
        if len(clean) == 1:
            raise MemoryDbError('rules[%d] (%s) has no condition; a rule needs at least one of older_than, '
                                'usage_below, type, confidence_below, confidence_above' % (index, clean['name']))
        out.append(clean)
    if not out:
        raise MemoryDbError('no prune rules given; use e.g. rules: [stale_patterns]')
    return out


def _rule_where(rule, src, now):
    """WHERE text and bound parameters of one rule against the patterns source."""
    clauses, params = [], []
    if 'older_than_s' in rule:
        clauses.append('%s < ?' % src.col('last_used'))
        params.append(to_native(now - rule['older_than_s'], src.time_unit))
    if 'usage_below' in rule:
        clauses.append('%s < ?' % src.col('usage'))
        params.append(rule['usage_below'])
    if 'type' in rule:
        clauses.append('%s = ?' % src.col('type'))
        params.append(rule['type'])
    if 'confidence_below' in rule:
        clauses.append('confidence < ?')
        params.append(rule['confidence_below'])
    if 'confidence_above' in rule:
        clauses.append('confidence > ?')
        params.append(rule['confidence_above'])
    return ' AND '.join(clauses), params


MAX_BATCH_SIZE = 1000000
MAX_ROWS_LIMIT = 10 ** 12
MAX_BUSY_TIMEOUT_MS = 3600 * 1000


def _checked(path, **options):
    """The DB's real path (inside its own directory, a regular file) after every option is range-checked;
    options: name=(value, low, high). VACUUM and the deletes here rewrite the DB in place through SQLite's
    own transactions (no file is swapped), so SQLite's locks keep every concurrent commit."""
    for name in sorted(options):
        problem = check_range(name, *options[name])
        if problem:
            raise MemoryDbError(problem)
    try:
        return resolve_db_path(path)
    except UnsafePath as exc:
        raise MemoryDbError(str(exc))


def _require_healthy(path, busy_timeout_ms):
    check = check_integrity(path, mode='quick', busy_timeout_ms=busy_timeout_ms)
    if not check['ok']:
        raise MemoryDbError('refusing to write to %s: quick_check failed (%s); recover or restore it first'
                            % (path, '; '.join(check['errors'][:3])))


def _vacuum(db, check_mode):
    """VACUUM when there is room for the copy it makes; in check mode only say it would."""
    size = os.path.getsize(db.path)
    free = free_bytes(db.path)
    plan = {'would_run': True, 'ran': False, 'needed_bytes': size, 'free_bytes': free}
    if free < size:
        raise MemoryDbError('VACUUM needs about %d bytes free beside %s but only %d are free; free space '
                            'or run without vacuum' % (size, db.path, free))
    if check_mode:
        plan['skipped'] = 'check mode: VACUUM cannot run inside a transaction that is rolled back'
        return plan
    db.query('VACUUM')
    plan['ran'] = True
    plan['size_before'] = size
    plan['size_after'] = os.path.getsize(db.path)
    return plan


def prune(path, rules, max_rows, batch_size, vacuum=False, check_mode=False, busy_timeout_ms=5000, now=None):
    rules = normalise_rules(rules)
    path = _checked(path, batch_size=(batch_size, 1, MAX_BATCH_SIZE), max_rows=(max_rows, 0, MAX_ROWS_LIMIT),
                    busy_timeout=(busy_timeout_ms, 0, MAX_BUSY_TIMEOUT_MS))
    _require_healthy(path, busy_timeout_ms)
    now = time.time() if now is None else now
    with Database(path, readonly=check_mode, busy_timeout_ms=busy_timeout_ms) as db:
        ctx = Context(db, 3600, now=now, record_growth=False)
        roles = ['last_used', 'usage', 'type', 'id']
        src = ctx.need('patterns', roles, populated=False)
        table = quote_ident(src.table)
        counts, wheres = {}, []
        for rule in rules:
            where, params = _rule_where(rule, src, now)
            counts[rule['name']] = db.scalar('SELECT COUNT(*) FROM %s WHERE %s' % (table, where), params)
            wheres.append((where, params))
        union = ' OR '.join('(%s)' % where for where, _params in wheres)
        union_params = [value for _where, params in wheres for value in params]
        total = db.scalar('SELECT COUNT(*) FROM %s WHERE %s' % (table, union), union_params)
        result = {'matched': counts, 'total_matched': total, 'deleted': 0, 'batches': 0,
                  'schema_profile': db.profile, 'vacuum': None}
        if max_rows is not None and total > max_rows:
            raise MemoryDbError('the rules match %d rows, more than max_rows=%d; nothing was deleted. Check the '
                                'rules, or raise max_rows if this is intended' % (total, max_rows))
        if not check_mode and total:
            # Cascades keep pattern_embeddings/pattern_links consistent with the patterns removed.
            db.query('PRAGMA foreign_keys = ON')
            while True:
                db.query('BEGIN IMMEDIATE')
                try:
                    deleted_now = db.execute('DELETE FROM %s WHERE rowid IN (SELECT rowid FROM %s WHERE %s LIMIT ?)'
                                             % (table, table, union), union_params + [batch_size])
                    db.query('COMMIT')
                except MemoryDbError:
                    if db.conn.in_transaction:
                        db.conn.execute('ROLLBACK')
                    raise
                result['batches'] += 1
                result['deleted'] += deleted_now
                if deleted_now < batch_size:
                    break
        if vacuum:
            result['vacuum'] = _vacuum(db, check_mode)
        result['queries'] = db.queries
    result['changed'] = bool(result['deleted']) or bool(result['vacuum'] and result['vacuum'].get('ran'))
    if check_mode:
        result['would_delete'] = total
        result['changed'] = bool(total) or bool(vacuum)
    return result


def optimize(path, create_indexes=True, wal=True, vacuum=False, analyze='auto', check_mode=False,
             busy_timeout_ms=5000):
    path = _checked(path, busy_timeout=(busy_timeout_ms, 0, MAX_BUSY_TIMEOUT_MS))
    _require_healthy(path, busy_timeout_ms)
    with Database(path, readonly=check_mode, busy_timeout_ms=busy_timeout_ms) as db:
        ctx = Context(db, 3600, record_growth=False)
        before = index_report(ctx)
        journal = db.pragma('journal_mode')
        has_stats = 'sqlite_stat1' in [r[0] for r in db.query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")]
        actions = []
        missing = before['recommended_missing'] if create_indexes else []
        for idx in missing:
            actions.append('CREATE INDEX IF NOT EXISTS %s ON %s(%s)' % (
                quote_ident(idx['name']), quote_ident(idx['table']),
                ', '.join(quote_ident(c) for c in idx['columns'])))
        if wal and journal != 'wal':
            actions.append('PRAGMA journal_mode = WAL')
        if analyze == 'always' or (analyze == 'auto' and (missing or not has_stats)):
            actions.append('ANALYZE')
        result = {'schema_profile': db.profile, 'journal_mode_before': journal, 'indexes_created': [],
                  'actions': actions, 'vacuum': None}
        if not check_mode:
            for sql in actions:
                db.query(sql)
            result['indexes_created'] = [i['name'] for i in missing]
            # PRAGMA optimize only re-analyzes what its own heuristics say is stale: cheap and safe.
            db.query('PRAGMA optimize')
        if vacuum:
            result['vacuum'] = _vacuum(db, check_mode)
        result['journal_mode'] = db.pragma('journal_mode') if not check_mode else (
            'wal' if wal else journal)
        result['queries'] = db.queries
    result['changed'] = bool(actions) or bool(result['vacuum'] and result['vacuum'].get('ran'))
    if check_mode:
        result['would_run'] = actions
        result['changed'] = bool(actions) or bool(vacuum)
    return result
