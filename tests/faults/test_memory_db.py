# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault matrix, memory.db and backups: real SQLite files damaged the way disks, copies and people
damage them; the modules run as real processes. Each case must end in a correct remediation or a
clear failure, and lose no byte of the DB set that existed before it."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest

# run_module: each real run preceded by its check-mode twin
from conftest import REPO, PriorState, check_module, gen, integrity, make_db, record_check, run_module, sha256

DETECTION = {'missing': 'db_missing'}


@pytest.fixture
def app(tmp_path, fault):
    """An app dir with a healthy live DB and one verified, timestamped backup of it."""
    fault.scrub(tmp_path)
    db = make_db(str(tmp_path / 'app' / '.swarm' / 'memory.db'))
    backups = str(tmp_path / 'backups')
    taken = run_module('memory_db_backup', {'path': db, 'dest': backups, 'timestamped': True})
    assert not taken.get('failed'), taken
    return {'dir': str(tmp_path / 'app'), 'db': db, 'backups': backups, 'preserve': str(tmp_path / 'preserved'),
            'backup': taken['backup_path'], 'tmp': str(tmp_path)}


def row_counts(path):
    conn = sqlite3.connect('file:%s?immutable=1' % path, uri=True)
    try:
        tables = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {table: conn.execute('SELECT COUNT(*) FROM "%s"' % table).fetchone()[0] for table in tables}
    finally:
        conn.close()


def first_error(result):
    errors = result.get('errors') or [result.get('msg', '')]
    return str(errors[0]).splitlines()[-1] if errors else ''


CORRUPTIONS = [
    ('overwritten_pages', 'Overwritten pages (4 pages of garbage in the live file)'),
    ('truncated', 'Truncated file (cut to half its declared size)'),
    ('zero_length', 'Zero-length file'),
    ('not_a_database', 'Not a database (the file was overwritten by something else)'),
    ('stale_wal', 'Stale -wal from another DB beside the file'),
    ('index_mismatch', 'Index/table mismatch (index entries of deleted rows)'),
    ('missing', 'Missing file (the DB is gone, its -wal/-shm left)'),
]


@pytest.mark.fault('memory.db', 'damaged live DB')
@pytest.mark.parametrize('mode,title', CORRUPTIONS, ids=[case[0] for case in CORRUPTIONS])
def test_damaged_db_is_detected_and_restored(app, fault, mode, title):
    fault.title = title
    db = app['db']
    backup_rows = row_counts(app['backup'])
    if mode == 'missing':
        # what is left when the file is deleted under a WAL-mode app: the sidecars
        conn = sqlite3.connect(db)
        conn.execute('PRAGMA journal_mode=WAL')
        conn.execute('SELECT COUNT(*) FROM patterns').fetchone()
        os.unlink(db)
        conn.close()
        for suffix in ('-wal', '-shm'):
            open(db + suffix, 'ab').close()
    else:
        gen.corrupt(db, mode)
    prior = PriorState(db)

    check = run_module('memory_db_check', {'path': db, 'mode': 'full'})
    assert check['_rc'] == 0 and check['ok'] is False and check['errors'], check
    triage = run_module('triage', {'path': db, 'app_dir': app['dir'], 'health_url': '', 'window': '1h'})
    assert triage['_rc'] == 0, triage
    flagged = [reason['metric'] for reason in triage['reasons'] if reason['severity'] == 'P0']

    restore = run_module('memory_db_restore', {'path': db, 'backup_dir': app['backups'],
                                               'preserve_dir': app['preserve']})
    assert restore['_rc'] == 0 and restore['changed'], restore
    assert integrity(db) == 'ok'
    assert row_counts(db) == backup_rows
    lost = prior.lost(app['preserve'])
    fault.lost(lost)
    assert lost == 0
    detected = DETECTION.get(mode, 'db_corrupt') in flagged
    fault.did('memory_db_check (integrity_check): "%s"; triage: %s; memory_db_restore: newest verified backup '
              'restored (%d files of the old set preserved with sha256), integrity_check ok, row counts equal the '
              'backup' % (fault.clip(first_error(check), 140), ('P0 ' + ', '.join(flagged)) if detected else
                          'NOT flagged as corrupt (its quick_check passes)', len(restore['preserved']['files'])))
    assert detected, 'triage did not flag %s as P0 (%s): %s' % (mode, flagged, triage['details']['integrity'])


