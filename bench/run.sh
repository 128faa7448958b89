#!/usr/bin/env bash
# Runs one of earshot's LocalStack benchmarks (default benches/pipeline.rs; `bench/run.sh ams`
# for benches/ams.rs): installs what is missing, starts LocalStack unless it runs, runs
# `cargo bench --bench NAME`, stops what it started. The table is printed and written under
# bench/out/. BENCH_QUICK=1 for a smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
localstack/with-servers.sh -- cargo bench --bench "${1:-pipeline}"
