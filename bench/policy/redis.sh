#!/usr/bin/env bash
# Runs the gateway benchmark with the policy of bench/policy/memory.toml kept in a local
# redis-server (started here on a free port, stopped at the end).
# Usage: bench/policy/redis.sh [gateway_bench options]
set -euo pipefail
cd "$(dirname "$0")/../.."
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
redis=$!
trap 'kill $redis' EXIT
policy=$(mktemp)
{ printf '[state]\nkind = "redis"\nurl = "redis://127.0.0.1:%s/0"\n\n' "$port"; cat bench/policy/memory.toml; } > "$policy"
bench/gateway.sh --no-litellm --policy "$policy" "$@"
