#!/usr/bin/env bash
# The ansible-core version matrix behind meta/runtime.yml's `requires_ansible: ">=2.16.0"`.
#
# Usage: tests/ci/versions.sh [--refreeze] [core216|core221 ...]   (default: every entry)
#
# For each entry, a venv .venv-<name> (reused while its requirements file and Python are
# unchanged) gets the pinned requirements-<name>.txt, then runs the unit tests and
# ansible-test sanity (tests/ci/sanity.sh) on that venv's Python. The newest core, 2.19
# in .venv, is covered by the main test run. --refreeze re-resolves the requirements
# files from the unpinned inputs below (pip freeze minus pip/setuptools).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

# name | Python X.Y | unpinned inputs (aiohttp: the EDA event source's unit tests need it)
MATRIX=(
  "core216|3.11|ansible-core==2.16.* pytest aiohttp"
  "core221|3.12|ansible-core==2.21.* pytest aiohttp"
)

refreeze=0
wanted=()
for arg in "$@"; do
  case $arg in
    --refreeze) refreeze=1 ;;
    core*) wanted+=("$arg") ;;
    *) echo "versions: unknown argument '$arg' (use --refreeze and/or entry names: core216 core221)" >&2; exit 2 ;;
  esac
done

# Print the path of a working Python X.Y: pythonX.Y or python3 on PATH, else pyenv's newest X.Y.
# (A pyenv shim can exist for a version that is not enabled, so each candidate is run.)
find_python() {
  local want=$1 candidate root
  for candidate in "python$want" python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$want'.split('.'))))" 2>/dev/null; then
      "$candidate" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    root=$(pyenv root)
    candidate=$(find "$root/versions" -maxdepth 3 -path "*/versions/$want*/bin/python$want" 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$candidate" ] && "$candidate" -c 'import sys' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  fi
  return 1
}

# The unit tests import the collection through this link (the one `make collection` creates).
if [ ! -e .collections/ansible_collections/claude_flow/runbook ]; then
  mkdir -p .collections/ansible_collections/claude_flow
  ln -sfn ../../.. .collections/ansible_collections/claude_flow/runbook
fi

failed=()
summary=()
for entry in "${MATRIX[@]}"; do
  IFS='|' read -r name pyver inputs <<<"$entry"
  if [ "${#wanted[@]}" -gt 0 ] && [[ " ${wanted[*]} " != *" $name "* ]]; then
    continue
  fi
  venv=.venv-$name
  reqs=requirements-$name.txt
  echo "=== versions: $name (Python $pyver)"
  start=$SECONDS

  if ! python=$(find_python "$pyver"); then
    echo "SKIP versions: $name needs Python $pyver, which is not installed (no python$pyver on PATH, none under pyenv); install it to test this ansible-core"
    summary+=("$name: SKIPPED, no Python $pyver")
    continue
  fi

  if [ "$refreeze" -eq 1 ]; then
    tmp=$(mktemp -d)
    "$python" -m venv "$tmp/venv"
    # shellcheck disable=SC2086  # $inputs is a space-separated list of requirement specs
    "$tmp/venv/bin/pip" install -qq $inputs
    {
      echo "# $name: $(grep -o 'ansible-core==[^ ]*' <<<"$inputs") on Python $pyver, pinned by tests/ci/versions.sh --refreeze"
      "$tmp/venv/bin/pip" freeze --exclude pip --exclude setuptools
    } >"$reqs"
    rm -rf "$tmp"
    echo "versions: wrote $reqs"
  fi
  if [ ! -f "$reqs" ]; then
    echo "versions: $reqs is missing; create it with: tests/ci/versions.sh --refreeze $name" >&2
    exit 2
  fi

  # Reuse the venv while the pinned requirements and the interpreter are what built it.
  stamp="$(sha256sum "$reqs" | cut -d' ' -f1) $python"
  if [ ! -f "$venv/.stamp" ] || [ "$(cat "$venv/.stamp")" != "$stamp" ]; then
    echo "versions: building $venv from $reqs with $python"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -qq -r "$reqs"
    echo "$stamp" >"$venv/.stamp"
  fi
  core=$("$venv/bin/python" -c 'from ansible.release import __version__; print(__version__)')
  setup=$((SECONDS - start))

  result=passed
  t0=$SECONDS
  if ! "$venv/bin/python" -m pytest tests/unit -q -p no:cacheprovider; then
    result=FAILED
    failed+=("$name:unit")
  fi
  unit=$((SECONDS - t0))
  t0=$SECONDS
  if ! bash tests/ci/sanity.sh "$venv"; then
    result=FAILED
    failed+=("$name:sanity")
  fi
  sanity=$((SECONDS - t0))
  summary+=("$name: $result (ansible-core $core, Python $pyver; venv ${setup}s, unit ${unit}s, sanity ${sanity}s)")
done

echo "=== versions summary"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "versions: FAILED: ${failed[*]}" >&2
  exit 1
fi
