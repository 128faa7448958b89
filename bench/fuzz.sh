#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for SECS seconds each (default 60) with cargo-fuzz
# on the nightly toolchain. Each starts from its seeds and the corpus kept from earlier runs in
# fuzz/corpus/<target>/ (ignored by git; new inputs go there). Seeds: the event target's are the
# tests' event fixtures (tests/fixtures/events/); the decode target's are short recordings made
# here with sox; every other target's are in fuzz/seeds/<target>/. Prints, per target,
# executions, seconds, coverage (edges) and whether it crashed; crashes are kept under
# fuzz/artifacts/<target>/. Exits 1 when a target crashed. cargo-fuzz is installed into
# .earshot/tools/ when missing.
#
# --ci: the short run .ci/run makes (seconds a target): built without optimisation and without
# AddressSanitizer (the build takes a third of the time; libFuzzer's coverage guidance, its
# memory and time limits and Rust's own checks stay), so that it fits in CI. The long run, a
# benchmark, is the default: optimised, with AddressSanitizer.
#
# Usage: bench/fuzz.sh [--ci] [SECS] [TARGET...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=()
if [ "${1:-}" = --ci ]; then
  build=(--dev --sanitizer none)
  shift
fi
secs=${1:-60}
shift || true
export PATH="$root/.earshot/tools/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "Installing cargo-fuzz into $root/.earshot/tools ..." >&2
  cargo install --quiet --locked cargo-fuzz@0.13.2 --root "$root/.earshot/tools"
fi
cd "$root/fuzz"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(ls fuzz_targets | sed 's/\.rs$//'))
made="corpus/decode-seeds"
if [ -z "$(ls -A "$made" 2>/dev/null)" ]; then
  mkdir -p "$made"
  for ext in wav mp3 ogg flac; do
    sox -n -r 8000 -c 1 "$made/tone.$ext" synth 0.2 sine 440 2>/dev/null || true
  done
fi
cargo +nightly fuzz build "${build[@]}" >&2
crashed=0
printf '%-12s %12s %8s %8s %s\n' target executions seconds edges result
for target in "${targets[@]}"; do
  log=$(mktemp)
  result=ok
  mkdir -p "corpus/$target"
  case "$target" in
    event) seeds="../tests/fixtures/events" ;;
    decode) seeds="$made" ;;
    *) seeds="seeds/$target" ;;
  esac
  if ! cargo +nightly fuzz run "${build[@]}" "$target" "corpus/$target" "$seeds" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=20 >"$log" 2>&1; then
    result="CRASH (fuzz/artifacts/$target/; log $log)"
    crashed=1
  fi
  done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 || true)
  runs=$(sed -E 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\1/' <<<"$done_line")
  took=$(sed -E 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\2/' <<<"$done_line")
  edges=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2 || true)
  printf '%-12s %12s %8s %8s %s\n' "$target" "${runs:-?}" "${took:-?}" "${edges:-?}" "$result"
  [ "$result" = ok ] && rm -f "$log"
done
exit $crashed
