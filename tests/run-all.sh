#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it. Each phase runs even when an earlier one
# failed, so one run shows every problem; the exit code is non-zero when any phase failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
export PATH="$PWD/.venv/bin:$PATH"
export PYTHONDONTWRITEBYTECODE=1
mkdir -p tests/output

passed=0; failed=0; failed_names=()
phase() {
  local name=$1; shift
  local start=$SECONDS
  echo "=== phase: $name"
  if "$@"; then
    passed=$((passed + 1)); echo "=== phase $name: passed in $((SECONDS - start)) s"
  else
    failed=$((failed + 1)); failed_names+=("$name"); echo "=== phase $name: FAILED in $((SECONDS - start)) s"
  fi
}

# pytest's exit code 5 (no tests collected) is a failure here: nothing is allowed to pass by not running.
pytest_phase() { python -m pytest -p no:cacheprovider -q "$@"; }

# A sqlite3 CLI whose .recover works (Debian's has no dbpage), so memory_db_recover's CLI path is tested;
# exported for every later phase (the version matrix runs the unit tests again).
unit_phase() {
  SQLITE3_RECOVER_BINARY=$(bash tests/ci/sqlite3-recover.sh) || return 1
  export SQLITE3_RECOVER_BINARY
  pytest_phase tests/unit
}

# A phase script that is missing or lost its exec bit fails its phase (it is never dropped silently).
script_phase() {
  local name=$1 script=$2; shift 2
  if [ ! -f "$script" ]; then
    phase "$name" missing_phase "$script"
  elif [ ! -x "$script" ]; then
    phase "$name" not_executable "$script"
  else
    phase "$name" bash "$script" "$@"
  fi
}
missing_phase() { echo "$1 does not exist" >&2; return 1; }
not_executable() { echo "$1 is not executable (chmod +x $1; git update-index --chmod=+x $1)" >&2; return 1; }
# A test directory that is gone fails its phase too.
dir_phase() {
  local name=$1 dir=$2
  if [ -d "$dir" ]; then phase "$name" pytest_phase "$dir"; else phase "$name" missing_phase "$dir"; fi
}

phase unit unit_phase
dir_phase ci-scripts tests/ci
script_phase lint tests/ci/lint.sh
script_phase sanity tests/ci/sanity.sh
script_phase versions tests/ci/versions.sh
script_phase environments tests/ci/environments.sh
dir_phase lab tests/lab_tests
# The fault matrix (tests/faults) runs once, inside the molecule `faults` scenario on that scenario's
# 14 lab hosts, which records tests/output/faults.json for docs/reliability.md.
script_phase molecule tests/ci/molecule.sh
dir_phase eda tests/eda
dir_phase monitoring tests/monitoring
dir_phase real-cli tests/real_cli   # real claude-flow releases (installed once, then cached)
script_phase newcomer tests/newcomer/run.sh
script_phase bench-smoke bench/run.sh --smoke

echo
if [ "$failed" -gt 0 ]; then echo "failed phases: ${failed_names[*]}"; fi
echo "phases: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
