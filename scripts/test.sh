#!/usr/bin/env bash
# The test command: installs what is missing, starts LocalStack (S3, SQS, SNS) and moto server on
# 127.0.0.1 unless they already run, runs the whole suite with cargo nextest (each test its own
# process, as many at once as .config/nextest.toml allows; extra arguments are passed to
# `cargo nextest run`, e.g. a filter such as `pipeline::`), and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
PATH="$PWD/.earshot/tools/bin:$PATH"
localstack/with-servers.sh --moto -- cargo nextest run "$@"
