#!/usr/bin/env bash
# Benchmarks, each running the runbook's own commands and ours side by side and printing ratios.
#   bench/run.sh --smoke   smallest sizes only, one round (CI; well under 60 s)
#   bench/run.sh           the full sizes (make bench); tables land in bench/results/*.md, and from
#                          there, by hand, in docs/performance.md
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
mode=${1:-full}
mkdir -p bench/results
if [ "$mode" = "--smoke" ]; then
  python bench/bench_memory_db_info.py --sizes 20000 --repeat 1 --budget-ms 0
  python bench/bench_triage.py --rows 20000 --repeat 1 --warmup 0
else
  python bench/bench_memory_db_info.py --sizes 100000 1000000 10000000 --repeat 3 \
    --out bench/results/memory_db_info.md
  python bench/bench_triage.py --rows 100000 --repeat 5 --out bench/results/triage.md
fi
