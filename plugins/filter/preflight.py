# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: preflight_verdict
short_description: Judge a host's layout before a run (problems with their fix, notes, layout lines)
version_added: 0.1.0
description:
  - The verdict of the C(preflight) role for one host, from what its read-only tasks found (stat results,
    backups, release directories, the unit's status, the claude-flow package, the mounts).
  - A problem is something that would make a run act on the wrong thing or fail half-way; each names its fix.
    A note is worth knowing but does not stop a run. Unknown (an unreadable package.json, no mount) is a note,
    never a problem.
options:
  _input:
    description:
      - The C(stat) results of the preflight role's first task, in its order - app dir, releases dir, DB, the
        DB's directory, backup dir, C(node_modules/claude-flow/package.json), C(node_modules/.bin/claude-flow), and
        the app dir followed (C(<app_dir>/.)).
    type: list
    elements: dict
    required: true
  settings:
    description: The layout settings, keys C(app_dir), C(releases_dir), C(db_path), C(db_backup_name), C(backup_dir), C(service_name).
    type: dict
    required: true
  found:
    description:
      - What the other tasks found, keys C(backups) (paths of the DB backups), C(releases) (release directory paths),
        C(neighbours) (databases beside a missing DB path), C(unit) (the unit's systemd status), C(vault_problem)
        (text, empty when the vault is fine), C(package) (the slurp result of package.json) and C(mounts)
        (C(ansible_facts.mounts)). Missing keys count as nothing found.
    type: dict
    default: {}
  report:
    description: The full report of playbooks/preflight.yml (layout, version, CLI, free disk) rather than the response's gate.
    type: bool
    default: false
  require_backup:
    description: A host with no DB backup anywhere has a problem (always so with O(report=true)).
    type: bool
    default: true
  host:
    description: The inventory name, quoted in the fixes.
    type: str
    default: ''
author:
  - claude_flow.runbook maintainers (!UNKNOWN)
'''

EXAMPLES = r'''
- name: Judge the host
  ansible.builtin.set_fact:
    preflight_result: >-
      {{ preflight_stat.results | map(attribute='stat') | claude_flow.runbook.preflight_verdict(settings, found,
         report=false, require_backup=true, host=inventory_hostname) }}
'''

RETURN = r'''
_value:
  description:
    - C(layout) (lines), C(problems) (each with its fix), C(notes), C(backups) (how many were found), C(version)
      (the claude-flow version, null when not read) and C(unit) (the unit's LoadState, C(not-found) when unknown).
  type: dict
'''

import base64
import json
import posixpath

from ansible.errors import AnsibleFilterError

STATS = ('app', 'releases', 'db', 'db_dir', 'backup_dir', 'package', 'cli', 'app_target')
SETTINGS = ('app_dir', 'releases_dir', 'db_path', 'db_backup_name', 'backup_dir', 'service_name')


def _version(package):
    """The claude-flow version from a slurped package.json, or None when it cannot be read."""
    if not isinstance(package, dict) or 'content' not in package:
        return None
    try:
        data = json.loads(base64.b64decode(package['content']).decode('utf-8'))
    except (ValueError, TypeError):
        return None
    return str(data.get('version', '')) if isinstance(data, dict) else None


def _free_disk(mounts, where):
    """The mount holding `where` (the longest matching mount point), or None."""
    best = None
    for mount in mounts or []:
        if not mount.get('size_total'):
            continue
        if (where + '/').startswith(mount['mount'].rstrip('/') + '/'):
            if best is None or len(mount['mount']) > len(best['mount']):
                best = mount
    return best


def _app_dir(app, target, s, host, report, out):
    if not app.get('exists'):
        out['problems'].append(
            'claude_flow_app_dir %s does not exist. Fix: set claude_flow_app_dir to the directory the service runs in (the runbook: '
            '/opt/claude-code-production, a symlink to a release in claude_flow_releases_dir)' % s['app_dir'])
    elif app.get('islnk') and not target.get('exists'):
        msg = 'claude_flow_app_dir %s points at %s, which does not exist' % (s['app_dir'], app.get('lnk_source'))
        if report:
            out['problems'].append(msg + '. Fix: a P0 response rolls back to a release with a verified backup '
                                   '(playbooks/p0_response.yml -l %s)' % host)
        else:
            out['notes'].append(msg + ': an incident, the response rolls back')
    elif app.get('islnk'):
        out['layout'].append('app dir: %s -> %s' % (s['app_dir'], app['lnk_source']))
        if not app['lnk_source'].startswith(s['releases_dir'].rstrip('/') + '/'):
            out['notes'].append(
                'the production symlink points outside claude_flow_releases_dir (%s): rollback chooses among the releases there. '
                'Fix: set claude_flow_releases_dir to the directory that holds %s' % (s['releases_dir'], app['lnk_source']))
    else:
        out['layout'].append('app dir: %s (a directory, not a symlink)' % s['app_dir'])
        out['notes'].append('claude_flow_app_dir is a plain directory: restart and DB recovery work, rollback cannot repoint it. '
                            'For rollback make it a symlink to a release directory in %s' % s['releases_dir'])


def _releases(releases, backups, dirs, s, host, report, out):
    if not releases.get('exists'):
        out['notes'].append('claude_flow_releases_dir %s does not exist: rollback has no release to go back to. '
                            'Fix: set claude_flow_releases_dir to the directory of your release directories' % s['releases_dir'])
        return
    prefix = s['releases_dir'].rstrip('/') + '/'
    with_backup = [posixpath.dirname(path) for path in backups if path.startswith(prefix)]
    line = 'releases dir: ' + s['releases_dir']
    if report:
        line += ' (%d releases, %d with %s)' % (len(dirs), len(with_backup), s['db_backup_name'])
    out['layout'].append(line)
    for directory in sorted(dirs):
        if directory not in with_backup:
            out['notes'].append('release %s has no %s: rollback never picks it. Fix: ansible-playbook playbooks/backup.yml -l %s '
                                'while it is live, or copy a verified backup there' % (directory, s['db_backup_name'], host))


def _database(st, neighbours, s, report, out):
    db, app = st['db'], st['app']
    db_dir = posixpath.dirname(s['db_path'])
    standard_dir = s['app_dir'].rstrip('/') + '/.swarm'
    if db.get('exists') and db.get('isreg'):
        out['layout'].append('DB: %s (%s bytes)' % (s['db_path'], db.get('size')))
    elif db.get('exists'):
        out['problems'].append('claude_flow_db_path %s is not a regular file. Fix: point claude_flow_db_path at the memory.db file'
                               % s['db_path'])
    elif app.get('exists') and (not app.get('islnk') or st['app_target'].get('exists')):
        if neighbours:
            out['problems'].append('claude_flow_db_path %s does not exist, but %s holds %s. Fix: set claude_flow_db_path to the '
                                   'live DB (a typo?)' % (s['db_path'], db_dir, ', '.join(neighbours)))
        elif not st['db_dir'].get('exists') and (db_dir != standard_dir or report):
            out['problems'].append('claude_flow_db_path %s: its directory %s does not exist. Fix: set claude_flow_db_path '
                                   '(default %s/memory.db)' % (s['db_path'], db_dir, standard_dir))
        elif report:
            out['problems'].append('the DB %s does not exist. Fix: if it was deleted, playbooks/p0_response.yml restores it '
                                   'from a backup; if the path is wrong, set claude_flow_db_path' % s['db_path'])
        else:
            out['notes'].append('the DB %s is missing: an incident, the response restores it' % s['db_path'])


def _claude_flow(st, found, s, report, out):
    """Version, CLI and free disk (report only): unknown is a note, never a problem."""
    version = _version(found.get('package'))
    major = version.split('.')[0] if version else ''
    if major in ('2', '3'):
        schema = ': memory.db is the ReasoningBank schema' if major == '2' else ': memory.db is the v3 schema'
        out['layout'].append('claude-flow %s (the %s.x CLI%s)' % (version, major, schema))
    elif version:
        out['notes'].append('claude-flow %s is neither 2.x nor 3.x: the CLI steps (truth, neural, quarantine) know only those' % version)
    else:
        out['notes'].append('claude-flow version unavailable: no readable %s/node_modules/claude-flow/package.json (the CLI steps '
                            'ask claude-flow --version when they run)' % s['app_dir'])
    cli = '%s/node_modules/.bin/claude-flow' % s['app_dir']
    out['layout'].append('CLI: %s %s' % (cli, 'present' if st['cli'].get('exists') else 'missing'))
    if not st['cli'].get('exists'):
        out['notes'].append('no %s: the truth, neural and quarantine steps cannot run. Fix: npm install claude-flow in the app dir' % cli)
    where = (st['app'].get('lnk_source') if st['app'].get('islnk') else s['app_dir']) or '/'
    best = _free_disk(found.get('mounts'), where)
    if best is None:
        out['notes'].append('free disk unavailable: no mount found for %s' % where)
    else:
        out['layout'].append('free disk on %s: %s%% (%d MiB)' % (
            best['mount'], round(best['size_available'] / best['size_total'] * 100, 1), int(best['size_available'] / 1048576)))
    return version


def preflight_verdict(stats, settings, found=None, report=False, require_backup=True, host=''):
    if not isinstance(stats, list) or len(stats) != len(STATS) or not all(isinstance(x, dict) for x in stats):
        raise AnsibleFilterError('preflight_verdict expects the %d stat results of the preflight role (%s), got %r'
                                 % (len(STATS), ', '.join(STATS), stats))
    missing = [key for key in SETTINGS if not isinstance((settings or {}).get(key), str)]
    if missing:
        raise AnsibleFilterError('preflight_verdict: settings need %s (strings)' % ', '.join(missing))
    st = dict(zip(STATS, stats))
    s = dict(settings)
    found = found or {}
    report = bool(report)
    out = {'layout': [], 'problems': [], 'notes': []}
    backups = list(found.get('backups') or [])

    _app_dir(st['app'], st['app_target'], s, host, report, out)
    _releases(st['releases'], backups, list(found.get('releases') or []), s, host, report, out)
    _database(st, list(found.get('neighbours') or []), s, report, out)

    out['layout'].append('DB backups: %d (%s in %s/<release>/ and %s)'
                         % (len(backups), s['db_backup_name'], s['releases_dir'], s['backup_dir']))
    if not backups and (report or require_backup):
        out['problems'].append(
            'no DB backup: no {name} in {rel}/<release>/ nor under {bak}, so rollback and restore would have nothing. Fix: check '
            'claude_flow_releases_dir, claude_flow_backup_dir and claude_flow_db_backup_name; take one now with ansible-playbook '
            'playbooks/backup.yml -l {host}; or respond without one (recovery salvages with .recover) with '
            '-e claude_flow_preflight_require_backup=false'.format(
                name=s['db_backup_name'], rel=s['releases_dir'], bak=s['backup_dir'], host=host))

    unit = found.get('unit') or {}
    load_state = unit.get('LoadState', 'not-found')
    if load_state == 'not-found':
        out['problems'].append('systemd unit %s not found on %s. Fix: set claude_flow_service_name to the unit that runs claude-flow '
                               '(systemctl list-units --type=service shows them)' % (s['service_name'], host))
    else:
        out['layout'].append('unit: %s %s/%s' % (s['service_name'], unit.get('ActiveState', '?'), unit.get('SubState', '?')))
    if (found.get('vault_problem') or '').strip():
        out['problems'].append(found['vault_problem'].strip())

    version = _claude_flow(st, found, s, report, out) if report else None
    out.update(backups=len(backups), version=version, unit=load_state)
    return out


class FilterModule(object):
    def filters(self):
        return {'preflight_verdict': preflight_verdict}
