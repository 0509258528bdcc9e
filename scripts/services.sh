#!/usr/bin/env bash
# Start PostgreSQL and Redis on loopback for the test suite.
#
# Installs the Debian packages when a server is missing and we are root, starts whatever
# is not already answering, waits until both are ready, and prints two eval-able lines:
#   LGR_PG_URI=postgresql://...   LGR_REDIS_URL=redis://...
# Idempotent: reuses servers that already run. Logs go to stderr; exits non-zero when a
# server cannot be started (make test turns that into a failure under CI=true).
set -euo pipefail

PG_PORT="${PG_PORT:-5432}"
PG_DB="${PG_DB:-langgraph_test}"
PG_PASSWORD="${PG_PASSWORD:-postgres}"
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_DIR="${REDIS_DIR:-$PWD/.services/redis}"

log() { echo "[services] $*" >&2; }

need=()
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "missing ${need[*]} and cannot install them (need root and apt-get)"
    exit 1
  fi
  log "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${need[@]}" >&2
fi

# ---- PostgreSQL: newest installed major; create a cluster if there is none; start it
PGVER="$(ls /usr/lib/postgresql | sort -V | tail -1)"
if [ -z "$(pg_lsclusters -h 2>/dev/null | awk -v v="$PGVER" '$1==v')" ]; then
  log "pg_createcluster $PGVER main"
  pg_createcluster "$PGVER" main --port "$PG_PORT" >&2
fi
read -r PGCLUSTER PG_PORT < <(pg_lsclusters -h | awk -v v="$PGVER" \
  '$1==v { if ($2=="main") m=$2" "$3; else if (f=="") f=$2" "$3 } END { print (m!="" ? m : f) }')
if ! pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; then
  log "starting postgres $PGVER/$PGCLUSTER on $PG_PORT"
  # exit code 2 means "already running" (still starting up): fine here
  pg_ctlcluster --skip-systemctl-redirect "$PGVER" "$PGCLUSTER" start >&2 || [ $? -eq 2 ]
fi
for _ in $(seq 1 300); do pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break; sleep 0.1; done
pg_isready -h 127.0.0.1 -p "$PG_PORT" >&2
runuser -u postgres -- psql -p "$PG_PORT" -qX -v ON_ERROR_STOP=1 \
  -c "ALTER ROLE postgres PASSWORD '${PG_PASSWORD}'" >&2
if [ "$(runuser -u postgres -- psql -p "$PG_PORT" -qXtA \
        -c "SELECT 1 FROM pg_database WHERE datname='${PG_DB}'")" != 1 ]; then
  runuser -u postgres -- createdb -p "$PG_PORT" "$PG_DB"
fi

# ---- Redis: reuse whatever already answers on the port, else start a non-persistent one
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
if ! redis_up; then
  log "starting redis on $REDIS_PORT"
  mkdir -p "$REDIS_DIR"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
    --save '' --appendonly no --dir "$REDIS_DIR" \
    --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log"
fi
for _ in $(seq 1 100); do redis_up && break; sleep 0.1; done
redis_up || { log "redis did not come up"; exit 1; }

echo "LGR_PG_URI=postgresql://postgres:${PG_PASSWORD}@127.0.0.1:${PG_PORT}/${PG_DB}"
echo "LGR_REDIS_URL=redis://127.0.0.1:${REDIS_PORT}/0"
