#!/usr/bin/env bash
# Checks that the LocalStack answering at LOCALSTACK_URL (default http://127.0.0.1:4566) is the
# version localstack/install.sh pins: the tests and the demo speak to whatever answers there, and
# another version (or one with an incompatible moto inside) fails them with errors that do not
# say why. Exits 0 when it is the pinned one; 1, naming the version found and the one needed,
# when it is not; 2 when nothing answers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
url=${LOCALSTACK_URL:-http://127.0.0.1:4566}
needed=$(sed -n 's/.*"localstack-core\[runtime\]==\([0-9.]*\)".*/\1/p' "$root/localstack/install.sh")
if ! health=$(curl -fsS --max-time 5 "$url/_localstack/health" 2>/dev/null); then
  echo "No LocalStack answers at $url." >&2
  exit 2
fi
found=$(printf '%s' "$health" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("version", "unknown"))' 2>/dev/null || echo unknown)
if [ "$found" != "$needed" ]; then
  echo "The LocalStack answering at $url is version $found; earshot's tests need $needed" \
       "(localstack/install.sh pins it). Stop that one (or free the port), then run again:" \
       "localstack/start.sh starts the pinned one." >&2
  exit 1
fi
