#!/usr/bin/env bash
# Makes the abuse classifier's model (src/engines/speech/abuse.rs): PyPI alt-profanity-check
# 1.9.1 (MIT), pinned by version and SHA-256, converted to earshot's plain-text form by
# convert.py, whose result's SHA-256 is checked too (the conversion is deterministic). Unpickling
# the package's model needs the scikit-learn and joblib it was saved with, installed from PyPI by
# version into a venv under .earshot/. The package also scores tests/data/abuse/sentences.tsv,
# for the test that checks the Rust classifier against it. Prints the model's path. Only what is
# missing is done; everything stays under .earshot/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir="$root/.earshot/models"
model="$dir/abuse-alt-profanity-check-1.9.1.tsv"
scores="$dir/abuse-expected-scores.tsv"
model_sha256=$(cat "$root/scripts/abuse-model/abuse-alt-profanity-check-1.9.1.sha256")
wheel=alt_profanity_check-1.9.1-py3-none-any.whl
wheel_sha256=cccb8ce072306bac21188670777a25cfb1de978aa8c7a93c8e4a43c03b3945c3
sentences="$root/tests/data/abuse/sentences.tsv"

ok() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --quiet >/dev/null 2>&1; }
if ok "$model" "$model_sha256" && [ -f "$scores" ] && [ "$scores" -nt "$sentences" ]; then
  echo "$model"
  exit 0
fi
mkdir -p "$dir"
export PIP_CACHE_DIR="$root/.earshot/pip-cache"
if ! ok "$dir/$wheel" "$wheel_sha256"; then
  echo "Downloading $wheel from PyPI ..." >&2
  printf 'alt-profanity-check==1.9.1 --hash=sha256:%s\n' "$wheel_sha256" > "$dir/abuse-requirements.txt"
  python3 -m pip download --quiet --no-deps --require-hashes -r "$dir/abuse-requirements.txt" -d "$dir" >&2
fi
venv="$root/.earshot/venvs/abuse-model"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sklearn, joblib' 2>/dev/null; then
  echo "Installing scikit-learn 1.9.1 and joblib 1.6.0 into $venv ..." >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet scikit-learn==1.9.1 joblib==1.6.0 >&2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m zipfile -e "$dir/$wheel" "$work"
echo "Converting the abuse model ..." >&2
"$venv/bin/python" "$root/scripts/abuse-model/convert.py" "$work" "$work/model.tsv" "$sentences" "$work/scores.tsv"
if ! echo "$model_sha256  $work/model.tsv" | sha256sum -c --quiet; then
  echo "The converted model's SHA-256 is $(sha256sum "$work/model.tsv" | cut -d' ' -f1), not $model_sha256" >&2
  exit 1
fi
mv "$work/scores.tsv" "$scores"
mv "$work/model.tsv" "$model"
echo "$model"
