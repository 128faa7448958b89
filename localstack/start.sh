#!/usr/bin/env bash
# Starts LocalStack (S3, SQS, SNS) natively on 127.0.0.1:4566 and waits until it is healthy.
# Its pid is kept in .localstack/localstack.pid, its log in .localstack/localstack.log.
# Does nothing when the pinned LocalStack already answers there; fails, naming both versions, when
# another version does (localstack/check-version.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/.localstack"
mkdir -p "$state"
health=http://127.0.0.1:4566/_localstack/health
if curl -fsS -o /dev/null "$health" 2>/dev/null; then
  "$root/localstack/check-version.sh"
  echo "LocalStack already answers on 127.0.0.1:4566" >&2
  exit 0
fi
"$root/localstack/install.sh"
(
  cd "$state"
  SERVICES=s3,sqs,sns GATEWAY_SERVER=hypercorn GATEWAY_LISTEN=127.0.0.1:4566 \
  LOCALSTACK_HOST=127.0.0.1:4566 SQS_ENDPOINT_STRATEGY=off \
  DATA_DIR= PERSISTENCE=0 LOCALSTACK_VOLUME_DIR="$state/volume" \
    nohup "$root/.venv/bin/python" -m localstack.runtime.main >"$state/localstack.log" 2>&1 &
  echo $! >"$state/localstack.pid"
)
for _ in $(seq 1 120); do
  if curl -fsS -o /dev/null "$health" 2>/dev/null; then
    echo "LocalStack ready on 127.0.0.1:4566 (pid $(cat "$state/localstack.pid"))" >&2
    exit 0
  fi
  if ! kill -0 "$(cat "$state/localstack.pid")" 2>/dev/null; then
    echo "LocalStack exited during start; its log:" >&2
    tail -n 40 "$state/localstack.log" >&2
    exit 1
  fi
  sleep 0.5
done
echo "LocalStack did not become healthy within 60 s; see $state/localstack.log" >&2
exit 1
