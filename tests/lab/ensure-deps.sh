#!/usr/bin/env bash
# Installs the Debian packages the lab and the tests need, only when missing (CI runs as root).
set -euo pipefail
need=()
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
command -v nc >/dev/null || need+=(netcat-openbsd)
command -v ip >/dev/null || need+=(iproute2)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v make >/dev/null || need+=(make)
command -v jq >/dev/null || need+=(jq)
command -v shellcheck >/dev/null || need+=(shellcheck)
# tests/ci/sqlite3-recover.sh builds a sqlite3 CLI with .recover from the npm registry's amalgamation.
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v npm >/dev/null || need+=(npm)
# The real claude-flow releases' native modules are built locally (node-gyp: make, g++).
command -v g++ >/dev/null || need+=(g++)
# The monitoring loop (tests/monitoring, make demo-alerts): Prometheus with promtool, Alertmanager with
# amtool, node_exporter with its textfile collector; their services are not started, the tests run them.
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
command -v prometheus-node-exporter >/dev/null || need+=(prometheus-node-exporter)
# The stand-ins and lab scripts use `#!/usr/bin/env python` (the shebang ansible-test allows).
[ -e /usr/bin/python ] || need+=(python-is-python3)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "installing Debian packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
