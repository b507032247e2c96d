#!/usr/bin/env bash
# ansible-test sanity for claude_flow.runbook, with no network but PyPI.
#
# Usage: tests/ci/sanity.sh [VENV_DIR] [extra ansible-test sanity args, e.g. --test pep8 -v]
#   VENV_DIR  a venv holding ansible-core (default: .venv at the repo root); the sanity run
#             uses that venv's ansible-test and its Python version.
#
# ansible-test needs the collection at .../ansible_collections/claude_flow/runbook, so the
# working tree's files (tracked + untracked-not-ignored, exactly what git would ship) are
# copied to build/ansible_collections/claude_flow/runbook and tested there. There is no
# tests/sanity/ignore-*.txt: every finding is an error.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=$ROOT/.venv
if [ "$#" -gt 0 ] && [[ $1 != -* ]]; then
  VENV=$1
  shift
fi
if [ ! -x "$VENV/bin/ansible-test" ]; then
  echo "sanity: $VENV/bin/ansible-test not found; create the venv first (make venv, or tests/ci/versions.sh for the matrix venvs)" >&2
  exit 2
fi
VENV=$(cd "$VENV" && pwd)
PY=$VENV/bin/python
PYVER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
CORE=$("$VENV/bin/ansible-test" --version | awk '{print $NF}')
START=$SECONDS

if compgen -G "$ROOT/tests/sanity/ignore-*.txt" >/dev/null; then
  echo "sanity: tests/sanity/ignore-*.txt exists; fix the findings instead of ignoring them" >&2
  exit 1
fi

# Without shellcheck ansible-test only warns and skips the shell checks; make it a real gate.
if ! command -v shellcheck >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "sanity: shellcheck is missing (run as root, or: sudo apt-get install shellcheck)" >&2
    exit 2
  fi
  echo "sanity: installing the Debian package shellcheck"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >/dev/null
fi

# --- Offline pip bootstrap -------------------------------------------------------------
# Each sanity virtualenv is bootstrapped with ~/.ansible/test/cache/get_pip_<pip version>.py,
# which ansible-test would otherwise download from a host outside PyPI. The pip (and for
# older cores setuptools/wheel) versions are the ones this ansible-test pins; ask it.
CACHE=$HOME/.ansible/test/cache
mkdir -p "$CACHE"
mapfile -t SPECS < <("$PY" - "$PYVER" <<'EOF'
import sys
import types

from ansible_test._internal.python_requirements import get_venv_packages

for name, version in sorted(get_venv_packages(types.SimpleNamespace(version=sys.argv[1])).items()):
    print('%s==%s' % (name, version))
EOF
)
PIP_VERSION=
for spec in "${SPECS[@]}"; do
  name=${spec%%==*}
  version=${spec#*==}
  [ "$name" = pip ] && PIP_VERSION=$version
  if ! compgen -G "$CACHE/${name}-${version}-*.whl" >/dev/null; then
    echo "sanity: fetching $spec wheel from PyPI into $CACHE"
    "$PY" -m pip download -qq --no-deps --only-binary=:all: -d "$CACHE" "$spec"
  fi
done
if [ -z "$PIP_VERSION" ]; then
  echo "sanity: could not read the pip version ansible-test $CORE pins (got: ${SPECS[*]:-nothing})" >&2
  exit 1
fi
GET_PIP=$CACHE/get_pip_${PIP_VERSION//./_}.py
cmp -s "$ROOT/tests/ci/get_pip_offline.py" "$GET_PIP" || cp "$ROOT/tests/ci/get_pip_offline.py" "$GET_PIP"

# --- The collection tree ansible-test wants ---------------------------------------------
BUILD=$ROOT/build/ansible_collections/claude_flow/runbook
rm -rf "$BUILD"
mkdir -p "$BUILD"
cd "$ROOT"
# Files deleted in the working tree are still listed by git as tracked; copy only what exists.
git ls-files -z -co --exclude-standard \
  | while IFS= read -r -d '' f; do if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi; done \
  | tar --null -T - -cf - | tar -C "$BUILD" -xf -
# A repository of its own, so ansible-test lists these files and not the (ignored) parent's.
git -C "$BUILD" -c init.defaultBranch=main init -q

# --- Run ---------------------------------------------------------------------------------
# --local: the controller is VENV itself (nothing to install for it); each sanity test still
# gets its own virtualenv under ~/.ansible/test/venv with the requirements ansible-test pins,
# installed from PyPI on first use and reused afterwards.
cd "$BUILD"
unset ANSIBLE_CONFIG
status=0
PATH=$VENV/bin:$PATH ansible-test sanity --local --python "$PYVER" --color no "$@" || status=$?
elapsed=$((SECONDS - START))
if [ "$status" -ne 0 ]; then
  echo "sanity: FAILED (ansible-core $CORE, Python $PYVER, exit $status, ${elapsed}s); results in build/ansible_collections/claude_flow/runbook/tests/output" >&2
  exit "$status"
fi
echo "sanity: passed (ansible-core $CORE, Python $PYVER, ${elapsed}s)"
