#!/usr/bin/env bash
# Lint gates for claude_flow.runbook: ansible-lint (production profile) and the changelog.
#
# Usage: tests/ci/lint.sh [VENV_DIR]      (default VENV_DIR: .venv at the repo root)
#
# ansible-lint walks every file git would ship (tracked + untracked-not-ignored): playbooks,
# roles, galaxy.yml, meta/runtime.yml, extensions/eda rulebooks, inventories, molecule, and
# any other YAML. Its `yaml` rule runs yamllint over all of them, so no separate yamllint
# pass is needed; .ansible-lint excludes only generated trees. --strict makes warnings fatal.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${1:-$ROOT/.venv}
for tool in ansible-lint antsibull-changelog; do
  if [ ! -x "$VENV/bin/$tool" ]; then
    echo "lint: $VENV/bin/$tool not found; create the venv first (make venv)" >&2
    exit 2
  fi
done
VENV=$(cd "$VENV" && pwd)
export PATH=$VENV/bin:$PATH
export ANSIBLE_CONFIG=$ROOT/ansible.cfg
cd "$ROOT"

# Playbooks refer to claude_flow.runbook.*; ansible.cfg resolves it through this link
# (the same one `make collection` creates).
if [ ! -e .collections/ansible_collections/claude_flow/runbook ]; then
  mkdir -p .collections/ansible_collections/claude_flow
  ln -sfn ../../.. .collections/ansible_collections/claude_flow/runbook
fi

failed=()
step() {
  local name=$1 start=$SECONDS
  shift
  echo "--- lint: $name"
  if "$@"; then
    echo "--- lint: $name passed ($((SECONDS - start))s)"
  else
    echo "--- lint: $name FAILED ($((SECONDS - start))s)" >&2
    failed+=("$name")
  fi
}

step ansible-lint ansible-lint --nocolor --strict --offline --profile production -c .ansible-lint
step changelog-fragments antsibull-changelog lint
step changelog-yaml antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml

if [ "${#failed[@]}" -gt 0 ]; then
  echo "lint: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "lint: passed"
