"""Shared fixtures: run a real module as a real process, find the collection, make DBs."""

import json
import os
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, '.collections')
sys.path.insert(0, COLLECTIONS)
sys.path.insert(0, os.path.join(REPO, 'tests', 'lab'))


def run_module(name, args, check_mode=False, env=None, timeout=120):
    """Execute plugins/modules/<name>.py the way Ansible does (args file), return its JSON result.

    The result dict gets '_rc' (process exit code) and, when the output is not JSON,
    '_raw' with stdout+stderr so a traceback fails the test visibly.
    """
    module_args = dict(args)
    module_args['_ansible_check_mode'] = check_mode
    module_args.setdefault('_ansible_remote_tmp', tempfile.gettempdir())
    module_args.setdefault('_ansible_tmpdir', None)
    fd, args_path = tempfile.mkstemp(suffix='.json')
    with os.fdopen(fd, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': module_args}, handle)
    run_env = dict(os.environ)
    run_env['PYTHONPATH'] = COLLECTIONS + os.pathsep + run_env.get('PYTHONPATH', '')
    run_env.update(env or {})
    module_file = os.path.join(REPO, 'plugins', 'modules', name + '.py')
    try:
        proc = subprocess.run([sys.executable, module_file, args_path], capture_output=True, text=True,
                              env=run_env, timeout=timeout, check=False)
    finally:
        os.unlink(args_path)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = {'failed': True, '_raw': proc.stdout + proc.stderr}
    result['_rc'] = proc.returncode
    assert 'Traceback' not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return result


@pytest.fixture
def module():
    return run_module
