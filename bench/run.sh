#!/usr/bin/env bash
# Runs earshot's benchmark (benches/pipeline.rs) on LocalStack: installs what is missing, starts
# LocalStack unless it runs, runs `cargo bench --bench pipeline`, stops what it started. The
# table is printed and written to bench/out/results.md. BENCH_QUICK=1 for a smoke run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
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
cargo bench --bench pipeline
