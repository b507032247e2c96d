"""Run a collection module as a real process, the way Ansible runs it on a host (args file)."""

import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, '.collections')


def run_module(name, args, check_mode=False, env=None, timeout=120, prefix=None, clean_env=None, python=None,
               collections=COLLECTIONS):
    """plugins/modules/<name>.py run with args; its JSON result plus '_rc' (exit code) and '_out'
    (stdout + stderr). prefix runs it through a command (e.g. setpriv as another user); clean_env
    replaces the environment; python and collections pick another interpreter and another copy of the
    collection (a directory holding ansible_collections/). A traceback fails the calling test."""
    module_args = dict(args, _ansible_check_mode=check_mode)
    module_args.setdefault('_ansible_remote_tmp', tempfile.gettempdir())
    module_args.setdefault('_ansible_tmpdir', None)
    fd, args_path = tempfile.mkstemp(suffix='.json')
    with os.fdopen(fd, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': module_args}, handle)
    os.chmod(args_path, 0o644)   # readable by another user when prefix switches to one
    run_env = dict(clean_env if clean_env is not None else os.environ)
    run_env['PYTHONPATH'] = collections + os.pathsep + run_env.get('PYTHONPATH', '')
    run_env.update(env or {})
    module_file = os.path.join(collections, 'ansible_collections', 'claude_flow', 'runbook', 'plugins', 'modules',
                               name + '.py')
    command = list(prefix or []) + [python or sys.executable, module_file, args_path]
    try:
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                              env=run_env, timeout=timeout, check=False)
    finally:
        os.unlink(args_path)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = {'failed': True, 'msg': '(no JSON result)'}
    result['_rc'] = proc.returncode
    result['_out'] = proc.stdout + proc.stderr
    assert 'Traceback' not in result['_out'], result['_out']
    return result
