#!/usr/bin/env bash
# The newcomer's path, as the README's "Use it on your hosts" writes it, through the built collection
# only: build the tarball (and check it holds the product and nothing lab-only), install it into an
# empty collections path with a fresh venv that has requirements.txt and nothing else, copy the
# installed inventories/example for one lab host, run preflight.yml, break the host's memory.db and
# run the P0 response from the installed collection; then the service must answer 200, the DB must
# pass integrity_check and the report must be on the controller.
#
# Usage: tests/newcomer/run.sh        (needs root: one lab host)
# The venv is cached under .cache/ keyed by requirements.txt's hash; everything else is made fresh.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# Nothing of the checkout's own configuration may help: no ansible.cfg, no collections path, no vault.
unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS ANSIBLE_VAULT_IDENTITY_LIST ANSIBLE_ROLES_PATH
export PYTHONDONTWRITEBYTECODE=1 ANSIBLE_NOCOLOR=1

step() { echo "--- newcomer: $*"; }
fail() { echo "newcomer: FAILED: $*" >&2; exit 1; }

CACHE=$ROOT/.cache/newcomer
WORK=$CACHE/run
LAB_DIR=$CACHE/lab
LAB=(python3 "$ROOT/tests/lab/lab.py")
rm -rf "$WORK"
mkdir -p "$WORK"
trap '"${LAB[@]}" down --state-dir "$LAB_DIR" >/dev/null 2>&1 || echo "newcomer: lab down failed" >&2' EXIT

# --- 1. the tarball ----------------------------------------------------------------------------
step "build the collection tarball"
"$ROOT/.venv/bin/ansible-galaxy" collection build --force --output-path "$WORK/dist" "$ROOT" >/dev/null
TARBALL=$(ls "$WORK"/dist/claude_flow-runbook-*.tar.gz)
tar -tzf "$TARBALL" | sort > "$WORK/tarball.txt"
files=$(grep -vc '/$' "$WORK/tarball.txt" || true)
echo "tarball: $(basename "$TARBALL"), $(stat -c %s "$TARBALL") bytes, $files files"
for forbidden in '^tests/' '^bench/' '^molecule/' '^inventories/lab' 'vault-password' '^Makefile$' '^ansible\.cfg$' \
                 '^requirements-' '^changelogs/fragments/' '^\.'; do
  if grep -E "$forbidden" "$WORK/tarball.txt" | grep -q .; then
    fail "the tarball holds lab or developer material ($forbidden): $(grep -E "$forbidden" "$WORK/tarball.txt" | head -3 | tr '\n' ' ')"
  fi
done
for needed in plugins/modules/triage.py roles/preflight/tasks/main.yml playbooks/preflight.yml playbooks/p0_response.yml \
              extensions/eda/plugins/event_source/alertmanager.py inventories/example/hosts.yml \
              inventories/example/vault.example.yml meta/runtime.yml meta/execution-environment.yml \
              meta/ee-requirements.txt bindep.txt requirements.txt README.md changelogs/changelog.yaml docs/scaling.md; do
  grep -qx "$needed" "$WORK/tarball.txt" || fail "the tarball lacks $needed"
done

# --- 2. a fresh venv with the runtime requirements only ------------------------------------------
hash=$(sha256sum < requirements.txt | cut -c1-16)
VENV=$CACHE/venv-$hash
if [ ! -f "$VENV/.complete" ]; then
  step "fresh venv $VENV from requirements.txt"
  rm -rf "$CACHE"/venv-*
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r requirements.txt
  touch "$VENV/.complete"
fi
extra=$("$VENV/bin/python" -m pip freeze \
  | grep -Eiv '^(ansible-core|jinja2|markupsafe|pyyaml|cryptography|cffi|pycparser|packaging|resolvelib)==' || true)
[ -z "$extra" ] || fail "the runtime venv holds more than ansible-core and its dependencies: $extra"

step "install the tarball into an empty collections path"
cd "$WORK"    # no ansible.cfg here or above that is ours
"$VENV/bin/ansible-galaxy" collection install -p "$WORK/collections" "$TARBALL" >/dev/null
export ANSIBLE_COLLECTIONS_PATH=$WORK/collections
INSTALLED=$WORK/collections/ansible_collections/claude_flow/runbook
[ -f "$INSTALLED/playbooks/preflight.yml" ] || fail "installed collection has no playbooks/preflight.yml"

