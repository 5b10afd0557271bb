#!/usr/bin/env bash
# Gateway benchmarks: latency added over the mock provider called directly, side by side with
# LiteLLM's proxy, at fixed request rates (open loop), and memory at 10,000 open streams.
# Usage: bench/gateway.sh [--no-litellm] [gateway_bench options, e.g. --rates 2000 --seconds 5]
# Prints a Markdown table; BENCHMARKS.md records it next to the targets.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/cargo-target}"
litellm=(--litellm-start bench/litellm/start.sh)
if [ "${1:-}" = "--no-litellm" ]; then
  litellm=()
  shift
fi
# The feature set the tests use, so DuckDB is not rebuilt; examples are part of the test build.
cargo build --release -q --workspace --tests --examples
ulimit -n "$(ulimit -Hn)"
exec "$CARGO_TARGET_DIR/release/examples/gateway_bench" \
  --burnrate "$CARGO_TARGET_DIR/release/burnrate" "${litellm[@]}" "$@"
