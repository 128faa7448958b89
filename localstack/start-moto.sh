#!/usr/bin/env bash
# Starts moto server on 127.0.0.1:${MOTO_PORT:-5055}: unlike LocalStack it enforces object ACLs on
# anonymous reads, so tests that must see a 403 after `acl-private` use it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/.localstack"
port=${MOTO_PORT:-5055}
mkdir -p "$state"
if curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null; then
  echo "moto server already answers on 127.0.0.1:$port" >&2
  exit 0
fi
"$root/localstack/install.sh"
nohup "$root/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$state/moto.log" 2>&1 &
echo $! >"$state/moto.pid"
for _ in $(seq 1 60); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null; then
    echo "moto server ready on 127.0.0.1:$port (pid $(cat "$state/moto.pid"))" >&2
    exit 0
  fi
  sleep 0.5
done
echo "moto server did not start; see $state/moto.log" >&2
exit 1
