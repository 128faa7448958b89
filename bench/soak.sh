#!/usr/bin/env bash
# A soak with faults (not a timed test): two `earshot serve` daemons on one queue, thousands of
# uploads, S3/SQS outages, a refusing callback receiver, a SIGKILL, slow S3; then the exact
# accounting of bench/soak.py (its docstring says what is counted). Installs what is missing,
# builds earshot, starts LocalStack unless it runs, and stops what it started. Exit 0 when
# nothing was lost, judged twice or left unexplained.
#
# Usage: bench/soak.sh [--uploads N] [--rate PER_SEC] [--settle SECS]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --quiet --bin earshot
localstack/with-servers.sh -- .venv/bin/python bench/soak.py "$@"