class Writer(object):
    """A real process that holds the DB open and keeps writing, like the production app."""

    def __init__(self, db):
        code = ('import sqlite3, sys, time\n'
                'c = sqlite3.connect(sys.argv[1], isolation_level=None)\n'
                'c.execute("PRAGMA journal_mode=WAL")\n'
                'c.execute("CREATE TABLE IF NOT EXISTS fault_writer(t REAL)")\n'
                'print("ready", flush=True)\n'
                'while True:\n'
                '    c.execute("INSERT INTO fault_writer VALUES (?)", (time.time(),))\n'
                '    time.sleep(0.05)\n')
        self.proc = subprocess.Popen([sys.executable, '-c', code, db], stdout=subprocess.PIPE,
                                     universal_newlines=True)
        assert self.proc.stdout.readline().strip() == 'ready'

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.mark.fault('memory.db', 'DB held open by a writer (the service was not stopped)')
def test_restore_refuses_while_a_writer_holds_the_db(app, fault):
    writer = Writer(app['db'])
    try:
        time.sleep(0.3)
        # (the writer changes the DB set meanwhile: the check twins' before/after compare cannot apply)
        backup = run_module('memory_db_backup', {'path': app['db'], 'dest': app['backups'], 'timestamped': True},
                            check_state=False)
        prior = PriorState(app['db'])
        restore = run_module('memory_db_restore', {'path': app['db'], 'backup_dir': app['backups'],
                                                   'preserve_dir': app['preserve']}, check_state=False)
        still_open = writer.proc.poll() is None
    finally:
        writer.stop()
    assert backup['_rc'] == 0 and not backup.get('failed'), backup
    assert restore['_rc'] == 1 and restore['failed'], restore
    assert str(writer.proc.pid) in restore['msg'], restore['msg']
    assert still_open
    # refused before anything was touched: the set is as it was (the writer's own later writes aside)
    fault.lost(0 if os.path.exists(app['db']) and integrity(app['db']) == 'ok' else prior.lost())
    assert integrity(app['db']) == 'ok'
    fault.did('memory_db_backup: consistent online backup taken while the writer ran (backup API); '
              'memory_db_restore refused: "%s"' % fault.clip(restore['msg'], 220))


def _mount_tmpfs(path, size):
    os.makedirs(path)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%s,mode=0755' % size, 'faults', path], check=True)


def _umount(path):
    subprocess.run(['umount', '-l', path], check=False)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason='mounting a tmpfs needs root (CI runs as root)')


@needs_root
@pytest.mark.fault('memory.db', 'Read-only filesystem under the DB')
def test_read_only_filesystem_fails_clearly(tmp_path, fault):
    fault.scrub(tmp_path)
    mnt = str(tmp_path / 'ro')
    _mount_tmpfs(mnt, '16m')
    try:
        db = make_db(os.path.join(mnt, '.swarm', 'memory.db'))
        backups = str(tmp_path / 'backups')
        assert not run_module('memory_db_backup', {'path': db, 'dest': backups, 'timestamped': True}).get('failed')
        gen.corrupt(db, 'overwritten_pages')
        prior = PriorState(db)
        subprocess.run(['mount', '-o', 'remount,ro', mnt], check=True)
        restore = run_module('memory_db_restore', {'path': db, 'backup_dir': backups,
                                                   'preserve_dir': str(tmp_path / 'preserved')})
        backup_into = run_module('memory_db_backup', {'path': make_db(str(tmp_path / 'other' / 'memory.db')),
                                                      'dest': os.path.join(mnt, 'backups')})
        lost = prior.lost(str(tmp_path / 'preserved'))
    finally:
        _umount(mnt)
    assert restore['_rc'] == 1 and restore['failed'], restore
    assert 'read-only' in restore['msg'].lower() or 'Read-only' in restore['msg'], restore['msg']
    assert backup_into['_rc'] == 1 and backup_into['failed'], backup_into
    fault.lost(lost)
    assert lost == 0
    fault.did('memory_db_restore refused: "%s"; memory_db_backup into it: "%s"'
              % (fault.clip(restore['msg'], 180), fault.clip(backup_into['msg'], 140)))


