"""Event data reaches playbooks only as data: checked on the files, without running anything.

ansible-playbook renders extra vars as templates, so the rulebooks may pass from an event only values the
source made safe by construction (event.host, event.incident_id) and the alert base64-encoded
(event.alert_b64). The AWX rulebook also keeps ansible-rulebook's raw event (ansible_eda) out of the
job; run_playbook always adds it, so no playbook, role or AWX playbook may read ansible_eda, nor a
plain incident_alert. The end-to-end proof is tests/faults/test_hostile_alerts.py.
"""

import os
import re

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULEBOOKS = [os.path.join(REPO, 'extensions', 'eda', 'rulebooks', name)
             for name in ('incident-response.yml', 'incident-response-awx.yml')]
SAFE_EVENT_VALUES = {'{{ event.host }}', '{{ event.incident_id }}', '{{ event.alert_b64 }}'}
ACTIONS = ('run_playbook', 'run_job_template', 'run_workflow_template')


def actions():
    for path in RULEBOOKS:
        with open(path) as handle:
            for ruleset in yaml.safe_load(handle):
                for rule in ruleset['rules']:
                    for name, args in rule['action'].items():
                        if name in ACTIONS:
                            yield os.path.basename(path), rule['name'], name, args


def test_rulebooks_pass_only_safe_event_values_to_playbooks():
    found = list(actions())
    assert len(found) == 10
    for rulebook, rule, name, args in found:
        extra = args.get('extra_vars') or args.get('job_args', {}).get('extra_vars')
        event_values = {value for value in extra.values() if 'event.' in value}
        assert event_values <= SAFE_EVENT_VALUES, (rulebook, rule, event_values - SAFE_EVENT_VALUES)
        assert extra['incident_alert_b64'] == '{{ event.alert_b64 }}' and 'incident_alert' not in extra
        if name != 'run_playbook':
            assert args.get('include_events') is False, (rulebook, rule, 'the raw event would reach the AWX job')


def test_no_playbook_or_role_reads_the_raw_event_or_a_plain_alert():
    pattern = re.compile(r'\bansible_eda\b|\bincident_alert\b(?!_b64)')
    offenders = []
    for top in ('playbooks', 'roles', 'awx'):
        for base, dummy, names in os.walk(os.path.join(REPO, top)):
            for name in names:
                if name.endswith(('.yml', '.yaml', '.j2')):
                    path = os.path.join(base, name)
                    with open(path) as handle:
                        for number, line in enumerate(handle, 1):
                            code = line.split('#', 1)[0]
                            # close_incident.yml's refusal names it without reading it
                            refusal = 'incident_alert is defined' in code or 'incident_alert is not accepted' in code
                            if pattern.search(code) and not refusal:
                                offenders.append('%s:%d: %s' % (os.path.relpath(path, REPO), number, line.strip()))
    assert offenders == []
