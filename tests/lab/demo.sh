#!/usr/bin/env bash
# The README's demo: a lab host with a corrupted memory.db, taken back to healthy by p0_response.yml.
set -euo pipefail
cd "$(dirname "$0")/../.." || exit 1
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
export PATH="$PWD/.venv/bin:$PATH"
# The lab inventory keeps its escalation contacts in a lab-only vault.
export ANSIBLE_VAULT_IDENTITY_LIST="lab@$PWD/tests/lab/vault-password.txt"
host=lab1
reports="$PWD/tests/output/demo-reports"

echo "== bringing up the lab (2 hosts)"
python tests/lab/lab.py up --hosts 2
echo "== breaking $host: overwriting pages of its live memory.db"
python tests/lab/lab.py break "$host" corrupt_db
echo "== what the service says now:"
python tests/lab/lab.py exec "$host" -- python3 -c \
  "import urllib.request,sys
try: urllib.request.urlopen('http://localhost:8080/health', timeout=3); print('healthy')
except Exception as e: print('unhealthy:', e)"

echo "== ansible-playbook playbooks/p0_response.yml -l $host"
started=$SECONDS
ansible-playbook playbooks/p0_response.yml -l "$host" -e claude_flow_reports_dir="$reports"
echo "== playbook took $((SECONDS - started)) s"

echo "== the service now:"
python tests/lab/lab.py exec "$host" -- python3 -c \
  "import urllib.request; print(urllib.request.urlopen('http://localhost:8080/health', timeout=3).read().decode())"
report=$(find "$reports/$host" -name 'incident-*.md' | sort | tail -n 1)
echo "== incident report: $report (HTML beside it); first lines:"
head -n 25 "$report"
echo
echo "The lab stays up for a look around: python3 tests/lab/lab.py exec $host -- bash; make lab-down to remove it."