def _nobody(name, args):
    """The module as an unprivileged user (an inventory without become), via setpriv. The checkout and
    its venv may sit below a directory that user cannot enter (a CI clone under a 0700 temp dir), so the
    module runs from a world-readable copy of the collection and of ansible-core, with the system python."""
    import ansible
    stage = tempfile.mkdtemp(prefix='faults-nobody-')
    try:
        shutil.copytree(os.path.join(REPO, 'plugins'),
                        os.path.join(stage, 'ansible_collections', 'claude_flow', 'runbook', 'plugins'),
                        ignore=shutil.ignore_patterns('__pycache__'))
        shutil.copytree(os.path.dirname(ansible.__file__), os.path.join(stage, 'ansible'),
                        ignore=shutil.ignore_patterns('__pycache__'))
        subprocess.run(['chmod', '-R', 'a+rX', stage], check=True)
        return run_module(name, args, prefix=['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'],
                          clean_env={'PATH': os.environ['PATH'], 'HOME': tempfile.gettempdir(),
                                     'PYTHONPATH': stage, 'PYTHONDONTWRITEBYTECODE': '1'},
                          timeout=60, python='/usr/bin/python3', collections=stage)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


@needs_root
@pytest.mark.fault('memory.db', 'Permission denied (module run without become)')
def test_permission_denied_fails_clearly(fault):
    base = tempfile.mkdtemp(prefix='faults-perm-')
    try:
        os.chmod(base, 0o755)
        fault.scrub(base)
        db = make_db(os.path.join(base, 'app', '.swarm', 'memory.db'))
        for path in (os.path.join(base, 'app'), os.path.dirname(db)):
            os.chmod(path, 0o755)
        os.chmod(db, 0o644)
        prior = PriorState(db)
        backup = _nobody('memory_db_backup', {'path': db, 'dest': os.path.join(base, 'backups')})
        restore = _nobody('memory_db_restore', {'path': db, 'src': db + '.nosuch', 'preserve_dir':
                                                os.path.join(base, 'preserved')})
        lost = prior.lost()
        made = os.path.exists(os.path.join(base, 'backups'))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert backup['_rc'] == 1 and backup['failed'], backup
    assert not made
    assert restore['_rc'] == 1 and restore['failed'], restore
    fault.lost(lost)
    assert lost == 0
    fault.did('memory_db_backup as an unprivileged user failed: "%s"; nothing written' % fault.clip(backup['msg'], 220))
    assert 'permission denied' in backup['msg'] and 'become: true' in backup['msg'], \
        'the failure does not say why (permissions) or what to do (become: true): %s' % backup['msg']


@needs_root
@pytest.mark.fault('memory.db', 'Disk full during backup (a 1 MiB tmpfs as the destination)')
def test_disk_full_during_backup(tmp_path, fault):
    fault.scrub(tmp_path)
    db = make_db(str(tmp_path / 'app' / '.swarm' / 'memory.db'), rows=12000)
    assert os.path.getsize(db) > 1 << 20
    prior = PriorState(db)
    mnt = str(tmp_path / 'small')
    _mount_tmpfs(mnt, '1m')
    try:
        backup = run_module('memory_db_backup', {'path': db, 'dest': mnt, 'timestamped': True})
        left = sorted(os.path.join(base, name) for base, _dirs, names in os.walk(mnt) for name in names)
    finally:
        _umount(mnt)
    assert backup['_rc'] == 1 and backup['failed'], backup
    assert 'free' in backup['msg'] or 'space' in backup['msg'], backup['msg']
    assert left == [], 'a partial backup was left behind: %s' % left
    assert integrity(db) == 'ok'
    lost = prior.lost()
    fault.lost(lost)
    assert lost == 0
    fault.did('memory_db_backup refused before writing: "%s"; no partial file left, source untouched'
              % fault.clip(backup['msg'], 220))


