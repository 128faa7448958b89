#!/usr/bin/env bash
# Runs a command with LocalStack (and, with --moto, moto server) answering on 127.0.0.1: starts
# whichever is not already running (a LocalStack already running is used only when it is the
# pinned version: localstack/check-version.sh), runs the command, then stops only what it started.
# Usage: localstack/with-servers.sh [--moto] -- COMMAND [ARGS...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
want_moto=false
while [ $# -gt 0 ]; do
  case "$1" in
    --moto) want_moto=true; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--moto] -- COMMAND [ARGS...]" >&2; exit 2; }

started=()
cleanup() {
  if [ ${#started[@]} -gt 0 ]; then
    "$root/localstack/stop.sh" "${started[@]}"
  fi
}
trap cleanup EXIT

if ! curl -fsS -o /dev/null http://127.0.0.1:4566/_localstack/health 2>/dev/null; then
  "$root/localstack/start.sh"
  started+=(localstack)
else
  # One already runs there: use it only if it is the pinned version.
  "$root/localstack/check-version.sh"
fi
if $want_moto; then
  moto_port=${MOTO_PORT:-5055}
  if ! curl -fsS -o /dev/null "http://127.0.0.1:$moto_port/moto-api/" 2>/dev/null; then
    "$root/localstack/start-moto.sh"
    started+=(moto)
  fi
  export MOTO_ENDPOINT="http://127.0.0.1:$moto_port"
fi
"$@"
