#!/usr/bin/env bash
# ClickHouse ledger benchmarks, next to DuckDB in the same run: the insert rate from one
# writer (`burnrate migrate`: read from DuckDB, parse, deduplicate at insert, insert in
# 50,000-event batches, the path a gateway replica's ledger thread takes) and the five
# roll-ups plus coverage on the same N events on both ledgers.
# Usage: bench/clickhouse.sh [EVENTS] [WORKDIR]   (default 10000000, a temp dir)
# Needs clickhouse-server (apt-get install clickhouse-server); starts its own on free ports.
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

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr)"
echo "command: bench/clickhouse.sh $events"
if [ ! -s "$db" ]; then
  if [ ! -s "$jsonl" ]; then
    "$bin" gen-events --tenants 200 --days 30 --events "$events" --seed 42 --end 2026-11-20T00:00:00Z --out "$jsonl"
  fi
  "$bin" import --db "$db" "$jsonl" >/dev/null
fi

ch="$work/clickhouse"
rm -rf "$ch" && mkdir -p "$ch"
http=$(free_port); tcp=$(free_port)
cat > "$ch/users.xml" <<XML
<?xml version="1.0"?><yandex><profiles><default></default></profiles><users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users><quotas><default></default></quotas></yandex>
XML
cat > "$ch/config.xml" <<XML
<?xml version="1.0"?><yandex><logger><level>warning</level><console>1</console></logger><http_port>$http</http_port><tcp_port>$tcp</tcp_port><listen_host>127.0.0.1</listen_host><path>$ch/data/</path><tmp_path>$ch/tmp/</tmp_path><user_files_path>$ch/files/</user_files_path><users_config>$ch/users.xml</users_config><default_profile>default</default_profile><default_database>default</default_database><timezone>UTC</timezone><mark_cache_size>268435456</mark_cache_size></yandex>
XML
clickhouse-server --config-file="$ch/config.xml" >"$ch/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$http/ping" >/dev/null; do sleep 0.2; done
echo "clickhouse: $(curl -s "http://127.0.0.1:$http/?query=SELECT%20version()")"
url="clickhouse://127.0.0.1:$http/burnrate"

t0=$(now)
"$bin" migrate --from "duckdb:$db" --to "clickhouse:$url" | grep -E 'moved|match'
t1=$(now)
printf 'insert into ClickHouse (one writer, via migrate): %d events in %.2f s = %.0f events/s\n' \
  "$events" "$(elapsed "$t0" "$t1")" "$(echo "$events / $(elapsed "$t0" "$t1")" | bc -l)"
curl -s "http://127.0.0.1:$http/?query=OPTIMIZE%20TABLE%20burnrate.events%20FINAL" >/dev/null
bytes=$(curl -s "http://127.0.0.1:$http/?query=SELECT%20sum(bytes_on_disk)%20FROM%20system.parts%20WHERE%20database%3D'burnrate'%20AND%20table%3D'events'%20AND%20active")
printf 'clickhouse disk: %.1f MB = %.1f bytes/event\n' "$(echo "$bytes / 1000000" | bc -l)" "$(echo "$bytes / $events" | bc -l)"

range=(--since 2026-10-01 --until 2026-11-21)
for ledger in "$db" "$url"; do
  name=duckdb; [ "$ledger" = "$url" ] && name=clickhouse
  for report in users-daily features runs outcomes tenants coverage; do
    "$bin" report "$report" --db "$ledger" "${range[@]}" --format json >/dev/null 2>&1 # warm caches
    best=999
    for _ in 1 2 3; do
      t0=$(now)
      "$bin" report "$report" --db "$ledger" "${range[@]}" --format json >/dev/null 2>&1
      t1=$(now)
      e=$(elapsed "$t0" "$t1")
      best=$(echo "if ($e < $best) $e else $best" | bc -l)
    done
    printf '%-10s report %-12s best of 3: %.3f s (whole CLI run)\n' "$name" "$report" "$best"
  done
done