@needs_root
@pytest.mark.fault('memory.db', 'Disk full during backup: the space goes while the copy is written')
def test_disk_fills_up_while_the_backup_is_written(tmp_path, fault):
    """The free-space check passes; once the backup has started writing, another writer takes the rest
    of the space, so the copy itself hits ENOSPC."""
    fault.scrub(tmp_path)
    db = make_db(str(tmp_path / 'app' / '.swarm' / 'memory.db'), rows=60000)
    size = os.path.getsize(db)
    prior = PriorState(db)
    mnt = str(tmp_path / 'small')
    _mount_tmpfs(mnt, str(size * 2 + (1 << 20)))
    filler = os.path.join(mnt, 'other-tenant.bin')
    state = {'stop': False, 'started': False}

    def fill():
        # waits for the backup's first file (its temp copy) in the destination, then takes all the space
        def files():
            return [name for _base, _dirs, names in os.walk(mnt) for name in names]
        while not state['stop'] and not files():
            time.sleep(0.0002)
        state['started'] = files()
        with open(filler, 'wb') as handle:
            while not state['stop']:
                try:
                    handle.write(b'\0' * 65536)
                    handle.flush()
                except OSError:
                    time.sleep(0.001)

    import threading
    thread = threading.Thread(target=fill)
    try:
        thread.start()
        backup = run_module('memory_db_backup', {'path': db, 'dest': mnt, 'timestamped': True},
                            runtime='the disk fills up while the copy is written')
        state['stop'] = True
        thread.join()
        left = sorted(os.path.relpath(os.path.join(base, name), mnt) for base, _dirs, names in os.walk(mnt)
                      for name in names if name != 'other-tenant.bin')
    finally:
        state['stop'] = True
        _umount(mnt)
    assert state['started']
    assert backup['_rc'] == 1 and backup['failed'], backup
    assert left == [], 'partial backup left: %s' % left
    lost = prior.lost()
    fault.lost(lost)
    assert lost == 0 and integrity(db) == 'ok'
    fault.did('memory_db_backup failed mid-copy: "%s"; its temp file removed, no backup half-written, source '
              'untouched' % fault.clip(backup['msg'], 220))


# ------------------------------------------------------------------------------------ backups

@pytest.mark.fault('backups', 'No backup at all')
def test_no_backup_at_all(tmp_path, fault):
    fault.scrub(tmp_path)
    db = make_db(str(tmp_path / 'app' / '.swarm' / 'memory.db'))
    gen.corrupt(db, 'overwritten_pages')
    os.makedirs(str(tmp_path / 'backups'))
    prior = PriorState(db)
    restore = run_module('memory_db_restore', {'path': db, 'backup_dir': str(tmp_path / 'backups'),
                                               'preserve_dir': str(tmp_path / 'preserved')})
    assert restore['_rc'] == 1 and restore['failed'], restore
    assert 'backup' in restore['msg'].lower(), restore['msg']
    lost = prior.lost()
    assert lost == 0 and sha256(db) == prior.files[db][0], 'the damaged DB was changed without a backup'
    # the next step the message points at: salvage with .recover into a side file
    recover = run_module('memory_db_recover', {'path': db, 'dest': str(tmp_path / 'app' / '.swarm' / 'recovered.db')})
    fault.lost(prior.lost())
    fault.did('memory_db_restore refused: "%s"; live DB untouched; memory_db_recover salvaged %s rows into a '
              'side file' % (fault.clip(restore['msg'], 200), sum((recover.get('tables') or {}).values())))
    assert recover['_rc'] == 0 and not recover.get('failed'), recover


