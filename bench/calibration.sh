#!/usr/bin/env bash
# What chance gives queries of every length (benches/calibration.rs): whole tracks of 1-10 min
# outside the library and their 8 s-3 min excerpts, against the test library and a larger one,
# and the weakest true matches. Installs what is missing, then prints the tables and writes them
# to bench/out/calibration.md. No server needed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo bench --bench calibration
