#!/usr/bin/env bash
# The demo command: earshot's main job end to end on LocalStack, no cloud account. Installs what
# is missing, builds earshot, starts LocalStack unless it runs, runs scripts/demo.py (bucket,
# queue, notification, two uploads, `earshot serve`, callbacks shown), and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --quiet --bin earshot
localstack/with-servers.sh -- .venv/bin/python scripts/demo.py
