#!/usr/bin/env bash
# bench/peers/run.sh [N] - drain rate of lash's peers, measured on this machine
# in the same run as lash's own drain benchmark.
#
# For each peer: enqueue N (default 100000) no-op jobs, then ONE worker process
# drains them; only the drain (worker start -> last job done) is timed. Output,
# one line per peer on stdout:
#   peer graphile-worker 0.17 / postgresql 15   drain N=100000   14012 jobs/s
#   peer bullmq 6.7.0 / redis 7.0.15            drain N=100000    8123 jobs/s
# or, when a peer can't be installed or run:
#   peer <name> unavailable: <reason>
# Progress and diagnostics go to stderr.
#
# Durability is strict on both sides: PostgreSQL with fsync=on and
# synchronous_commit=on (its defaults), Redis with appendonly yes and
# appendfsync always. Each server is private to the run (temporary directory,
# unix socket only, no TCP port), is started just before its peer and stopped
# right after it, and is cleaned up on any exit.
#
# Missing Debian packages (postgresql-15, redis-server, nodejs/npm) are
# installed with apt-get (one `apt-get update` first, only when something is
# missing); the npm packages pinned in bench/peers/package.json are installed
# into build/peers/ (PEERS_DEPS_DIR) and reused while package.json is unchanged.
#
# Environment: PEERS_PG_URL (graphile-worker drains on that running server
# instead of a private one: scripts/bench pg runs it on lash's cluster),
# PEERS_ONLY (graphile or bullmq: that peer alone), PEERS_TMPDIR (where the servers' temporary directories go,
# default /tmp), PEERS_STEP_TIMEOUT (seconds allowed for one enqueue or drain,
# default 150), PEERS_BUDGET (seconds allowed for all the enqueues and drains
# together, default 300; installs come on top), PEERS_DEPS_DIR; the Node
# scripts read GW_CONCURRENCY, GW_LOCAL_QUEUE, GW_COMPLETE_BATCH_DELAY and
# BULLMQ_CONCURRENCY to override their tuned settings.
# Exit status: 0 when every peer printed a line (including "unavailable" for a
# peer that could not be installed), 1 when a peer failed while running, 2 on
# bad usage.
set -euo pipefail

