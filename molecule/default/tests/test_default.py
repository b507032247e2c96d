# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scenario default: lab1 had its live memory.db corrupted; p0_response.yml ran."""

import verify_lib as v


def test_service_is_back_and_healthy(host):
    assert host.service(v.SERVICE).is_running
    assert v.health(host) == 200


def test_live_db_passes_integrity_check(host):
    assert v.integrity(host) == 'ok'


def test_corrupted_db_bytes_are_preserved(host):
    """0 bytes of prior state lost: the corrupted file, byte for byte, is in the preserve dir."""
    path, digest = v.live_db_before(v.name_of(host))
    assert digest in v.preserved_sha256(host), 'no preserved copy of %s (sha256 %s)' % (path, digest)


def test_other_releases_untouched(host):
    """The DB sets of releases the response did not work on keep their bytes."""
    record = v.before(v.name_of(host))
    live_release = record['link'] + '/'
    now = v.release_files(host)
    for path, digest in record['files'].items():
        if not path.startswith(live_release):
            assert now.get(path) == digest, path


def test_incident_report_written(host):
    reports = host.run('ls %s', v.INCIDENTS).stdout.split()
    markdown = [name for name in reports if name.startswith('incident-') and name.endswith('.md')]
    assert markdown, reports
    text = host.file('%s/%s' % (v.INCIDENTS, sorted(markdown)[-1])).content_string
    assert 'P0' in text


def test_remediation_lock_released(host):
    assert not host.file(v.GUARD_LOCK).exists


def test_people_were_told():
    assert v.payloads('/slack/'), 'no Slack message reached the receiver'
    assert v.payloads('/pagerduty/'), 'no PagerDuty event reached the receiver'


def test_no_secret_in_any_output_log_or_report():
    assert v.secret_hits() == []
