#!/usr/bin/env bash
# Every figure of BENCHMARKS.md in one run, on this machine: the ledger at 10M and 100M events
# (import rate, bytes per event, the five roll-ups), ClickHouse next to DuckDB, the
# dashboard's page data, OTLP decode and ingest, the gateway next to the mock provider called
# directly and LiteLLM's proxy at fixed request rates (open loop) with peak memory at 10,000
# open streams, the policy's cost per call in memory and in Redis, the audit trail, and the
# demo's traffic time. Each figure is printed under the command that produced it.
#
# Usage: bench/run.sh [--quick] [WORKDIR]
#   --quick   a smoke run in minutes: 1M events, no 100M ledger, 3 s per rate, 1,000 streams,
#             no LiteLLM (the full run takes about an hour and needs about 35 GB of disk)
#   WORKDIR   where the workloads and ledgers go (default: a new temp dir, kept for reuse)
# Needs what .ci/run installs (redis-server, clickhouse-server, python3-venv, bc); LiteLLM is
# installed from PyPI at the version bench/litellm/requirements.txt pins.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=false
if [ "${1:-}" = "--quick" ]; then
  quick=true
  shift
fi
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/cargo-target}"

if $quick; then
  events=1000000 big=0 seconds=3 streams=1000 rates=200,2000 audit=1000000
  litellm=(--no-litellm)
else
  events=10000000 big=100000000 seconds=10 streams=9000 rates=200,2000,5000 audit=10000000
  litellm=()
fi

section() { printf '\n## %s\n' "$1"; }
# Prints a command, then runs it.
run() {
  printf '$ %s\n' "$*"
  "$@"
}

section "Machine"
echo "cpu: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB; disk free in $work: $(df -h "$work" | awk 'NR == 2 {print $4}')"
echo "system: $(uname -srm); $(. /etc/os-release && echo "$PRETTY_NAME")"
echo "burnrate: $(git rev-parse --short HEAD 2>/dev/null || echo unknown), release profile; $(rustc --version)"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); work dir: $work"

# One build with the feature set the tests use, so DuckDB is compiled once.
cargo build --release -q --workspace --tests --examples
bin="$CARGO_TARGET_DIR/release/burnrate"
examples="$CARGO_TARGET_DIR/release/examples"

section "Ledger at $events events (issue 2)"
run bench/ledger.sh "$events" "$work"

if [ "$big" -gt 0 ]; then
  section "Ledger at $big events (issue 2)"
  run bench/ledger.sh "$big" "$work"
fi

section "ClickHouse next to DuckDB at $events events (issue 8)"
run bench/clickhouse.sh "$events" "$work"

section "Dashboard page data at $events events (issue 9)"
run bench/dashboard.sh "$work/ledger-$events.duckdb"

section "OTLP decode and mapping, one core (issue 4)"
run "$examples/otlp_map_bench"
mkdir -p "$work/otlp"
OTLP_BENCH_WRITE="$work/otlp" "$examples/otlp_map_bench" >/dev/null

section "Gateway: the mock direct, a pass-through proxy, burnrate, LiteLLM; OTLP/HTTP ingest (issues 3, 4)"
run bench/gateway.sh "${litellm[@]}" --rates "$rates" --seconds "$seconds" --streams "$streams" \
  --otlp-bodies "$work/otlp"
# 10,000 open streams need 20,000 descriptors over HTTP/1.1, this machine's hard limit: over
# HTTP/2 the clients share 100 connections and the gateway holds one upstream socket per stream.
run bench/gateway.sh --no-litellm --rates 200 --seconds 2 --streams $((streams + 1000)) \
  --streams-h2-connections 100

section "Enforcement: the policy's cost per call (issue 5)"
run "$examples/policy_bench" bench/policy/memory.toml
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
redis=$!
sleep 0.5
run "$examples/policy_bench" bench/policy/memory.toml "redis://127.0.0.1:$port/0"
kill "$redis"

section "Enforcement end to end: no policy, memory state, Redis state (issue 5)"
run bench/gateway.sh --no-litellm --rates 200,2000 --seconds "$seconds" --streams 0
run bench/gateway.sh --no-litellm --rates 200,2000 --seconds "$seconds" --streams 0 \
  --policy bench/policy/memory.toml
run bench/policy/redis.sh --rates 200,2000 --seconds "$seconds" --streams 0

section "Audit trail at $audit records (issue 7)"
rm -rf "$work/audit"
run "$examples/audit_bench" "$audit" "$work/audit"

section "burnrate demo: its traffic through the gateway (issue 10)"
echo "\$ $bin demo --dir $work/demo --listen 127.0.0.1:0   (interrupted once its traffic is done)"
"$bin" demo --dir "$work/demo" --listen 127.0.0.1:0 2>/dev/null >"$work/demo.out" &
demo=$!
until grep -q '^Dashboard: ' "$work/demo.out" 2>/dev/null; do
  kill -0 "$demo" 2>/dev/null || break
  sleep 1
done
kill -INT "$demo" 2>/dev/null || true
wait "$demo" || true
grep '^Sent ' "$work/demo.out" | sed 's/:.*//'
