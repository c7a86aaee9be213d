#!/usr/bin/env bash
# Runs the whole benchmark suite and writes docs/benchmarks.md.
#   bench/run.sh           full run (under 10 minutes on 2 cores)
#   bench/run.sh --quick   smoke run (under 60 s; figures not representative)
#   bench/run.sh --postgres  also runs the store and chain scenarios on PostgreSQL: starts a throwaway cluster with
#                            .ci/postgres.sh (fsync on, as a deployment runs it) and stops it at the end. Without the flag,
#                            a server in APISERVER_BENCH_POSTGRES is used when set; otherwise those scenarios run on SQLite only.
# Extra arguments go to the driver, e.g. --only latency,chain to run a subset.
set -euo pipefail
cd "$(dirname "$0")/.."

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# 2,000 open streams need ~4,000 sockets in the driver (client + slow upstream) and as many in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10000 ]; then
  echo "warning: open-file limit is $(ulimit -n); the open-streams scenario needs ~10000" >&2
fi

args=()
postgres=false
for arg in "$@"; do
  if [ "$arg" = --postgres ]; then postgres=true; else args+=("$arg"); fi
done
if $postgres && [ -z "${APISERVER_BENCH_POSTGRES:-}" ]; then
  pgdir=$(mktemp -d /tmp/apiserver-bench-pg.XXXXXX)
  trap 'bash .ci/postgres.sh stop "$pgdir"' EXIT
  APISERVER_BENCH_POSTGRES=$(APISERVER_PG_FSYNC=on bash .ci/postgres.sh start "$pgdir")
  export APISERVER_BENCH_POSTGRES
fi

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain -- src bench 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi

dotnet build bench/ApiServer.Bench -c Release --nologo -v quiet
dotnet run -c Release --no-build --project bench/ApiServer.Bench -- --out docs/benchmarks.md --commit "$commit" "${args[@]}"
