#!/usr/bin/env bash
# Benchmarks the Procfile's `api` process with wrk (50 connections) on 127.0.0.1 only.
#   bench/api/run.sh            # seeds tm_bench_api first if it does not exist
#   DURATION=30s API_WORKERS=2 API_THREADS=4 bench/api/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

DATABASE=${BENCH_DATABASE:-tm_bench_api}
# The API reaches a Postgres on the same host through its Unix socket when there is one, as a
# same-host deployment should: over loopback TCP a kernel whose congestion control is BBR
# stalls results of ~100 KB for 40-80 ms (docs/api-server.md#same-host-postgres).
# BENCH_DATABASE_HOST=127.0.0.1 measures over loopback TCP instead.
SOCKET_DIR=/var/run/postgresql
if [[ -z "${BENCH_DATABASE_HOST:-}" && -S "$SOCKET_DIR/.s.PGSQL.5432" ]]; then
  BENCH_DATABASE_HOST=$SOCKET_DIR
fi
BENCH_DATABASE_HOST=${BENCH_DATABASE_HOST:-127.0.0.1}
if [[ "$BENCH_DATABASE_HOST" == /* ]]; then
  export DATABASE_URL="postgresql+psycopg://postgres@/${DATABASE}?host=${BENCH_DATABASE_HOST}"
else
  export DATABASE_URL="postgresql+psycopg://postgres@${BENCH_DATABASE_HOST}:5432/${DATABASE}"
fi
export API_HOST=127.0.0.1 API_PORT=${BENCH_PORT:-3999}
DURATION=${DURATION:-30s}
CONNECTIONS=${CONNECTIONS:-50}
PSQL=(psql -h 127.0.0.1 -U postgres -d "$DATABASE" -Atq)
WORK=$(mktemp -d)
trap 'kill "${API_PID:-0}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }
if ! psql -h 127.0.0.1 -U postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'" \
    | grep -q 1; then
  .venv/bin/python bench/api/seed.py --database-url "$DATABASE_URL"
fi

# A serving database has its hot pages in memory; a freshly seeded one on a fresh machine may
# not (the first runs then read from disk). Read every table and index once, into the
# operating system's cache (pg_prewarm's `read` mode), when the extension is there.
if "${PSQL[@]}" -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" 2>/dev/null; then
  "${PSQL[@]}" -c "SELECT sum(pg_prewarm(c.oid, 'read')) FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'i', 't', 'm') AND n.nspname IN ('public', 'pg_toast')" >/dev/null
else
  echo "pg_prewarm is not installed: the database may be read from disk in the first runs"
fi

API_LINE=$(sed -n 's/^api: //p' Procfile)
PATH="$PWD/.venv/bin:$PATH" bash -c "exec $API_LINE" >"$WORK/api.log" 2>&1 &
API_PID=$!
BASE="http://${API_HOST}:${API_PORT}"
for _ in $(seq 100); do curl -fs "$BASE/metadata/v1/" >/dev/null && break; sleep 0.2; done
curl -fs "$BASE/metadata/v1/" >/dev/null || { cat "$WORK/api.log"; exit 1; }

"${PSQL[@]}" -c "SELECT principal FROM smart_contracts WHERE sip = 'sip-009'" >"$WORK/nfts.txt"
PER_COLLECTION=$("${PSQL[@]}" -c "SELECT max(token_number) FROM tokens WHERE type = 'nft'")
FTS=$("${PSQL[@]}" -c "SELECT count(*) FROM tokens WHERE type = 'ft'")
ONE_NFT="/metadata/v1/nft/$(head -1 "$WORK/nfts.txt")/7"
ETAG=$(curl -fsI "$BASE$ONE_NFT" | sed -n 's/^ETag: //Ip' | tr -d '\r')

echo "api: $API_LINE"
echo "workers=${API_WORKERS:-2} threads=${API_THREADS:-4} connections=$CONNECTIONS duration=$DURATION"
echo "data: $("${PSQL[@]}" -c "SELECT count(*) FROM tokens") tokens, $FTS FTs"
echo "postgres: $BENCH_DATABASE_HOST; tcp congestion control:" \
  "$(cat /proc/sys/net/ipv4/tcp_congestion_control 2>/dev/null || echo unknown)"
for curl_url in "$ONE_NFT" "/metadata/v1/ft"; do curl -fs "$BASE$curl_url" >/dev/null; done

run() {
  local name=$1
  shift
  echo
  echo "== $name"
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" | grep -E \
    "Requests/sec|Non-2xx|Socket errors|^ +(50|75|90|99)%|Latency  "
}
# ROUTES=marketplace runs only the marketplace routes below.
if [[ "${ROUTES:-all}" != marketplace ]]; then
run "GET /nft (random token of 990k)" -s bench/api/nft.lua "$BASE" -- "$WORK/nfts.txt" "$PER_COLLECTION"
run "GET /nft (one token)" "$BASE$ONE_NFT"
run "GET /nft 304 (If-None-Match)" -H "If-None-Match: $ETAG" "$BASE$ONE_NFT"
run "GET /ft (first page)" "$BASE/metadata/v1/ft"
run "GET /ft (random page and order)" -s bench/api/ft_list.lua "$BASE" -- "$FTS"
run "GET / (status)" "$BASE/metadata/v1/"
fi

# The marketplace routes (docs/marketplace-api.md), with the gzip clients send.
.venv/bin/python bench/api/marketplace_requests.py "$DATABASE_URL" "$WORK/marketplace"
GZIP=(-H "Accept-Encoding: gzip")
run "GET /nft/{principal} (100-item page of a 10,000-token collection)" "${GZIP[@]}" \
  -s bench/paths.lua "$BASE" -- "$WORK/marketplace/collections.txt"
run "GET /owners/{principal}/nft (first 100 of an owner's ~200)" "${GZIP[@]}" \
  -s bench/paths.lua "$BASE" -- "$WORK/marketplace/galleries.txt"
run "POST /tokens/batch (100 random NFTs)" -s bench/api/batch.lua "$BASE" -- \
  "$WORK/marketplace/batches.txt"

# Latency at a given load, not at saturation: wrk2 keeps a constant request rate (RATE per
# second, corrected for coordinated omission). Set WRK2 to its binary (built from
# https://github.com/giltene/wrk2) to run these too.
if [[ -n "${WRK2:-}" ]]; then
  RATE=${RATE:-100}
  rate_run() {
    local name=$1
    shift
    echo
    echo "== $name at $RATE requests/s"
    "$WRK2" -t2 -c"$CONNECTIONS" -d"$DURATION" -R"$RATE" --latency "$@" | grep -E \
      "Requests/sec|Non-2xx|Socket errors|^ +(50|75|90|99)\.000%"
  }
  rate_run "GET /nft/{principal} page" "${GZIP[@]}" -s bench/paths.lua "$BASE" -- \
    "$WORK/marketplace/collections.txt"
  rate_run "GET /owners/{principal}/nft" "${GZIP[@]}" -s bench/paths.lua "$BASE" -- \
    "$WORK/marketplace/galleries.txt"
  rate_run "POST /tokens/batch" -s bench/api/batch.lua "$BASE" -- "$WORK/marketplace/batches.txt"
fi
