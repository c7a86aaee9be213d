#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the PostgreSQL store tests: Debian's postgresql package, initdb into a temp dir, run by a
# non-root user (PostgreSQL refuses to run as root), listening on a free loopback port only.
#
#   .ci/postgres.sh start [dir]  installs postgresql if missing, starts a cluster in dir (default: a new temp dir) and prints
#                                one line, the connection URL (export it as APISERVER_TEST_POSTGRES);
#   .ci/postgres.sh stop dir     stops that cluster and removes dir;
#   .ci/postgres.sh pause dir    stops the server but keeps the cluster (a database outage, for the multi-replica tests);
#   .ci/postgres.sh resume dir   starts a paused cluster again, on the same port with the same settings;
#   .ci/postgres.sh restart dir  restarts it (a fast shutdown: open connections are cut, committed data stays).
#
# fsync is off (tests need no durability, and it spares the shared disk); APISERVER_PG_FSYNC=on keeps it on, as bench/run.sh
# --postgres does so that its figures are a deployment's.
#
# .ci/run uses it; run it by hand the same way to test locally, so what you test is what CI runs.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

log() { echo "postgres.sh: $*" >&2; }

bindir() {
  local pg_config
  # The newest installed server version's binaries (initdb and pg_ctl are not on PATH in Debian's layout).
  pg_config=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$pg_config" ] && [ -x "$pg_config/initdb" ] && echo "$pg_config"
}

# Runs a command as the cluster's owner: the current user, or, when that is root, the 'postgres' user the package creates.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$(( 30000 + RANDOM % 20000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  log "no free loopback port found"; return 1
}

start() {
  local dir=${1:-}
  if ! bindir >/dev/null; then
    log "installing postgresql from Debian's packages"
    (apt-get update && apt-get install -y postgresql) >&2 || { log "installing postgresql failed"; return 1; }
  fi
  local bin; bin=$(bindir)
  [ -n "$dir" ] || dir=$(mktemp -d /tmp/apiserver-pg.XXXXXX)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  chmod 700 "$dir"
  local password; password=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
  local pwfile="$dir/.pw"
  (umask 077; printf '%s\n' "$password" >"$pwfile")
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$pwfile"
  as_owner "$bin/initdb" -D "$dir/data" -U apiserver --pwfile="$pwfile" --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >&2
  rm -f "$pwfile"
  # Loopback only; the socket goes into the cluster's own dir so nothing collides with a system cluster.
  # A port free when probed can be taken before the server binds it (this range overlaps the kernel's ephemeral ports, so
  # any outgoing connection may take it): try another one then.
  local port started=0
  for _ in 1 2 3 4 5; do
    port=$(free_port)
    # Kept beside the cluster, so that resume starts it exactly as it was.
    echo "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=200 -c fsync=${APISERVER_PG_FSYNC:-off}" >"$dir/options"
    echo "$port" >"$dir/port"
    if launch "$dir"; then started=1; break; fi
    grep -q "Address already in use" "$dir/server.log" 2>/dev/null || return 1
    log "port $port was taken before the server bound it; trying another"
    : >"$dir/server.log"
  done
  [ "$started" = 1 ] || return 1
  echo "postgres://apiserver:$password@127.0.0.1:$port/postgres"
}

launch() {
  local dir=$1 bin; bin=$(bindir)
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$(cat "$dir/options")" start >&2 \
    || { cat "$dir/server.log" >&2; return 1; }
}

pause() {
  local dir=${1:?usage: postgres.sh pause dir}
  local bin; bin=$(bindir)
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >&2
}

resume() {
  local dir=${1:?usage: postgres.sh resume dir}
  launch "$dir"
}

restart() {
  local dir=${1:?usage: postgres.sh restart dir}
  pause "$dir" && launch "$dir"
}

stop() {
  local dir=${1:?usage: postgres.sh stop dir}
  local bin; bin=$(bindir) || true
  if [ -n "$bin" ] && [ -d "$dir/data" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  pause) shift; pause "$@" ;;
  resume) shift; resume "$@" ;;
  restart) shift; restart "$@" ;;
  *) echo "usage: $0 start [dir] | stop dir | pause dir | resume dir | restart dir" >&2; exit 2 ;;
esac