usage() { echo "usage: bench/peers/run.sh [N]   (N jobs per peer, default 100000)"; }
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
if [ $# -gt 1 ]; then usage >&2; exit 2; fi
N=${1:-100000}
if ! [[ "$N" =~ ^[1-9][0-9]{0,8}$ ]]; then usage >&2; exit 2; fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DEPS=${PEERS_DEPS_DIR:-$ROOT/build/peers}
STEP_TIMEOUT=${PEERS_STEP_TIMEOUT:-150}
BUDGET=${PEERS_BUDGET:-300}
for v in "$STEP_TIMEOUT" "$BUDGET"; do
  [[ "$v" =~ ^[1-9][0-9]{0,5}$ ]] || { echo "run.sh: PEERS_STEP_TIMEOUT/PEERS_BUDGET must be seconds" >&2; exit 2; }
done
PG_BIN=/usr/lib/postgresql/15/bin

log() { echo "peers: $*" >&2; }

WORK=$(mktemp -d "${PEERS_TMPDIR:-/tmp}/lash-peers.XXXXXX")
chmod 755 "$WORK"   # the postgres user must reach its data dir inside
PG_DATA="" REDIS_PID="" STEP_PID="" RC=0

as_pg() {  # initdb and postgres refuse to run as root
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop_pg() {
  if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
      kill -KILL "$(head -n1 "$PG_DATA/postmaster.pid")" 2>/dev/null || true
  fi
  PG_DATA=""
}

stop_redis() {
  if [ -n "$REDIS_PID" ]; then
    kill "$REDIS_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  REDIS_PID=""
}

# shellcheck disable=SC2317  # cleanup runs from the EXIT trap
cleanup() {
  if [ -n "$STEP_PID" ]; then  # timeout(1) passes the signal on to its node
    kill "$STEP_PID" 2>/dev/null || true
    wait "$STEP_PID" 2>/dev/null || true
  fi
  stop_pg
  stop_redis
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

unavailable() {  # unavailable NAME REASON...
  local name=$1; shift
  echo "peer $name unavailable: $*"
}

result() {  # result LABEL SECONDS
  awk -v label="$1" -v n="$N" -v s="$2" 'BEGIN {
    if (s <= 0) s = 1e-9
    printf "peer %-38s drain N=%-6s %7d jobs/s\n", label, n, n / s + 0.5 }'
}

tail_log() {  # tail_log FILE - last lines of a log, to stderr
  if [ -s "$1" ]; then tail -n 15 "$1" | sed 's/^/    /' >&2; fi
}

# --- Debian packages -------------------------------------------------------
pkg_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

APT_UPDATED=0
apt_install() {  # apt_install PKG... - true when all end up installed
  local p missing=()
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "not root: can't install ${missing[*]}"
    return 1
  fi
  if [ $APT_UPDATED -eq 0 ]; then
    log "apt-get update"
    APT_UPDATED=1
    timeout 180 apt-get update -qq >"$WORK/apt.log" 2>&1 || { tail_log "$WORK/apt.log"; return 1; }
  fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >"$WORK/apt.log" 2>&1 || { tail_log "$WORK/apt.log"; return 1; }
}

NODE_OK=1 NODE_WHY=""
have_node() { command -v node >/dev/null && command -v npm >/dev/null; }
if ! have_node; then
  if ! apt_install nodejs npm; then
    NODE_OK=0 NODE_WHY="apt-get install nodejs npm failed"
  elif ! have_node; then
    NODE_OK=0 NODE_WHY="no node/npm on PATH"
  fi
fi
have_pg() { [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] && [ -x "$PG_BIN/postgres" ]; }
have_redis() { command -v redis-server >/dev/null && command -v redis-cli >/dev/null; }
PG_OK=1 PG_WHY=""
if ! have_pg; then
  if ! apt_install postgresql-15; then
    PG_OK=0 PG_WHY="apt-get install postgresql-15 failed"
  elif ! have_pg; then
    PG_OK=0 PG_WHY="no initdb/pg_ctl/postgres in $PG_BIN"
  fi
fi
REDIS_OK=1 REDIS_WHY=""
if ! have_redis; then
  if ! apt_install redis-server redis-tools; then
    REDIS_OK=0 REDIS_WHY="apt-get install redis-server failed"
  elif ! have_redis; then
    REDIS_OK=0 REDIS_WHY="no redis-server/redis-cli on PATH"
  fi
fi

# --- npm packages into build/peers ------------------------------------------
if [ $NODE_OK -eq 1 ]; then
  stamp=$( (node --version; cat "$HERE/package.json" "$HERE/package-lock.json" 2>/dev/null) | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$DEPS/.stamp" 2>/dev/null || true)" != "$stamp" ] || ! [ -d "$DEPS/node_modules" ]; then
    log "npm install into $DEPS"
    mkdir -p "$DEPS"
    rm -rf "$DEPS/node_modules" "$DEPS/.stamp"
    cp "$HERE/package.json" "$DEPS/"
    npm_cmd=(install)
    if [ -f "$HERE/package-lock.json" ]; then
      cp "$HERE/package-lock.json" "$DEPS/"
      npm_cmd=(ci)
    fi
    if (cd "$DEPS" && timeout 300 npm "${npm_cmd[@]}" --no-audit --no-fund --loglevel=error \
          >"$WORK/npm.log" 2>&1); then
      echo "$stamp" >"$DEPS/.stamp"
    else
      tail_log "$WORK/npm.log"
      NODE_OK=0 NODE_WHY="npm ${npm_cmd[*]} into $DEPS failed"
    fi
  fi
fi
export NODE_PATH="$DEPS/node_modules"
pkg_version() {  # pkg_version NPM_PACKAGE
  node -p "require('$DEPS/node_modules/$1/package.json').version" 2>/dev/null || echo "?"
}

# run_step LOG CMD... - a bounded step; its stdout and stderr go to LOG. It
# runs in the background so that a signal reaches our traps at once (bash
# defers traps while a foreground child runs); cleanup ends it.
run_step() {
  local out=$1 rc=0 t=$STEP_TIMEOUT; shift
  if [ $((DEADLINE - SECONDS)) -lt "$t" ]; then t=$((DEADLINE - SECONDS)); fi
  if [ "$t" -lt 1 ]; then echo "run.sh: out of time (PEERS_BUDGET)" >"$out"; return 124; fi
  timeout -k 10 "$t" "$@" >"$out" 2>&1 &
  STEP_PID=$!
  wait "$STEP_PID" || rc=$?
  STEP_PID=""
  return $rc
}

why() {  # why STEP RC - reason for a failed run_step
  case $2 in
    124|137) echo "$1 timed out" ;;
    *) echo "$1 failed (exit $2)" ;;
  esac
}

drain_seconds() {  # drain_seconds LOG - the drain_seconds=S a script printed
  sed -n 's/^drain_seconds=\([0-9.]*\)$/\1/p' "$1" | tail -n1
}

