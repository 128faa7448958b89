#!/usr/bin/env bash
# Stops the LocalStack and/or moto server that localstack/start.sh and localstack/start-moto.sh
# started, by their recorded pids (anything else on those ports is left alone).
# Usage: stop.sh [localstack] [moto]   (no argument: both)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(localstack moto)
for name in "${names[@]}"; do
  pidfile="$root/.localstack/$name.pid"
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
    echo "Stopped $name (pid $pid)" >&2
  fi
  rm -f "$pidfile"
done
