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

phase unit unit_phase
[ -x tests/ci/lint.sh ] && phase lint bash tests/ci/lint.sh
[ -x tests/ci/sanity.sh ] && phase sanity bash tests/ci/sanity.sh
[ -x tests/ci/versions.sh ] && phase versions bash tests/ci/versions.sh
[ -d tests/lab_tests ] && phase lab pytest_phase tests/lab_tests
[ -d tests/faults ] && phase faults pytest_phase tests/faults
[ -x tests/ci/molecule.sh ] && phase molecule bash tests/ci/molecule.sh
[ -d tests/eda ] && phase eda pytest_phase tests/eda
[ -d tests/monitoring ] && phase monitoring pytest_phase tests/monitoring
[ -x bench/run.sh ] && phase bench-smoke bash bench/run.sh --smoke

echo
if [ "$failed" -gt 0 ]; then echo "failed phases: ${failed_names[*]}"; fi
echo "phases: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
