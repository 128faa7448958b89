#!/usr/bin/env bash
# The test command: installs what is missing, starts LocalStack (S3, SQS, SNS) and moto server on
# 127.0.0.1 unless they already run, runs `cargo test` (extra arguments are passed to it), and
# stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
localstack/with-servers.sh --moto -- cargo test "$@"