# --- graphile-worker on PostgreSQL 15 --------------------------------------
peer_graphile() {
  local name="graphile-worker" gw pgv label url secs rc
  if [ $NODE_OK -eq 0 ]; then unavailable "$name" "$NODE_WHY"; return 0; fi
  if [ $PG_OK -eq 0 ]; then unavailable "$name" "$PG_WHY"; return 0; fi
  gw=$(pkg_version graphile-worker)
  pgv=$("$PG_BIN/postgres" --version 2>/dev/null | sed -n 's/.*PostgreSQL) \([0-9]*\).*/\1/p' || true)
  label="graphile-worker ${gw%.*} / postgresql ${pgv:-?}"

  if [ -n "${PEERS_PG_URL:-}" ]; then
    url=$PEERS_PG_URL
    log "$name: on the server at $url"
    gw_run "$name" "$label" "$url"
    return 0
  fi
  local dir="$WORK/pg"
  mkdir -p "$dir"
  [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
  log "$name: initdb + start postgresql $pgv"
  if ! as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale \
        >"$WORK/initdb.log" 2>&1; then
    tail_log "$WORK/initdb.log"; unavailable "$name" "initdb failed"; RC=1; return 0
  fi
  # fsync and synchronous_commit stay at their (durable) defaults; the rest
  # keeps the server off TCP and checkpoints out of the measured drain (as
  # --auto-aof-rewrite-percentage 0 keeps AOF rewrites out of Redis's).
  cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$dir'
port = 5432
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 512MB
max_wal_size = 8GB
checkpoint_timeout = 30min
EOF
  PG_DATA="$dir/data"
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$dir/server.log" -w -t 60 start >/dev/null 2>&1; then
    tail_log "$dir/server.log"; unavailable "$name" "postgresql did not start"; RC=1; stop_pg; return 0
  fi
  url="postgres:///postgres?host=$dir&user=postgres"
  gw_run "$name" "$label" "$url"
  stop_pg
}

# gw_run NAME LABEL URL - enqueue, checkpoint, drain, print the line.
gw_run() {
  local name=$1 label=$2 url=$3 rc secs
  log "$name: enqueue $N"
  rc=0
  PEERS_PG_URL="$url" run_step "$WORK/gw-enqueue.log" node "$HERE/drain_graphile.js" enqueue "$N" || rc=$?
  if [ $rc -ne 0 ]; then
    tail_log "$WORK/gw-enqueue.log"; unavailable "$name" "$(why enqueue $rc)"; RC=1; stop_pg; return 0
  fi
  # Start the drain from a clean state: everything enqueued is on disk.
  as_pg "$PG_BIN/psql" -qAt -c checkpoint "$url" >/dev/null 2>&1 || true
  log "$name: drain"
  rc=0
  PEERS_PG_URL="$url" run_step "$WORK/gw-drain.log" node "$HERE/drain_graphile.js" drain "$N" || rc=$?
  if [ $rc -ne 0 ]; then
    tail_log "$WORK/gw-drain.log"; unavailable "$name" "$(why drain $rc)"; RC=1; stop_pg; return 0
  fi
  secs=$(drain_seconds "$WORK/gw-drain.log")
  if [ -z "$secs" ]; then unavailable "$name" "drain printed no time"; RC=1; return 0; fi
  result "$label" "$secs"
}

# --- BullMQ on Redis -------------------------------------------------------
peer_bullmq() {
  local name="bullmq" bv rv label sock secs rc
  if [ $NODE_OK -eq 0 ]; then unavailable "$name" "$NODE_WHY"; return 0; fi
  if [ $REDIS_OK -eq 0 ]; then unavailable "$name" "$REDIS_WHY"; return 0; fi
  bv=$(pkg_version bullmq)
  rv=$(redis-server --version 2>/dev/null | sed -n 's/.* v=\([0-9.]*\).*/\1/p' || true)
  label="bullmq $bv / redis ${rv:-?}"

  local dir="$WORK/redis"
  mkdir -p "$dir"
  sock="$dir/redis.sock"
  log "$name: start redis $rv"
  redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 \
    --dir "$dir" --appendonly yes --appendfsync always --save '' \
    --auto-aof-rewrite-percentage 0 --maxmemory-policy noeviction --daemonize no --logfile "$dir/server.log" &
  REDIS_PID=$!
  for _ in $(seq 300); do
    [ "$(redis-cli -s "$sock" ping 2>/dev/null || true)" = PONG ] && break
    kill -0 "$REDIS_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$(redis-cli -s "$sock" ping 2>/dev/null || true)" != PONG ]; then
    tail_log "$dir/server.log"; unavailable "$name" "redis-server did not start"; RC=1; stop_redis; return 0
  fi

  log "$name: enqueue $N"
  rc=0
  PEERS_REDIS_SOCKET="$sock" run_step "$WORK/bq-enqueue.log" node "$HERE/drain_bullmq.js" enqueue "$N" || rc=$?
  if [ $rc -ne 0 ]; then
    tail_log "$WORK/bq-enqueue.log"; unavailable "$name" "$(why enqueue $rc)"; RC=1; stop_redis; return 0
  fi
  log "$name: drain"
  rc=0
  PEERS_REDIS_SOCKET="$sock" run_step "$WORK/bq-drain.log" node "$HERE/drain_bullmq.js" drain "$N" || rc=$?
  if [ $rc -ne 0 ]; then
    tail_log "$WORK/bq-drain.log"; unavailable "$name" "$(why drain $rc)"; RC=1; stop_redis; return 0
  fi
  stop_redis
  secs=$(drain_seconds "$WORK/bq-drain.log")
  if [ -z "$secs" ]; then unavailable "$name" "drain printed no time"; RC=1; return 0; fi
  result "$label" "$secs"
}

DEADLINE=$((SECONDS + BUDGET))
[ "${PEERS_ONLY:-graphile}" = graphile ] && peer_graphile
[ "${PEERS_ONLY:-bullmq}" = bullmq ] && peer_bullmq
exit $RC