def _two_backups(tmp_path):
    db = make_db(str(tmp_path / 'app' / '.swarm' / 'memory.db'))
    backups = str(tmp_path / 'backups')
    older = run_module('memory_db_backup', {'path': db, 'dest': backups, 'timestamped': True})
    time.sleep(1.1)   # one-second stamps: two backups, in order
    conn = sqlite3.connect(db)
    conn.execute("UPDATE patterns SET confidence = confidence WHERE rowid = 1")
    conn.commit()
    conn.close()
    newer = run_module('memory_db_backup', {'path': db, 'dest': backups, 'timestamped': True})
    assert not older.get('failed') and not newer.get('failed'), (older, newer)
    return db, backups, _path_of(older), _path_of(newer)


def _path_of(result):
    return result['backup_path']


@pytest.mark.fault('backups', 'Newest backup corrupt: falls back to the next verified one')
def test_newest_backup_corrupt_falls_back(tmp_path, fault):
    fault.scrub(tmp_path)
    db, backups, older, newer = _two_backups(tmp_path)
    gen.corrupt(newer, 'overwritten_pages')
    gen.corrupt(db, 'zero_length')
    prior = PriorState(db)
    restore = run_module('memory_db_restore', {'path': db, 'backup_dir': backups,
                                               'preserve_dir': str(tmp_path / 'preserved')})
    assert restore['_rc'] == 0 and restore['restored_from'] == older, restore
    assert [item['path'] for item in restore['skipped_backups']] == [newer], restore['skipped_backups']
    assert integrity(db) == 'ok'
    lost = prior.lost(str(tmp_path / 'preserved'))
    fault.lost(lost)
    assert lost == 0
    fault.did('memory_db_restore skipped the newest ("%s") and restored the next verified one'
              % fault.clip(restore['skipped_backups'][0]['reason'], 160))


@pytest.mark.fault('backups', 'Manifest checksum mismatch (backup file changed after it was taken)')
def test_manifest_checksum_mismatch_is_never_accepted(tmp_path, fault):
    fault.scrub(tmp_path)
    db, backups, older, newer = _two_backups(tmp_path)
    manifest = newer + '.manifest.json'
    with open(manifest) as handle:
        data = json.load(handle)
    data['sha256'] = '0' * 64
    with open(manifest, 'w') as handle:
        json.dump(data, handle)
    gen.corrupt(db, 'not_a_database')
    prior = PriorState(db)
    restore = run_module('memory_db_restore', {'path': db, 'backup_dir': backups,
                                               'preserve_dir': str(tmp_path / 'preserved')})
    assert restore['_rc'] == 0 and restore['restored_from'] == older, restore
    assert 'sha256' in restore['skipped_backups'][0]['reason'], restore['skipped_backups']
    # and asked for by name, with allow_unverified, it is still refused
    direct = run_module('memory_db_restore', {'path': db, 'src': newer, 'allow_unverified': True,
                                              'preserve_dir': str(tmp_path / 'preserved')})
    assert direct['_rc'] == 1 and direct['failed'], direct
    lost = prior.lost(str(tmp_path / 'preserved'))
    fault.lost(lost)
    assert lost == 0
    fault.did('skipped ("%s"), the older verified backup restored; asked for by name with allow_unverified it '
              'is refused: "%s"' % (fault.clip(restore['skipped_backups'][0]['reason'], 90), fault.clip(direct['msg'], 120)))


