"""The CI entry points themselves: a phase cannot vanish, and every advertised make target has a rule.

* tests/run-all.sh run in a copy of the repository whose phase scripts are stand-ins: a phase script
  that lost its exec bit, or is gone, fails its phase (and the run), instead of being skipped.
* `make -n <target>` works for every .PHONY target of the Makefile (a phony name without a rule is
  "Nothing to be done", which hides a missing target).
"""

import os
import re
import shutil
import stat
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_ALL = open(os.path.join(REPO, 'tests', 'run-all.sh')).read()
# The phases as run-all.sh declares them, so a phase added there is covered here too.
SCRIPTS = re.findall(r'^script_phase \S+ (\S+)', RUN_ALL, re.M)
DIRS = re.findall(r'^dir_phase \S+ (\S+)', RUN_ALL, re.M)


def _fake_repo(tmp_path):
    """The real run-all.sh over stand-in phases that pass, a stand-in python whose pytest passes."""
    root = tmp_path / 'repo'
    (root / 'tests').mkdir(parents=True)
    shutil.copy(os.path.join(REPO, 'tests', 'run-all.sh'), str(root / 'tests' / 'run-all.sh'))
    for rel in SCRIPTS + ['tests/ci/sqlite3-recover.sh']:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('#!/bin/bash\necho "ran %s"\n' % rel)
        path.chmod(0o755)
    for rel in ['tests/unit'] + DIRS:
        (root / rel).mkdir(parents=True, exist_ok=True)
    python = root / '.venv' / 'bin' / 'python'
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/bash\necho "pytest $*"\n')
    python.chmod(0o755)
    return root


def _run_all(root):
    return subprocess.run(['bash', str(root / 'tests' / 'run-all.sh')], cwd=str(root), capture_output=True,
                          text=True, timeout=120, check=False)


def test_every_phase_runs_when_all_are_in_place(tmp_path):
    assert {'tests/ci/lint.sh', 'tests/newcomer/run.sh', 'bench/run.sh'} <= set(SCRIPTS)
    assert {'tests/lab_tests', 'tests/eda', 'tests/monitoring', 'tests/real_cli'} <= set(DIRS)
    assert 'molecule.sh' in RUN_ALL   # the molecule faults scenario runs tests/faults
    root = _fake_repo(tmp_path)
    run = _run_all(root)
    assert run.returncode == 0, run.stdout + run.stderr
    for rel in SCRIPTS:
        assert 'ran %s' % rel in run.stdout, rel
    for rel in DIRS:
        assert 'pytest -m pytest -p no:cacheprovider -q %s' % rel in run.stdout, rel


def test_a_phase_script_without_exec_bit_fails_the_run(tmp_path):
    root = _fake_repo(tmp_path)
    lint = root / 'tests' / 'ci' / 'lint.sh'
    lint.chmod(stat.S_IRUSR | stat.S_IWUSR)
    run = _run_all(root)
    assert run.returncode != 0, run.stdout
    assert '=== phase lint: FAILED' in run.stdout
    assert 'tests/ci/lint.sh is not executable' in run.stderr
    assert 'failed phases: lint' in run.stdout


def test_a_missing_phase_script_or_test_dir_fails_the_run(tmp_path):
    root = _fake_repo(tmp_path)
    os.unlink(str(root / 'tests' / 'newcomer' / 'run.sh'))
    shutil.rmtree(str(root / 'tests' / 'eda'))
    run = _run_all(root)
    assert run.returncode != 0
    assert 'failed phases: eda newcomer' in run.stdout, run.stdout


def test_every_phony_make_target_has_a_rule():
    text = open(os.path.join(REPO, 'Makefile')).read()
    phony = re.search(r'^\.PHONY:(.*)$', text, re.M).group(1).split()
    assert {'lint', 'sanity', 'bench-smoke', 'test', 'demo', 'newcomer', 'environments'} <= set(phony)
    missing = [t for t in phony if not re.search(r'^%s:' % re.escape(t), text, re.M)]
    assert not missing, 'phony targets without a rule: %s' % missing
    # make itself agrees: a dry run (-n) of each, everything considered out of date (-B), prints its
    # commands; nothing is executed.
    for target in phony:
        run = subprocess.run(['make', '-n', '-B', target], cwd=REPO,
                             capture_output=True, text=True, timeout=60, check=False)
        assert run.returncode == 0, (target, run.stderr)
        assert 'Nothing to be done' not in run.stdout + run.stderr, target
