#!/usr/bin/env bash
# The demo command: earshot's main job end to end on LocalStack, no cloud account. Installs what
# is missing, builds earshot, starts LocalStack unless it runs, runs scripts/demo.py (bucket,
# queue, notification, two uploads, `earshot serve`, callbacks shown), and stops what it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
cargo build --quiet --bin earshot

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
.venv/bin/python scripts/demo.py
