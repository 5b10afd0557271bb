#!/usr/bin/env bash
# Dashboard speed: how long each page's data takes to arrive from `burnrate serve` on a
# ledger of N events (the 30-day workload of bench/ledger.sh), best of three per endpoint.
# Usage: bench/dashboard.sh [LEDGER.duckdb]   (default: built by bench/ledger.sh's generator, 10M events)
# Prints one line per endpoint; BENCHMARKS.md records them next to the 300 ms target.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/cargo-target}"
cargo build --release -q --workspace --tests
bin="$CARGO_TARGET_DIR/release/burnrate"
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
source_db="${1:-}"
if [ -z "$source_db" ]; then
  "$bin" gen-events --tenants 200 --days 30 --events 10000000 --seed 42 --end 2026-11-20T00:00:00Z --out "$work/events.jsonl"
  "$bin" import --db "$work/ledger.duckdb" "$work/events.jsonl" >/dev/null
  rm "$work/events.jsonl"
else
  cp "$source_db" "$work/ledger.duckdb"
fi
events=$("$bin" query --db "$work/ledger.duckdb" --since 2000-01-01 --until 2100-01-01 --metrics requests --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["rows"][0]["requests"])')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/burnrate.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
[store]
path = "$work/ledger.duckdb"
journal_dir = "$work/journal"
[[providers]]
name = "openai"
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "BENCH_UNUSED_KEY"
models = ["gpt-*"]
[[policy.budgets]]
scope = "tenant"
id = "*"
period = "day"
limit_usd = "100"
TOML
BURNRATE_ADMIN_TOKEN=bench BENCH_UNUSED_KEY=x RUST_LOG=warn,burnrate_server::dashboard::findings=info "$bin" serve --config "$work/burnrate.toml" 2>"$work/serve.log" &
pid=$!
for _ in $(seq 1 600); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
# The server computes the findings of the last 30 closed days once it starts; measure after.
for _ in $(seq 1 600); do grep -q "anomaly findings of the closed days kept" "$work/serve.log" && break; sleep 0.5; done

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr)"
echo "command: bench/dashboard.sh ${source_db:-(10M generated)}   ledger: $events events"
range="since=2026-10-21T00:00:00Z&until=2026-11-20T00:00:00Z"
api() { curl -fs -H "authorization: Bearer bench" "http://127.0.0.1:$port$1"; }
tenant=$(api "/api/v1/longtail?$range" | python3 -c 'import json,sys; print(json.load(sys.stdin)["members"][0]["name"])')
run=$(api "/api/v1/runs?$range" | python3 -c 'import json,sys; print(json.load(sys.stdin)["top"][0]["agent_run_id"])')
best() {
  local best=999999
  for _ in 1 2 3; do
    local t
    t=$(curl -fs -o /dev/null -w '%{time_total}' -H "authorization: Bearer bench" "http://127.0.0.1:$port$1")
    best=$(python3 -c "print(min($best, $t))")
  done
  printf '%-12s %8.0f ms   %s\n' "$2" "$(python3 -c "print($best * 1000)")" "$1"
}
best "/api/v1/overview?$range" overview
best "/api/v1/longtail?$range" longtail
best "/api/v1/tenants/$tenant?$range" tenant
best "/api/v1/runs?$range" runs
best "/api/v1/runs/$run?$range" run
best "/api/v1/anomalies?day=2026-11-19" anomalies
best "/api/v1/budgets" budgets
best "/api/v1/prices" prices
best "/api/v1/overview?since=2026-11-19T00:00:00Z&until=2026-11-20T00:00:00Z" overview-1day
best "/api/v1/runs?since=2026-11-19T00:00:00Z&until=2026-11-20T00:00:00Z" runs-1day
# Computing a day's findings (what a view of a day the server has not kept costs): the whole
# `burnrate anomalies` run, opening the ledger included, best of three, after the server stops.
kill "$pid"; wait "$pid" 2>/dev/null || true
computed=999999
for _ in 1 2 3; do
  start=$(date +%s.%N)
  "$bin" anomalies --db "$work/ledger.duckdb" --since 2026-11-19 --until 2026-11-20 --format json >/dev/null
  computed=$(python3 -c "print(min($computed, $(date +%s.%N) - $start))")
done
printf '%-12s %8.0f ms   %s\n' "computed" "$(python3 -c "print($computed * 1000)")" "burnrate anomalies --since 2026-11-19 --until 2026-11-20 (CLI, opening included)"