# --- 3. one lab host, and the README's inventory for it ----------------------------------------
step "one lab host"
"${LAB[@]}" up --state-dir "$LAB_DIR" --hosts 1 >/dev/null
host_line=$(python3 - "$LAB_DIR/hosts.yml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
print(re.search(r'ansible_host: (\S+)', text).group(1), re.search(r'lab_hub_netns: (\S+)', text).group(1))
PY
)
read -r ADDR HUB <<<"$host_line"
# The claude-flow install the preflight reads its version from (the lab's stand-in has no package.json).
"${LAB[@]}" exec --state-dir "$LAB_DIR" lab1 -- sh -c 'mkdir -p /opt/claude-code-production/node_modules/claude-flow &&
  printf "{\"name\": \"claude-flow\", \"version\": \"2.7.47\"}\n" > /opt/claude-code-production/node_modules/claude-flow/package.json' >/dev/null

step "the inventory, as the README says: copy inventories/example, replace the hosts, set the few variables"
cp -r "$INSTALLED/inventories/example" "$WORK/inventory"
cat > "$WORK/inventory/hosts.yml" <<YML
---
all:
  children:
    claude_flow:
      hosts:
        lab1:
          ansible_host: $ADDR
      vars:
        ansible_user: root
        ansible_python_interpreter: /usr/bin/python3
        ansible_ssh_private_key_file: $LAB_DIR/id_ed25519
        ansible_control_path_dir: $LAB_DIR/cp
        ansible_ssh_common_args: >-
          -o ProxyCommand="ip netns exec $HUB nc %h %p" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
YML
# The required variables are lines of group_vars/all/runbook.yml to edit: where the app lives and where
# the controller keeps the reports.
python3 - "$WORK/inventory/group_vars/all/runbook.yml" "$WORK/reports" <<'PY'
import re, sys
path, reports = sys.argv[1], sys.argv[2]
text = open(path).read()
for name, value in (('claude_flow_app_dir', '/opt/claude-code-production'), ('claude_flow_reports_dir', reports)):
    text, count = re.subn(r'(?m)^%s: .*$' % name, '%s: %s' % (name, value), text)
    assert count == 1, '%s is not one line of %s' % (name, path)
open(path, 'w').write(text)
PY

# --- 4. preflight, then a P0 response through the installed collection -------------------------
step "preflight.yml"
"$VENV/bin/ansible-playbook" -i "$WORK/inventory/hosts.yml" claude_flow.runbook.preflight > "$WORK/preflight.log" 2>&1 \
  || { cat "$WORK/preflight.log"; fail "preflight.yml failed on a healthy host"; }
for expected in 'app dir: /opt/claude-code-production -> /opt/claude-code-backups/' 'unit: claude-code-production active/running' \
                'claude-flow 2.7.47 (the 2.x CLI' 'DB backups: 3'; do
  grep -qF "$expected" "$WORK/preflight.log" || { cat "$WORK/preflight.log"; fail "preflight did not report '$expected'"; }
done

step "break the host (corrupt memory.db), run p0_response.yml from the installed collection"
"${LAB[@]}" break --state-dir "$LAB_DIR" lab1 corrupt_db >/dev/null
start=$SECONDS
"$VENV/bin/ansible-playbook" -i "$WORK/inventory/hosts.yml" "$INSTALLED/playbooks/p0_response.yml" -l lab1 \
  -e claude_flow_monitor_seconds=6 -e claude_flow_monitor_interval=2 > "$WORK/p0.log" 2>&1 \
  || { tail -60 "$WORK/p0.log"; fail "p0_response.yml failed"; }
echo "p0_response.yml: $((SECONDS - start)) s"

step "check the result"
health=$("${LAB[@]}" exec --state-dir "$LAB_DIR" lab1 -- curl -s -o /dev/null -w '%{http_code}' http://localhost:8080/health || true)
[ "$health" = 200 ] || fail "health is '$health' after the P0 response, not 200"
integrity=$("${LAB[@]}" exec --state-dir "$LAB_DIR" lab1 -- python3 -c \
  "import sqlite3; print(sqlite3.connect('file:/opt/claude-code-production/.swarm/memory.db?mode=ro', uri=True).execute('PRAGMA integrity_check').fetchone()[0])")
[ "$integrity" = ok ] || fail "integrity_check says '$integrity' after the P0 response"
report=$(find "$WORK/reports" -name 'incident-INC-*.md' -type f 2>/dev/null | head -1)
[ -n "$report" ] || fail "no incident report under $WORK/reports"
grep -q 'P0' "$report" || fail "the report $report does not mention P0"
echo "newcomer: passed (tarball $files files; report $report)"
