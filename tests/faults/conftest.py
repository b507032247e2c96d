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

import datetime
import json
import os
import re
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(REPO, '.collections')
LAB_PY = os.path.join(REPO, 'tests', 'lab', 'lab.py')
OUTCOMES = os.environ.get('FAULTS_OUTCOMES') or os.path.join(REPO, 'tests', 'output', 'faults.json')
sys.path.insert(0, os.path.join(REPO, 'tests', 'lab'))

import memory_db_gen as gen  # noqa: E402  (tests/lab is not a package)
from digests import sha256  # noqa: E402

_RESULTS = {}
_ORDER = {}


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


@pytest.fixture
def fault(request):
    record = Fault(request.node)
    request.node._fault_record = record
    return record


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
            'side_effects': record.side_effect_count, 'hosts': record.hosts, 'seconds': round(call.duration, 1),
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
