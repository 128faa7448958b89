#!/usr/bin/env bash
# Builds what is uploaded to AWS Lambda, and checks it against Lambda's limits:
# - earshot-lambda.zip: the function, `bootstrap` (earshot-lambda, stripped) for provided.al2023;
# - earshot-speech-model.zip: a layer with the speech model, unpacked by Lambda under /opt
#   (engines.speech.model = "/opt/earshot/models/<file>").
# Beside the binary the model would fill Lambda's 50 MiB direct upload to within 2 MB, and a larger
# model would not fit: it is a layer of its own (infra/aws/README.md).
#
# Usage: scripts/lambda-package.sh [--binary PATH] [--out DIR]
#   --binary  an earshot-lambda already built (default: `cargo build --release`, for this machine's
#             architecture; see infra/aws/README.md for arm64)
#   --out     where the zips go (default: target/lambda)
# Prints one line per zip: name, zipped bytes, unzipped bytes. Exits 1 when a limit is exceeded.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
binary=""
out="$root/target/lambda"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--binary PATH] [--out DIR]" >&2; exit 2 ;;
  esac
done
if [ -z "$binary" ]; then
  cargo build --manifest-path "$root/Cargo.toml" --release --bin earshot-lambda >&2
  binary="$root/target/release/earshot-lambda"
fi
model="$root/.earshot/models/ggml-tiny.en-q8_0.bin"
[ -f "$model" ] || "$root/scripts/speech-model/fetch.sh" >/dev/null
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
strip -o "$work/bootstrap" "$binary"
python3 - "$out" "$work/bootstrap" "$model" <<'EOF'
import os, sys, zipfile

out, bootstrap, model = sys.argv[1:]
# Lambda's limits: 50 MB for a zip uploaded directly, 250 MB unzipped for the function and all
# its layers together.
MAX_ZIPPED, MAX_UNZIPPED = 50 * 1024 * 1024, 250 * 1024 * 1024

def pack(name, members):
    path = os.path.join(out, name)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for source, arcname, mode in members:
            info = zipfile.ZipInfo.from_file(source, arcname)
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(source, "rb") as f:
                z.writestr(info, f.read(), compresslevel=9)
    zipped = os.path.getsize(path)
    unzipped = sum(os.path.getsize(source) for source, _, _ in members)
    print(f"{name} {zipped} {unzipped}")
    return zipped, unzipped

function = pack("earshot-lambda.zip", [(bootstrap, "bootstrap", 0o755)])
layer = pack("earshot-speech-model.zip",
             [(model, "earshot/models/" + os.path.basename(model), 0o644)])
failed = False
for name, (zipped, _) in [("earshot-lambda.zip", function), ("earshot-speech-model.zip", layer)]:
    if zipped > MAX_ZIPPED:
        print(f"{name}: {zipped} bytes zipped, over Lambda's {MAX_ZIPPED}", file=sys.stderr)
        failed = True
if function[1] + layer[1] > MAX_UNZIPPED:
    print(f"function and layer: {function[1] + layer[1]} bytes unzipped, over Lambda's {MAX_UNZIPPED}",
          file=sys.stderr)
    failed = True
sys.exit(1 if failed else 0)
EOF
