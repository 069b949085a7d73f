#!/usr/bin/env bash
# Queue throughput (claims per second, claim + finish with no work between) with 1, 2 and 4
# worker processes, on PostgreSQL and on SQLite. Usage: bench/queue.sh [tasks-per-run]
# PostgreSQL: a scratch database harken_bench on HARKEN_TEST_PG's server (default the local one).
set -euo pipefail
cd "$(dirname "$0")/.."
tasks="${1:-4000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/harken-target}"
cargo build -q --release -p harken-store --example queue_bench
bin="$CARGO_TARGET_DIR/release/examples/queue_bench"
admin="${HARKEN_TEST_PG:-postgres://postgres@127.0.0.1:5432/postgres}"
pg="${admin%/*}/harken_bench"
sqlite_dir="$(mktemp -d)"
trap 'rm -rf "$sqlite_dir"; psql -Xq "$admin" -c "DROP DATABASE IF EXISTS harken_bench WITH (FORCE)" >/dev/null' EXIT

run() { # backend db procs
  local backend=$1 db=$2 procs=$3
  if [ "$backend" = postgres ]; then
    psql -Xq "$admin" -c "DROP DATABASE IF EXISTS harken_bench WITH (FORCE)" -c "CREATE DATABASE harken_bench" >/dev/null
  else
    rm -rf "$sqlite_dir"/*
  fi
  "$bin" seed "$db" "$tasks"
  local start end
  start=$(date +%s.%N)
  for _ in $(seq "$procs"); do "$bin" work "$db" 60 & done > "$sqlite_dir.out"
  wait
  end=$(date +%s.%N)
  local claimed
  claimed=$(awk '{s += $1} END {print s}' "$sqlite_dir.out")
  [ "$claimed" -eq "$tasks" ] || { echo "$backend: $claimed of $tasks claimed" >&2; exit 1; }
  printf "%-8s %d process(es): %6.0f claims/s (%d tasks in %.2f s)\n" "$backend" "$procs" \
    "$(echo "$tasks / ($end - $start)" | bc -l)" "$tasks" "$(echo "$end - $start" | bc -l)"
}

for procs in 1 2 4; do run postgres "$pg" "$procs"; done
# SQLite is one node's database: several processes writing to one file fail with SQLITE_BUSY
# (see docs/DEPLOYMENT.md), so only one process is measured.
run sqlite "$sqlite_dir" 1
rm -f "$sqlite_dir.out"
