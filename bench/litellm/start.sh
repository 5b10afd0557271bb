#!/usr/bin/env bash
# Runs the LiteLLM proxy (pinned in requirements.txt) as a benchmark peer, in the foreground.
#
#   bench/litellm/start.sh VENV_DIR UPSTREAM_BASE_URL PORT
#
#   VENV_DIR           virtualenv to create or reuse (the config.yaml is written there too)
#   UPSTREAM_BASE_URL  OpenAI-compatible base URL ending in /v1, e.g. http://127.0.0.1:8791/v1;
#                      its Anthropic route is taken to be the same URL without /v1
#   PORT               port on 127.0.0.1 to serve on
#
# Clients use `Authorization: Bearer sk-bench-master` (the master key; no database, so no
# virtual keys). Ready when GET http://127.0.0.1:PORT/health/liveliness answers 200.
# Setup output (pip) goes to stderr; stdout carries only LiteLLM's own output. The last step
# is `exec`, so this script's PID is the proxy's PID.
set -euo pipefail

if [ "$#" -ne 3 ]; then
    echo "usage: $0 VENV_DIR UPSTREAM_BASE_URL PORT" >&2
    exit 2
fi
venv=$1
upstream=${2%/}
port=$3
case $upstream in
    */v1) ;;
    *) echo "$0: UPSTREAM_BASE_URL must end in /v1, got $upstream" >&2; exit 2 ;;
esac
case $port in
    '' | *[!0-9]*) echo "$0: PORT must be a number, got $port" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
requirements=$here/requirements.txt
python=${PYTHON:-python3}

# 1. The virtualenv, installed only when requirements.txt changed (the stamp holds its sha256).
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "$0: $venv has Python $("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])'); requirements.txt is locked for 3.11" >&2
    exit 1
fi
stamp=$venv/.bench-requirements.sha256
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    # --no-deps: requirements.txt is a full lock; litellm's own metadata does not resolve (see there).
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install -q --no-deps -r "$requirements" >&2
    echo "$want" > "$stamp"
fi

# 2. The config: every model name goes to the upstream, nothing is stored.
config=$venv/config.yaml
cat > "$config.tmp" <<EOF
# Written by bench/litellm/start.sh; rewritten on every start.
model_list:
  - model_name: gpt-4.1-mini
    litellm_params:
      model: openai/gpt-4.1-mini
      api_base: $upstream
      api_key: sk-bench-upstream
  # Any other name (wildcards; the most specific pattern wins). "*" sends the name unchanged to the
  # OpenAI route; "openai/x" is sent as "x".
  - model_name: "openai/*"
    litellm_params:
      model: "openai/*"
      api_base: $upstream
      api_key: sk-bench-upstream
  - model_name: "*"
    litellm_params:
      model: "openai/*"
      api_base: $upstream
      api_key: sk-bench-upstream
  # Claude names go to the upstream's Anthropic route (POST {base without /v1}/v1/messages).
  - model_name: "claude-*"
    litellm_params:
      model: "anthropic/claude-*"
      api_base: ${upstream%/v1}
      api_key: sk-ant-bench-upstream
  - model_name: "anthropic/*"
    litellm_params:
      model: "anthropic/*"
      api_base: ${upstream%/v1}
      api_key: sk-ant-bench-upstream

litellm_settings:
  suppress_startup_output: true
  set_verbose: false
  json_logs: false
  callbacks: []
  success_callback: []
  failure_callback: []
  num_retries: 0
  request_timeout: 600

router_settings:
  num_retries: 0
  disable_cooldowns: true

general_settings:
  master_key: sk-bench-master
  disable_spend_logs: true
  disable_spend_updates: true
  disable_error_logs: true
EOF
mv "$config.tmp" "$config"

# 3. Offline, quiet, no database, one uvicorn worker on uvloop.
unset DATABASE_URL DIRECT_URL DATABASE_URL_READ_REPLICA REDIS_URL REDIS_HOST LITELLM_MASTER_KEY
export LITELLM_LOCAL_MODEL_COST_MAP=True   # bundled price map, no fetch from GitHub
export LITELLM_OFFLINE_MODE=true           # no other self-initiated fetches either
export LITELLM_TELEMETRY_DISABLED=true
export LITELLM_LOG=ERROR                   # LiteLLM and uvicorn at ERROR: no access log line per request
export LITELLM_SUPPRESS_STARTUP_OUTPUT=true # no banner or model list
export LITELLM_MODE=PRODUCTION             # do not read a .env file
export DISABLE_ADMIN_UI=True
export NO_DOCS=True NO_REDOC=True
export PYTHONUNBUFFERED=1
cd "$venv"
exec "$venv/bin/litellm" --config "$config" --host 127.0.0.1 --port "$port" --num_workers 1
