#!/usr/bin/env bash
# The test command: installs what is missing, starts LocalStack (S3, SQS, SNS) and moto server on
# 127.0.0.1 unless they already run, runs `cargo test` (extra arguments are passed to it), and
# stops what it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh

started=()
cleanup() {
  if [ ${#started[@]} -gt 0 ]; then
    localstack/stop.sh "${started[@]}"
  fi
}
trap cleanup EXIT

if ! curl -fsS -o /dev/null http://127.0.0.1:4566/_localstack/health 2>/dev/null; then
  localstack/start.sh
  started+=(localstack)
fi
moto_port=${MOTO_PORT:-5055}
if ! curl -fsS -o /dev/null "http://127.0.0.1:$moto_port/moto-api/" 2>/dev/null; then
  localstack/start-moto.sh
  started+=(moto)
fi
export EARSHOT_TEST_MOTO="http://127.0.0.1:$moto_port"

cargo test "$@"
