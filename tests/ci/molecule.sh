#!/usr/bin/env bash
# The molecule scenarios over lab hosts: default (one P0 host), fleet (five hosts in mixed states),
# faults (the fault-injection matrix). Each runs `molecule test` (create -> ... -> destroy), even
# when an earlier one failed; the exit code is non-zero when any failed.
#
# Usage: tests/ci/molecule.sh [SCENARIO...]     (default: default fleet faults; needs root)
#
# Every scenario's notification endpoints carry one secret token (MOLECULE_NOTIFY_SECRET, new for
# each run); besides each scenario's own verifier, molecule's complete output is searched for it here.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2
export PATH="$ROOT/.venv/bin:$PATH"
export PYTHONDONTWRITEBYTECODE=1
export NO_COLOR=1   # plain text in the kept logs
unset ANSIBLE_CONFIG   # molecule writes its own per scenario

if [ "$(id -u)" -ne 0 ]; then
  echo "molecule: the lab makes network, mount and PID namespaces: run as root (CI does)" >&2
  exit 2
fi
if ! command -v molecule >/dev/null; then
  echo "molecule: not found in $ROOT/.venv; create the venv first (make venv)" >&2
  exit 2
fi
# Playbooks refer to claude_flow.runbook.*; the scenarios resolve it through this link (make collection).
if [ ! -e .collections/ansible_collections/claude_flow/runbook ]; then
  mkdir -p .collections/ansible_collections/claude_flow
  ln -sfn ../../.. .collections/ansible_collections/claude_flow/runbook
fi

MOLECULE_NOTIFY_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
export MOLECULE_NOTIFY_SECRET
mkdir -p tests/output
scenarios=("$@")
[ "${#scenarios[@]}" -gt 0 ] || scenarios=(default fleet faults)

failed=()
for scenario in "${scenarios[@]}"; do
  log="tests/output/molecule-$scenario.log"
  start=$SECONDS
  echo "--- molecule test -s $scenario (output: $log)"
  if molecule test -s "$scenario" >"$log" 2>&1; then
    result=passed
  else
    result=FAILED
    failed+=("$scenario")
    tail -40 "$log"
  fi
  if grep -qF "$MOLECULE_NOTIFY_SECRET" "$log"; then
    echo "--- molecule $scenario: the notification secret appears in molecule's output ($log)" >&2
    result=FAILED
    failed+=("$scenario-secret")
  fi
  echo "--- molecule $scenario: $result in $((SECONDS - start)) s"
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "molecule: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "molecule: passed"
