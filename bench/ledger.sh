#!/usr/bin/env bash
# Ledger benchmarks: import rate, bytes per event, and the five roll-ups, at N events.
# Usage: bench/ledger.sh [EVENTS] [WORKDIR]   (default 10000000, a temp dir)
# Prints one line per figure; BENCHMARKS.md records them next to their targets.
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-10000000}"
work="${2:-$(mktemp -d)}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/cargo-target}"
cargo build --release -q --workspace --tests  # the feature set the tests use, so DuckDB is not rebuilt
bin="$CARGO_TARGET_DIR/release/burnrate"
mkdir -p "$work"
jsonl="$work/events-$events.jsonl"
db="$work/ledger-$events.duckdb"
rm -f "$db" "$db.wal"

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr)"
echo "command: bench/ledger.sh $events"
gen=("$bin" gen-events --tenants 200 --days 30 --events "$events" --seed 42 --end 2026-11-20T00:00:00Z)
# Past 20M events the JSONL would not fit on most disks (834 bytes/event): the generator is
# piped into the import, so the import rate includes generating (both share the cores).
if [ "$events" -gt 20000000 ]; then
  t0=$(now)
  "${gen[@]}" | "$bin" import --db "$db" - >/dev/null
  t1=$(now)
  printf 'gen-events piped into import: %d events in %.2f s = %.0f events/s\n' "$events" "$(elapsed "$t0" "$t1")" "$(echo "$events / $(elapsed "$t0" "$t1")" | bc -l)"
  size=$(stat -c %s "$db")
  printf 'disk: %.1f MB = %.1f bytes/event\n' "$(echo "$size / 1000000" | bc -l)" "$(echo "$size / $events" | bc -l)"
else
  if [ ! -s "$jsonl" ]; then
    t0=$(now)
    "${gen[@]}" --out "$jsonl"
    t1=$(now)
    printf 'gen-events: %d events in %.2f s (%.0f events/s)\n' "$events" "$(elapsed "$t0" "$t1")" "$(echo "$events / $(elapsed "$t0" "$t1")" | bc -l)"
  fi
  printf 'jsonl: %.1f MB (%.0f bytes/event)\n' "$(echo "$(stat -c %s "$jsonl") / 1000000" | bc -l)" "$(echo "$(stat -c %s "$jsonl") / $events" | bc -l)"

  t0=$(now)
  "$bin" import --db "$db" "$jsonl" >/dev/null
  t1=$(now)
  printf 'import: %d events in %.2f s = %.0f events/s\n' "$events" "$(elapsed "$t0" "$t1")" "$(echo "$events / $(elapsed "$t0" "$t1")" | bc -l)"
  size=$(stat -c %s "$db")
  printf 'disk: %.1f MB = %.1f bytes/event\n' "$(echo "$size / 1000000" | bc -l)" "$(echo "$size / $events" | bc -l)"

  t0=$(now)
  "$bin" import --db "$db" "$jsonl" >/dev/null
  t1=$(now)
  printf 're-import (all duplicates): %.2f s\n' "$(elapsed "$t0" "$t1")"
fi

range=(--since 2026-10-01 --until 2026-11-21)
for report in users-daily features runs outcomes tenants coverage; do
  "$bin" report "$report" --db "$db" "${range[@]}" --format json >/dev/null 2>&1 # warm the OS cache
  best=999
  for _ in 1 2 3; do
    t0=$(now)
    "$bin" report "$report" --db "$db" "${range[@]}" --format json >/dev/null 2>&1
    t1=$(now)
    e=$(elapsed "$t0" "$t1")
    best=$(echo "if ($e < $best) $e else $best" | bc -l)
  done
  printf 'report %-12s best of 3: %.3f s (whole CLI run: open, query, print)\n' "$report" "$best"
done
