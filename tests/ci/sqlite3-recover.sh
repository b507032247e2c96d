#!/usr/bin/env bash
# Builds a sqlite3 CLI with the dbpage virtual table, which `.recover` needs (Debian's 3.40.1 CLI is
# built without it), so the unit tests exercise memory_db_recover's CLI path - the runbook's
# `sqlite3 memory.db ".recover" | sqlite3 memory-recovered.db`. The source is the SQLite amalgamation
# shipped inside the npm package sqlite3 (pinned; npm is the registry for it here). Cached in
# .cache/sqlite3-recover; prints the binary's path.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NPM_PACKAGE=sqlite3@6.0.1
AUTOCONF=sqlite-autoconf-3520000
OUT=$ROOT/.cache/sqlite3-recover
BIN=$OUT/sqlite3
if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi
for tool in npm gcc tar; do
  command -v "$tool" >/dev/null || { echo "sqlite3-recover: $tool not found (tests/lab/ensure-deps.sh installs it)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$NPM_PACKAGE" >/dev/null)
tar -xzf "$work"/sqlite3-*.tgz -C "$work" "package/deps/$AUTOCONF.tar.gz"
tar -xzf "$work/package/deps/$AUTOCONF.tar.gz" -C "$work"
mkdir -p "$OUT"
gcc -O1 -DSQLITE_ENABLE_DBPAGE_VTAB -DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_LOAD_EXTENSION \
  "$work/$AUTOCONF/shell.c" "$work/$AUTOCONF/sqlite3.c" -lm -o "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
echo "$BIN"