@pytest.mark.fault('backups', 'Backup from an incompatible schema profile (claude-flow 3.x DB for a 2.7 release)')
def test_incompatible_profile_backup_is_skipped(tmp_path, fault):
    fault.scrub(tmp_path)
    db = make_db(str(tmp_path / 'app' / '.swarm' / 'memory.db'), profile='reasoningbank')
    backups = str(tmp_path / 'backups')
    good = run_module('memory_db_backup', {'path': db, 'dest': backups, 'timestamped': True})
    time.sleep(1.1)
    v3 = make_db(str(tmp_path / 'v3' / 'memory.db'), profile='v3')
    wrong = run_module('memory_db_backup', {'path': v3, 'dest': backups, 'timestamped': True})
    assert not good.get('failed') and not wrong.get('failed')
    gen.corrupt(db, 'truncated')
    prior = PriorState(db)
    restore = run_module('memory_db_restore', {'path': db, 'backup_dir': backups, 'expect_profile': 'reasoningbank',
                                               'preserve_dir': str(tmp_path / 'preserved')})
    assert restore['_rc'] == 0 and restore['restored_from'] == _path_of(good), restore
    assert 'profile' in restore['skipped_backups'][0]['reason'], restore['skipped_backups']
    assert row_counts(db).get('patterns') is not None
    lost = prior.lost(str(tmp_path / 'preserved'))
    fault.lost(lost)
    assert lost == 0
    fault.did('memory_db_restore (expect_profile=reasoningbank) skipped the newer 3.x backup ("%s") and restored '
              'the matching one' % fault.clip(restore['skipped_backups'][0]['reason'], 120))


# ------------------------------------------------------------------------------------ SIGKILL

@pytest.mark.fault('process', 'SIGKILL at 8 points during a restore (module level): old set or new, never a mix')
def test_sigkill_during_restore_leaves_old_or_new(tmp_path, fault):
    """memory_db_restore is killed with SIGKILL at increasing delays; after each kill the DB path
    holds the complete old file or the complete new one, and the next run finishes cleanly."""
    from conftest import COLLECTIONS
    fault.scrub(tmp_path)
    db = make_db(str(tmp_path / 'app' / '.swarm' / 'memory.db'), rows=20000)
    backups = str(tmp_path / 'backups')
    assert not run_module('memory_db_backup', {'path': db, 'dest': backups, 'timestamped': True}).get('failed')
    backup_rows = None
    outcomes = []
    total_lost = 0
    for attempt, delay in enumerate((0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.6)):
        gen.corrupt(db, 'overwritten_pages', seed=attempt)
        prior = PriorState(db)
        old = prior.files[db][0]
        args = {'ANSIBLE_MODULE_ARGS': {'path': db, 'backup_dir': backups, 'preserve_dir': str(tmp_path / 'preserved'),
                                        '_ansible_check_mode': False, '_ansible_remote_tmp': str(tmp_path)}}
        args_path = str(tmp_path / 'args.json')
        with open(args_path, 'w') as handle:
            json.dump(args, handle)
        # the killed run's twin: nothing to compare with a run that is killed
        check_module('memory_db_restore', {key: value for key, value in args['ANSIBLE_MODULE_ARGS'].items()
                                           if not key.startswith('_')})
        record_check(('runtime-only', 'the real run is killed'))
        proc = subprocess.Popen([sys.executable, os.path.join(REPO, 'plugins', 'modules', 'memory_db_restore.py'),
                                 args_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=dict(os.environ, PYTHONPATH=COLLECTIONS))
        time.sleep(delay)
        proc.kill()
        proc.communicate()
        now = sha256(db) if os.path.exists(db) else None
        state = integrity(db) if now else 'missing'
        if now == old:
            seen = 'old'
        elif state == 'ok':
            seen = 'new'
            backup_rows = backup_rows or row_counts(db)
        else:
            seen = 'MIX: %s' % state[:80]
        outcomes.append(seen)
        rerun = run_module('memory_db_restore', {'path': db, 'backup_dir': backups,
                                                 'preserve_dir': str(tmp_path / 'preserved')})
        assert rerun['_rc'] == 0, rerun
        assert integrity(db) == 'ok' and not os.path.exists(db + '.restore-journal.json'), rerun
        total_lost += prior.lost(str(tmp_path / 'preserved'))
    assert all(seen in ('old', 'new') for seen in outcomes), outcomes
    fault.lost(total_lost)
    assert total_lost == 0
    fault.did('after each kill the DB was %s (old = the damaged file untouched, new = the complete restored '
              'file); each next run finished or rolled back the interrupted restore, integrity ok, no journal left'
              % ', '.join(outcomes))
