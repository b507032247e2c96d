# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fault-injection matrix: shared machinery.

Every test is one case of the matrix. It is marked ``@pytest.mark.fault(area, title)``, injects its
fault into real files, real processes or real lab hosts, runs the collection (modules as real
processes, playbooks with ansible-playbook), and tells the ``fault`` fixture what the collection did
and how many bytes of the prior DB state are gone (``PriorState``: every file of the DB set before
the fault's remediation, looked for afterwards by sha256 in place and in the preserve dirs). At the
end of the session every case's outcome, passed or not, is merged into the outcomes file
(tests/output/faults.json, or $FAULTS_OUTCOMES); tests/faults/render.py turns it into
docs/reliability.md.

Module-level cases need nothing but this machine. Playbook-level cases (marked ``lab``) run on lab
hosts: the ``lab`` fixture uses the lab named by $FAULTS_LAB_DIR (the molecule faults scenario passes
its own) or brings up one of its own in a state dir of its own (so it never meets another lab), and
always takes it down.
"""

import collections
import datetime
import json
import os
import re
import stat
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(REPO, '.collections')
LAB_PY = os.path.join(REPO, 'tests', 'lab', 'lab.py')
OUTCOMES = os.environ.get('FAULTS_OUTCOMES') or os.path.join(REPO, 'tests', 'output', 'faults.json')
sys.path.insert(0, os.path.join(REPO, 'tests', 'lab'))

import memory_db_gen as gen  # noqa: E402  (tests/lab is not a package)
import module_runner  # noqa: E402
from digests import sha256  # noqa: E402

_RESULTS = {}
_ORDER = {}
# The fault record of the case running now: module runs made through run_module below report their
# check-mode twin to it.
_ACTIVE = {}


# ---------------------------------------------------------------------------------------- modules

def make_db(path, rows=1500, preset='healthy', profile='runbook', **knobs):
    """A real memory.db from the project's generator (WAL mode, closed: no -wal left)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    gen.generate(path, profile=profile, rows=rows, preset=preset, **knobs)
    return path


def integrity(path):
    """PRAGMA integrity_check of a file, opened immutable (nothing written beside it)."""
    import sqlite3
    try:
        conn = sqlite3.connect('file:%s?immutable=1' % path, uri=True)
        try:
            return ';'.join(row[0] for row in conn.execute('PRAGMA integrity_check'))
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return 'error: %s' % exc


class PriorState(object):
    """The DB set (db, -wal, -shm, -journal) as it was before the fault's remediation.

    ``lost(*dirs)`` is the number of bytes of it that exist nowhere any more: a file counts as kept
    when a file with its sha256 is at its own path or anywhere under the given dirs (the preserve
    dirs). 0 means not one byte of prior state was lost."""

    def __init__(self, db_path):
        self.files = {}
        for suffix in ('', '-wal', '-shm', '-journal'):
            path = db_path + suffix
            if os.path.isfile(path):
                self.files[path] = (sha256(path), os.path.getsize(path))

    def lost(self, *dirs):
        found = set()
        for path in self.files:
            if os.path.isfile(path):
                found.add(sha256(path))
        for directory in dirs:
            for base, _dirs, names in os.walk(directory):
                for name in names:
                    found.add(sha256(os.path.join(base, name)))
        return sum(size for digest, size in self.files.values() if digest not in found)


# ---------------------------------------------------------------------------------------- outcomes

class Fault(object):
    """What one case records: what the collection did (a line for the table) and bytes lost."""

    def __init__(self, node):
        marker = node.get_closest_marker('fault')
        if marker is None:
            raise pytest.UsageError('%s: every fault case needs @pytest.mark.fault(area, title)' % node.nodeid)
        self.area, self.title = marker.args[:2]
        self.level = 'lab' if node.get_closest_marker('lab') else 'eda' if node.get_closest_marker('eda') else 'module'
        self.did_text = ''
        self.lost_bytes = None
        self.secret_hits = None
        self.side_effect_count = None
        self.hosts = None
        self.checks = []
        self._scrub = []

    def scrub(self, *paths):
        """Paths (tmp dirs ...) to replace by <dir> in the recorded text: the table stays stable."""
        self._scrub.extend(str(path) for path in paths)

    def clip(self, text, limit=200):
        """A message as it goes into the table: one line, tmp paths and times replaced, at most limit chars."""
        text = ' '.join(str(text).split())
        for path in sorted(self._scrub, key=len, reverse=True):
            text = text.replace(path, '<dir>')
        text = re.sub(r'/tmp/pytest-of-[^/]+/pytest-\d+/[^/\s\'"]+', '<dir>', text)
        text = re.sub(r'\d{8}T\d{6}Z(-\d+)?', '<time>', text)
        text = re.sub(r'INC-\d{8}-\d{6}', 'INC-<time>', text)
        text = re.sub(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z', '<time>', text)
        text = re.sub(r'pre-restore-<time>-\d+', 'pre-restore-<time>', text)
        text = re.sub(r'pid \d+', 'pid <n>', text)
        text = re.sub(r'[0-9a-f]{64}', '<sha256>', text)
        return text if len(text) <= limit else text[:limit - 3] + '...'

    def did(self, text):
        self.did_text = self.clip(text, 600)

    def lost(self, count):
        self.lost_bytes = int(count)

    def secrets(self, count):
        self.secret_hits = int(count)

    def side_effects(self, count):
        """How many injected templates had an effect (ran, rendered, wrote): 0 is the goal."""
        self.side_effect_count = int(count)

    def check_summary(self):
        """The check-mode column: what the check-mode twins of this case's runs showed."""
        if not self.checks:
            return None
        counts = collections.Counter(outcome for outcome, _text in self.checks)
        notes = sorted(set(text for _outcome, text in self.checks if text))
        return '%s%s' % (', '.join('%d %s' % (counts[key], key) for key in CHECK_OUTCOMES if counts[key]),
                         ('; ' + ' / '.join(self.clip(note, 160) for note in notes[:3])) if notes else '')


@pytest.fixture
def fault(request):
    record = Fault(request.node)
    request.node._fault_record = record
    _ACTIVE['fault'] = record
    yield record
    _ACTIVE.pop('fault', None)


# ---------------------------------------------------------------------------------------- check mode
#
# Every run of the collection a case makes is preceded by the same run in check mode on the same
# faulted state. The check run must not crash, must change nothing, and must fail when the real run
# fails, naming the same reason. Each twin is recorded on the case: 'same plan' (both ran through),
# 'same failure' (both failed for the same reason), 'runtime-only' (the real run failed on something only
# doing the action reveals, named by the case: check mode cannot see it ahead); 'check-mode case' (the
# case's run is itself in check mode).

class CheckDiverged(AssertionError):
    """A check run that did not agree with its real run (an expected gap is marked xfail(raises=...))."""


CHECK_OUTCOMES = ('same plan', 'same failure', 'runtime-only', 'check-mode case', 'diverged')
CRASH = re.compile(r'Traceback \(most recent call last\)|^ERROR! |has no attribute|\bis undefined\b|undefined variable'
                   r'|AnsibleUndefined|Unexpected failure during module execution|unhandled exception', re.M)


# A task name templated from a loop variable cannot be rendered for the header: ansible-core warns
# "Encountered 1 template error" / "error 1 - '<var>' is undefined" and prints "<< error ... >>" in the
# TASK line; the task itself runs with the variable set. Display only, the same in real runs.
NAME_WARNING = re.compile(r'^(TASK \[.*<< error \d+ - .*|error \d+ - .*)$', re.M)


def crash_in(text):
    """The first line of text that shows a crash (a traceback, an undefined variable ...), else ''."""
    text = NAME_WARNING.sub('', text or '')
    match = CRASH.search(text)
    if not match:
        return ''
    start = text.rfind('\n', 0, match.start()) + 1
    end = text.find('\n', match.end())
    return text[start:end if end >= 0 else None].strip()[:300]


def last_error(out):
    """The operator-facing error of a failed ansible-playbook run: the last [ERROR] with the line after it."""
    lines = (out or '').splitlines()
    for number in range(len(lines) - 1, -1, -1):
        if lines[number].startswith('[ERROR]'):
            text = ' '.join(line.strip() for line in lines[number:number + 3] if not line.startswith('Origin'))
            return re.sub(r'^\[ERROR\]: (Task failed: )?(Action failed: )?', '', text)
    return ''


def reason(text):
    """A failure message reduced to what must agree between check and real run: no check-mode prefix,
    no times, pids, temporary paths or incident ids, whitespace folded."""
    text = ' '.join(str(text or '').split())
    text = re.sub(r'^(would fail: )', '', text, flags=re.I)
    text = re.sub(r'/tmp/[^\s\'"]+', '<path>', text)
    text = re.sub(r'\d{8}T\d{6}Z(-\d+)?|INC-\d{8}-\d{6}(-\w+)?|\d{4}-\d\d-\d\dT[\d:.]+Z?', '<time>', text)
    text = re.sub(r'\b(pid|PID) \d+|\b\d+(\.\d+)? ?(s|ms|seconds)\b', '<n>', text)
    return text


def snapshot(paths):
    """{path: digest} of what the given paths hold: a regular file by sha256, a link by its target, other
    special files by type (never opened: a FIFO would block); a directory by everything under it."""
    found = {}

    def one(path):
        try:
            info = os.lstat(path)
        except OSError:
            found[path] = 'absent'
            return
        if stat.S_ISLNK(info.st_mode):
            found[path] = 'link:' + os.readlink(path)
        elif stat.S_ISREG(info.st_mode):
            try:
                found[path] = sha256(path)
            except OSError as exc:
                found[path] = 'unreadable: %s' % exc.strerror
        elif stat.S_ISDIR(info.st_mode):
            found[path] = 'dir %o' % stat.S_IMODE(info.st_mode)
        else:
            found[path] = 'special %o' % info.st_mode
    for root in paths:
        one(root)
        if os.path.isdir(root) and not os.path.islink(root):
            for base, dirs, names in os.walk(root):
                for name in dirs + names:
                    one(os.path.join(base, name))
    return found


def changes(before, after):
    """The paths whose digest differs. A -shm file is left out: SQLite's shared-memory index, rebuilt
    from the -wal by any reader (a read-only open of a WAL DB creates it), it holds no data."""
    return sorted(path for path in set(before) | set(after)
                  if before.get(path) != after.get(path) and not path.endswith('-shm'))


def compare_check(check_failed, check_reason, real_failed, real_reason, runtime=None):
    """(outcome, note) of a check run against its real run; AssertionError on a divergence. runtime names
    what makes the real run fail that only doing the action reveals (the case says so, check mode
    cannot see it ahead)."""
    if check_failed and not real_failed:
        raise CheckDiverged('check mode fails where the real run succeeds: "%s"' % check_reason)
    if real_failed and not check_failed:
        if runtime:
            return 'runtime-only', runtime
        raise CheckDiverged('check mode succeeds where the real run fails with "%s"' % real_reason)
    if real_failed:
        if reason(check_reason) != reason(real_reason):
            raise CheckDiverged('check mode fails for another reason than the real run:\n  check: %s\n  real:  %s' % (
                check_reason, real_reason))
        return 'same failure', ''
    return 'same plan', ''


MODULE_PATH_ARGS = ('path', 'src', 'dest', 'backup_dir', 'preserve_dir', 'app_dir', 'state_dir', 'releases_dir',
                    'log_path', 'report_dir')


def module_paths(args):
    """The files a module run may touch, from its arguments: each path and, for a file (a DB with its
    sidecars), its directory. Only paths under the temporary dir: a case's own files."""
    tmp = os.path.realpath(tempfile.gettempdir())
    paths = set()
    for key in MODULE_PATH_ARGS:
        value = args.get(key)
        if not isinstance(value, str) or not value.startswith('/'):
            continue
        paths.add(value)
        parent = os.path.dirname(value)
        if os.path.realpath(parent).startswith(tmp + os.sep) and os.path.isdir(parent):
            paths.add(parent)
    return sorted(path for path in paths if os.path.realpath(path).startswith(tmp + os.sep) or os.path.isfile(path))


def check_module(name, args, state=True, **kwargs):
    """The check-mode twin of a module run, alone: run it, assert no crash and (state=True) no change.
    Returns its result; compare it with the real result through compare_module."""
    paths = module_paths(args)
    before = snapshot(paths) if state else None
    try:
        result = module_runner.run_module(name, args, check_mode=True, **kwargs)
    except AssertionError as exc:
        raise AssertionError('%s crashed in check mode: %s' % (name, str(exc)[-2000:]))
    crash = crash_in(result.get('_out')) or crash_in(result.get('msg'))
    assert not crash, '%s crashed in check mode: %s' % (name, crash)
    if state:
        changed = changes(before, snapshot(paths))
        assert not changed, '%s in check mode changed %s' % (name, changed)
    assert result.get('_rc') is not None and result.get('msg') != '(no JSON result)', result
    return result


def record_check(outcome):
    """Add a check twin's outcome to the case running now."""
    record = _ACTIVE.get('fault')
    if record is not None:
        record.checks.append(outcome)
    return outcome


def compare_module(name, check, real, runtime=None):
    return record_check(compare_check(bool(check.get('failed')), check.get('msg'), bool(real.get('failed')),
                                      real.get('msg'), runtime))


def run_module(name, args, check_mode=False, runtime=None, check=True, check_state=True, **kwargs):
    """module_runner.run_module, preceded by the same run in check mode (see above) unless the call is
    itself in check mode or check=False (the case placed its twin itself with check_module).
    check_state=False: the case's own writer changes the files meanwhile, no before/after compare."""
    if check_mode:
        record_check(('check-mode case', ''))
    if check_mode or not check:
        return module_runner.run_module(name, args, check_mode=check_mode, **kwargs)
    twin = check_module(name, args, state=check_state, **kwargs)
    real = module_runner.run_module(name, args, **kwargs)
    try:
        compare_module(name, twin, real, runtime)
    except CheckDiverged as exc:
        raise CheckDiverged('%s: %s' % (name, exc))
    return real


def pytest_collection_modifyitems(items):
    for number, item in enumerate(items):
        _ORDER[item.nodeid] = number


def pytest_configure(config):
    config.addinivalue_line('markers', 'fault(area, title): one case of the fault-injection matrix')
    config.addinivalue_line('markers', 'lab: a playbook-level case on real lab hosts (root)')
    config.addinivalue_line('markers', 'eda: a case that sends events through the real ansible-rulebook')


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    record = getattr(item, '_fault_record', None)
    if record is None:
        return
    if report.when == 'call' or (report.when == 'setup' and report.outcome != 'passed'):
        status = report.outcome
        if hasattr(report, 'wasxfail'):
            status = 'known gap' if report.skipped else 'gap fixed'
        detail = getattr(report, 'wasxfail', '') or ''
        if report.failed:
            detail = str(report.longrepr).strip().splitlines()[-1][:300] if report.longrepr else ''
        elif report.skipped and not detail:
            detail = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _RESULTS[item.nodeid] = {
            'id': item.nodeid.split('::', 1)[-1], 'file': os.path.basename(item.nodeid.split('::')[0]),
            'area': record.area, 'title': record.title, 'level': record.level, 'status': status,
            'did': record.did_text, 'detail': ' '.join(detail.split()), 'prior_bytes_lost': record.lost_bytes,
            'secret_hits': record.secret_hits,
            'side_effects': record.side_effect_count, 'hosts': record.hosts, 'check': record.check_summary(),
            'seconds': round(call.duration, 1),
            'order': _ORDER.get(item.nodeid, 0),
            'recorded_at': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}


def pytest_sessionfinish(session):
    if not _RESULTS:
        return
    os.makedirs(os.path.dirname(OUTCOMES), exist_ok=True)
    try:
        with open(OUTCOMES) as handle:
            merged = {case['file'] + '::' + case['id']: case for case in json.load(handle)['cases']}
    except (OSError, ValueError, KeyError):
        merged = {}
    for case in _RESULTS.values():
        merged[case['file'] + '::' + case['id']] = case
    tmp = OUTCOMES + '.tmp'
    with open(tmp, 'w') as handle:
        json.dump({'cases': sorted(merged.values(), key=lambda case: (case['file'], case.get('order', 0)))}, handle, indent=1)
    os.replace(tmp, OUTCOMES)
