# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scenario fleet: five hosts in mixed states went through playbooks/triage.yml once.

lab1 healthy, lab2 P3, lab3 P2, lab4 P1, lab5 P0. Each host must have been classified so and have
had only its own response: P3 and P2 change nothing on the managed system (a backlog entry, a
ticket), P1 and P0 remediate; the healthy host is untouched, byte for byte, with the same service
process (main PID and start time)."""

import json
import os
import re

import pytest

import verify_lib as v

EXPECTED = {'lab1': 'healthy', 'lab2': 'P3', 'lab3': 'P2', 'lab4': 'P1', 'lab5': 'P0'}
# Responses that change nothing on the managed system (the runbook: P2 has a workaround, P3 is a ticket).
HANDS_OFF = ('healthy', 'P3', 'P2')


def expected(host):
    return EXPECTED[v.name_of(host)]


def ansible_log():
    with open(os.path.join(v.EPHEMERAL, 'ansible.log'), errors='replace') as handle:
        return handle.read()


def jsonl(host, name):
    path = '%s/%s' % (v.INCIDENTS, name)
    if not host.file(path).exists:
        return []
    return [json.loads(line) for line in host.file(path).content_string.splitlines() if line.strip()]


def reports(host):
    names = host.run('ls %s', v.INCIDENTS).stdout.split()
    return {name: host.file('%s/%s' % (v.INCIDENTS, name)).content_string
            for name in names if name.startswith('incident-') and name.endswith('.md')}


def test_each_host_classified_as_expected(host):
    name = v.name_of(host)
    match = re.search(r'%s: (P[0-3]|\w+) -> ' % name, ansible_log())
    assert match, 'no triage result for %s in the ansible log' % name
    severity = match.group(1)
    assert (severity if severity.startswith('P') else 'healthy') == expected(host), match.group(0)


def test_hands_off_hosts_are_untouched(host):
    if expected(host) not in HANDS_OFF:
        pytest.skip('%s is remediated' % expected(host))
    before = v.before(v.name_of(host))
    assert v.release_files(host) == before['files']
    assert host.run('readlink %s', v.APP_LINK).stdout.strip() == before['link']
    assert v.service_identity(host) == (before['pid'], before['pid_start']), 'the service was restarted'


def test_only_the_matching_response_ran(host):
    severity = expected(host)
    texts = reports(host)
    backlog = [entry for entry in jsonl(host, 'backlog.jsonl') if entry.get('host') == v.name_of(host)]
    tickets = [entry for entry in jsonl(host, 'tickets.jsonl') if entry.get('host') == v.name_of(host)]
    headings = sorted(set(re.findall(r'^# (P[0-3]) ', '\n'.join(texts.values()), re.M)))
    if severity == 'healthy':
        assert not texts and not backlog and not tickets
    elif severity == 'P3':
        assert [entry['severity'] for entry in backlog] == ['P3'] and not tickets and headings == []
    elif severity == 'P2':
        assert [entry['severity'] for entry in tickets] == ['P2'] and not backlog
        assert set(headings) <= {'P2'}
    else:
        assert headings == [severity], headings
        assert not backlog and not tickets


def test_remediated_hosts_are_healthy_and_lost_nothing(host):
    severity = expected(host)
    if severity in HANDS_OFF:
        pytest.skip('not remediated')
    assert v.health(host) == 200
    assert v.integrity(host) == 'ok'
    if severity == 'P0':
        path, digest = v.live_db_before(v.name_of(host))
        assert digest in v.preserved_sha256(host), 'the corrupted %s was not preserved' % path
    if severity == 'P1':
        # P1's fix (prune + VACUUM) starts with a backup
        assert host.run('find /var/backups/claude-code -name memory.db.backup').stdout.strip(), 'no backup first'


def test_p1_host_not_fixed_is_escalated(host):
    """lab4's fix cannot hold in the lab: the report says so and a human was paged."""
    if expected(host) != 'P1':
        pytest.skip('not the P1 host')
    text = '\n'.join(reports(host).values())
    log = ansible_log()
    if 'P1 response on lab4 failed at' not in log:
        pytest.skip('the P1 fix held this time')
    assert 'Unresolved' in text, text[:2000]
    pages = [record for record in v.payloads('/slack/') if 'HUMAN NEEDED' in json.dumps(record['json'])
             and 'lab4' in json.dumps(record['json'])]
    assert pages, 'no "human needed" message for lab4'


def test_locks_released(host):
    assert not host.file(v.GUARD_LOCK).exists


def test_pages_only_for_p0_and_p1():
    paged = set()
    for record in v.payloads('/pagerduty/'):
        paged.add(record['json']['payload']['source'])
    assert paged == {'lab4', 'lab5'}, paged


def test_no_secret_in_any_output_log_or_report():
    assert v.payloads(), 'no notification was sent: the secret was never in use'
    assert v.secret_hits() == []
