"""The closed loop on three real lab hosts, no human step (tight intervals; see docs/monitoring.md)."""

import os
import re
import types

import pytest

from loop import DB, load_eda_helpers, run_loop

EDA = load_eda_helpers()


@pytest.fixture
def lab_hosts(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail('the lab needs root (network, PID and mount namespaces): run the suite as root')
    lab = EDA.LabHosts(tmp_path_factory.mktemp('lab'))
    try:
        lab.lab('up', '--hosts', '3')
        yield lab
    finally:
        lab.lab('down', timeout=180)


def test_fault_alert_response_healthy_resolved_closed(tmp_path, lab_hosts, record_property):
    eda = types.SimpleNamespace(RULEBOOKS=EDA.RULEBOOKS, RulebookProcess=EDA.RulebookProcess, free_port=EDA.free_port,
                                tool_env=EDA.tool_env)
    measured, facts = run_loop(lab_hosts, eda, str(tmp_path / 'loop'), profile='tight')
    for key, value in measured.items():
        record_property(key, value)
    print('\nloop (tight):', measured)
    log = facts['rulebook_log']
    assert facts['alerts_before'] == [], facts['alerts_before']
    assert re.search(r'lab3\s+: ok=\d+\s+changed=0 ', facts['deploy_again_output']), facts['deploy_again_output']
    assert measured['fault_to_incident_closed_s'] is not None, (facts['marks'], log[-6000:], facts['am_log'][-3000:])
    # lab1: exactly one P0 response (storm of repeats throttled), healthy, alert resolved, incident closed.
    lab1 = facts['lab1']
    reports = sorted(name for name in lab1 if name.startswith('incident-') and name.endswith('.md'))
    assert len(reports) == 1, lab1
    assert facts['resolved'], lab1
    closed = lab1[facts['resolved'][0]]
    assert closed['status'] == 'resolved' and closed['host'] == 'lab1', closed
    assert lab_hosts.sh('lab1', 'python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1])'
                                '.execute(\'PRAGMA integrity_check\').fetchone()[0])" ' + DB).strip() == 'ok'
    assert not any(a[1] == 'lab1' and a[2] == 'P0' for a in facts['alerts_after']), facts['alerts_after']
    # lab2: the P1 response (its P2 inhibited by the P1 in Alertmanager: no P2 response).
    lab2 = facts['lab2']
    reports2 = sorted(name for name in lab2 if name.startswith('incident-') and name.endswith('.md'))
    assert len(reports2) == 1, lab2
    assert facts['p0_runs'] == 1 and facts['p1_runs'] == 1, (facts['p0_runs'], facts['p1_runs'])
    assert facts['p2_runs'] == 0, 'a P2 response ran despite the inhibition'
    # lab3: untouched.
    assert facts['lab3'] == {}, facts['lab3']
    assert facts['lab3_db_after'] == facts['lab3_db_before']
