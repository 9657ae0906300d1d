#!/usr/bin/env bash
# `make run`: use the configured PostgreSQL and Redis, or those at the default addresses, or
# start embedded ones (docs/embedded-servers.md); set up the databases, start the simulated
# Stacks network when no real node is configured, then run api, stream, worker, beat and
# flower from the Procfile in the foreground (Ctrl-C stops all, then the embedded servers).
# RUN_DIR (default .run) holds the generated Procfile, the local admin token and the
# embedded servers' data.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

if [ -f .env ]; then set -a; . ./.env; set +a; fi
export API_PORT="${API_PORT:-3000}"
export STREAM_PORT="${STREAM_PORT:-3001}"
run_dir="${RUN_DIR:-.run}"
mkdir -p "$run_dir"

# One line per server on standard error; DATABASE_URL, DATABASE_SERVER_URL and REDIS_URL
# exported for everything below. A configured server that does not answer stops here.
servers="$(python -m shared.manage servers start "$run_dir")"
eval "$servers"
stop_servers() { python -m shared.manage servers stop "$run_dir"; }
trap stop_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

python -m shared.manage ensure-database
alembic upgrade head

. deploy/local-admin-token.sh  # ADMIN_API_TOKEN, generated for local use when unset
grep -E '^(api|stream|worker|beat|flower):' Procfile > "$run_dir/Procfile"

node_configured="${STACKS_NODE_RPC_URL:-${STACKS_NODE_RPC_HOST:-}}"
if [ -z "$node_configured" ] || [ -z "${STACKS_API_DATABASE_URL:-}" ]; then
  node_port="${DEVNET_NODE_PORT:-20443}"
  metadata_port="${DEVNET_METADATA_PORT:-8999}"
  export STACKS_API_DATABASE_URL="${DEVNET_DATABASE_URL:-${DATABASE_SERVER_URL}/stacks_api_devnet}"
  export STACKS_NODE_RPC_URL="http://127.0.0.1:${node_port}"
  unset STACKS_NODE_RPC_HOST STACKS_NODE_RPC_PORT
  # The simulated metadata host lives on loopback, which the fetcher refuses by default.
  export METADATA_FETCH_ALLOW_PRIVATE_NETWORKS=true
  echo "No Stacks node configured: using the simulated network (devnet, development only)."
  # DEVNET_SCENARIO: a scenario JSON of your own, e.g. a large backfill written by
  # `python bench/run.py --nft-tokens 10000 --scenario-only .run/scenario.json`.
  scenario_arg=""
  if [ -n "${DEVNET_SCENARIO:-}" ]; then scenario_arg="--scenario $(realpath "$DEVNET_SCENARIO")"; fi
  python -m devnet seed --database-url "$STACKS_API_DATABASE_URL" $scenario_arg
  echo "devnet: python -m devnet serve --node-port ${node_port} --metadata-port ${metadata_port} $scenario_arg" >> "$run_dir/Procfile"
fi

cat <<MSG

  API status:  http://localhost:${API_PORT}/metadata/v1/
  API docs:    http://localhost:${API_PORT}/metadata/v1/openapi.json
  Changes:     curl -N "http://localhost:${STREAM_PORT}/metadata/v1/changes/stream?after=0"
               (the live stream of the change log, docs/change-feed.md#stream)
  Dashboard:   http://localhost:${API_PORT}/metadata/v1/dashboard
  Admin token: ${admin_token_line}
  Flower:      http://127.0.0.1:${FLOWER_PORT:-5555}/ (Celery tasks and queues)
  Metrics:     http://localhost:${API_PORT}/metrics, worker: http://127.0.0.1:${WORKER_METRICS_PORT:-9808}/metrics,
               stream: http://localhost:${STREAM_PORT}/metrics
  Token:       curl http://localhost:${API_PORT}/metadata/v1/nft/<principal>/1
               (the devnet prints the principals it serves below)
  Ctrl-C stops everything.

MSG
# Not exec'd: the servers are stopped (the EXIT trap) after honcho has stopped the processes.
honcho --procfile "$run_dir/Procfile" --app-root . start
