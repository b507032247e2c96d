"""playbooks/preflight.yml on real lab hosts: a good host passes; a broken layout is named problem by problem.

The broken host is one an operator would meet on a first run: the releases directory is not where the
inventory says, the unit name is wrong and no DB backup exists anywhere. Preflight must name each of
them with its fix, fail that host, change nothing, and leave the good host passing in the same run.
"""

import os
import subprocess

import pytest

from test_lab import inside
from test_playbooks import LAB_VAULT_PASSWORD, PLAYBOOKS, Run

LAB_HOSTS = 2
pytestmark = pytest.mark.lab


def preflight(lab, lab_env, hosts, extra=()):
    cmd = ['ansible-playbook', '-i', lab.inventory, os.path.join(PLAYBOOKS, 'preflight.yml'), '-l', hosts]
    for item in extra:
        cmd += ['-e', item]
    env = dict(lab_env, ANSIBLE_VAULT_IDENTITY_LIST='lab@' + LAB_VAULT_PASSWORD)
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=600, check=False)
    return Run(proc, 0)


def test_good_host_passes_and_shows_its_layout(lab, lab_env):
    run = preflight(lab, lab_env, 'lab1')
    assert run.rc == 0, run
    assert run.recap('lab1')['failed'] == 0 and 'PROBLEM:' not in run.out, run
    for line in ('app dir: /opt/claude-code-production -> /opt/claude-code-backups/', 'unit: claude-code-production',
                 'DB backups: '):
        assert line in run.out, (line, run)


def test_broken_layout_names_every_problem_and_changes_nothing(lab, lab_env):
    # No backup anywhere: the per-release memory.db.backup files and the timestamped ones are gone.
    rc, out = inside(lab, 'lab2', 'sh', '-c', 'rm -f /opt/claude-code-backups/*/memory.db.backup; '
                                              'rm -rf /var/backups/claude-code/*; find /opt/claude-code-backups /var/backups -name memory.db.backup')
    assert rc == 0 and 'memory.db.backup' not in out, out
    listing = ('sh', '-c', 'ls -lR /opt /var/backups | md5sum')
    before = inside(lab, 'lab2', *listing)
    run = preflight(lab, lab_env, 'lab1,lab2',
                    ['claude_flow_releases_dir=/opt/claude-releases', 'claude_flow_service_name=claude-code-prod'])
    assert run.rc != 0, run
    assert run.recap('lab2')['failed'] == 1, run
    assert 'claude_flow_releases_dir /opt/claude-releases does not exist' in run.out, run
    assert 'systemd unit claude-code-prod not found on lab2. Fix: set claude_flow_service_name' in run.out, run
    assert 'no DB backup: no memory.db.backup in /opt/claude-releases/<release>/' in run.out, run
    # lab1 has its backups; with the same wrong unit name it fails for that alone.
    assert run.recap('lab1')['failed'] == 1 and 'systemd unit claude-code-prod not found on lab1' in run.out, run
    assert inside(lab, 'lab2', *listing) == before, 'preflight changed the host'
