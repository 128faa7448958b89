#!/usr/bin/env bash
# Runs earshot's benchmark (benches/pipeline.rs) on LocalStack: installs what is missing, starts
# LocalStack unless it runs, runs `cargo bench --bench pipeline`, stops what it started. The
# table is printed and written to bench/out/results.md. BENCH_QUICK=1 for a smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
localstack/with-servers.sh -- cargo bench --bench pipeline
