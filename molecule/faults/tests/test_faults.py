# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scenario faults: the recorded outcomes of the fault-injection suite, and the hosts after it."""

import json
import os

import pytest

import verify_lib as v

OUTCOMES = os.path.join(v.REPO, 'tests', 'output', 'faults.json')


@pytest.fixture(scope='module')
def cases():
    with open(OUTCOMES) as handle:
        return json.load(handle)['cases']


def test_matrix_has_at_least_30_cases(cases):
    assert len(cases) >= 30, len(cases)
    areas = {'memory.db', 'backups', 'rollback', 'CLI', 'process', 'input', 'secrets'}
    assert {case['area'] for case in cases} >= areas


def test_no_case_failed(cases):
    failed = ['%s: %s' % (case['id'], case['detail']) for case in cases if case['status'] not in
              ('passed', 'known gap', 'gap fixed')]
    assert failed == []


def test_no_prior_db_byte_lost(cases):
    lost = {case['id']: case['prior_bytes_lost'] for case in cases if case['prior_bytes_lost']}
    assert lost == {}


def test_no_secret_hit(cases):
    hits = {case['id']: case['secret_hits'] for case in cases if case['secret_hits']}
    assert hits == {}
    assert any(case['secret_hits'] == 0 for case in cases), 'no case measured the secret'


def test_no_half_done_restore_left(host, cases):
    """No restore journal and no temp file of the collection beside any DB on the host, unless a known
    gap recorded on that host explains it (e.g. a stuck lock kept the next run from finishing)."""
    name = v.name_of(host)
    gaps = [case['id'] for case in cases if case['status'] == 'known gap' and name in (case.get('hosts') or [])]
    try:
        out = host.run("find /opt /var/lib/claude-flow-runbook -name '*.restore-journal.json' -o -name '.*.tmp'").stdout
    except RuntimeError as exc:
        # e.g. the host whose /etc/passwd a playbook replaced (a known gap) no longer lets ssh in
        if gaps:
            pytest.skip('%s is unreachable (%s); explained by the known gap(s) %s' % (name, str(exc)[-120:], gaps))
        raise
    if out.strip() and gaps:
        pytest.skip('%s holds %s; explained by the known gap(s) %s' % (name, out.split(), gaps))
    assert out.strip() == ''


def test_playbook_cases_ran_their_check_mode_twins(cases):
    """Every playbook-level case that ran a response recorded how its --check twin agreed with it (a
    check-mode gap is a known gap, named in the case's detail)."""
    missing = [case['id'] for case in cases if case['level'] == 'lab' and case['status'] == 'passed'
               and not case.get('check')]
    assert missing == []
    assert sum(1 for case in cases if case.get('check')) >= 30
