#!/usr/bin/env bash
# Runs the whole benchmark suite and writes docs/benchmarks.md.
#   bench/run.sh           full run (under 10 minutes on 2 cores)
#   bench/run.sh --quick   smoke run (under 60 s; figures not representative)
# Extra arguments go to the driver, e.g. --only latency,chain to run a subset.
set -euo pipefail
cd "$(dirname "$0")/.."

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# 2,000 open streams need ~4,000 sockets in the driver (client + slow upstream) and as many in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10000 ]; then
  echo "warning: open-file limit is $(ulimit -n); the open-streams scenario needs ~10000" >&2
fi

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain -- src bench 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi

dotnet build bench/ApiServer.Bench -c Release --nologo -v quiet
dotnet run -c Release --no-build --project bench/ApiServer.Bench -- --out docs/benchmarks.md --commit "$commit" "$@"
