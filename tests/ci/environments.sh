#!/usr/bin/env bash
# The execution and decision environments build as shipped: `ansible-builder create` turns
# execution-environment.yml and decision-environment.yml into build contexts (building the images
# needs a container engine, which CI does not have), and what ansible-builder will install from the
# collection is checked with its own introspection over the installed tarball:
#   - both contexts carry the collection tarball galaxy.yml's version names, and install it;
#   - the collection declares runtime needs only (aiohttp for the event source, sqlite, ssh) - none
#     of the developers' pins (requirements-dev.txt);
#   - the EE leaves out aiohttp and has no ansible-rulebook or Java; the DE installs ansible-rulebook,
#     Java 17 (JAVA_HOME set) and the event source's aiohttp, and the source is in the tarball.
# Usage: tests/ci/environments.sh [VENV_DIR]     (default .venv; needs ansible-builder and ansible-galaxy)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${1:-$ROOT/.venv}
for tool in ansible-builder ansible-galaxy; do
  [ -x "$VENV/bin/$tool" ] || { echo "environments: $VENV/bin/$tool not found (make venv)" >&2; exit 2; }
done
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
problems=()
check() {   # check DESCRIPTION COMMAND...: record DESCRIPTION when COMMAND fails
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAILED: $what" >&2; problems+=("$what"); fi
}
has() { grep -qF -- "$2" "$1"; }
lacks() { ! grep -qiE -- "$2" "$1"; }

version=$("$VENV/bin/python" -c "import yaml; print(yaml.safe_load(open('$ROOT/galaxy.yml'))['version'])")
tarball=claude_flow-runbook-$version.tar.gz
mkdir -p "$WORK/build/collection"
"$VENV/bin/ansible-galaxy" collection build --output-path "$WORK/build/collection" "$ROOT" >/dev/null
cp "$ROOT/execution-environment.yml" "$ROOT/decision-environment.yml" "$WORK/"

for kind in execution decision; do
  (cd "$WORK" && "$VENV/bin/ansible-builder" create -f "$kind-environment.yml" --context "$kind" \
      --output-filename Containerfile >"$WORK/$kind.log" 2>&1) \
    || { cat "$WORK/$kind.log" >&2; problems+=("ansible-builder create $kind-environment.yml"); continue; }
  file=$WORK/$kind/Containerfile
  check "$kind: the context holds $tarball" test -f "$WORK/$kind/_build/collection/$tarball"
  check "$kind: it installs the collection from it" has "$WORK/$kind/_build/requirements.yml" "/build/collection/$tarball"
  check "$kind: ansible-galaxy collection install" has "$file" 'ansible-galaxy collection install'
  check "$kind: the collection's own needs are introspected" has "$file" 'introspect'
  check "$kind: python3.11 and ansible-core" has "$file" 'ansible-core>=2.16,<2.20'
done
ee=$WORK/execution
de=$WORK/decision
check "EE: no ansible-rulebook" lacks "$ee/Containerfile" 'ansible-rulebook'
check "EE: no Java" lacks "$ee/Containerfile" 'openjdk|JAVA_HOME'
check "EE: aiohttp (the event source's) excluded" has "$ee/_build/exclude-requirements.txt" 'aiohttp'
check "DE: installs ansible-rulebook" has "$de/_build/requirements.txt" 'ansible-rulebook'
check "DE: installs Java 17" has "$de/_build/bindep.txt" 'java-17-openjdk'
check "DE: JAVA_HOME for jpy" has "$de/Containerfile" 'ENV JAVA_HOME=/usr/lib/jvm/jre-17-openjdk'
check "DE: the build fails when ansible-rulebook cannot start" has "$de/Containerfile" 'ansible-rulebook --version'
check "DE: no aiohttp exclusion" lacks "$de/Containerfile" "exclude-requirements"

# What ansible-builder's introspection (the same script the image build runs) reads from the collection.
(cd "$WORK" && "$VENV/bin/ansible-galaxy" collection install --force -p "$WORK/collections" "$WORK/build/collection/$tarball" >"$WORK/install.log" 2>&1) || cat "$WORK/install.log" >&2
"$VENV/bin/ansible-builder" introspect "$WORK/collections" > "$WORK/introspect.txt"
check "collection: the Alertmanager event source is in the tarball" \
  test -f "$WORK/collections/ansible_collections/claude_flow/runbook/extensions/eda/plugins/event_source/alertmanager.py"
check "collection: declares aiohttp (event source)" has "$WORK/introspect.txt" 'aiohttp'
check "collection: declares sqlite and the ssh client" has "$WORK/introspect.txt" 'openssh-clients [platform:rpm]'
for pin in black pytest molecule ansible-lint antsibull drools ansible-rulebook ansible-builder yamllint; do
  check "collection: no developer pin '$pin' reaches an image" lacks "$WORK/introspect.txt" "^ *- '?$pin"
done

if [ "${#problems[@]}" -gt 0 ]; then
  echo "environments: FAILED: ${problems[*]}" >&2
  exit 1
fi
echo "environments: passed"
