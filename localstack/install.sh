#!/usr/bin/env bash
# Installs the pinned LocalStack (S3, SQS, SNS) and moto server into .venv/ at the repo root, with
# the checkers the tests run: cfn-lint (the AWS template) and openapi-spec-validator + jsonschema
# (the http engine's contract, through tests/tools/check_openapi.py).
# Idempotent: does nothing when the pinned versions are already there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
stamp="$venv/.earshot-pins"
pins=(
  "localstack-core[runtime]==4.13.1"
  "cbor2<5.7"
  "pyopenssl<24.3"
  "cryptography<45"
  "service_identity"
  "moto[server]==5.1.*"
  "cfn-lint==1.*"
  "openapi-spec-validator>=0.8,<0.9"
)
want=$(printf '%s\n' "${pins[@]}")
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python=${PYTHON:-python3}
"$python" -c 'import sys; assert sys.version_info[:2] >= (3, 11), "LocalStack 4.13 needs Python >= 3.11"'
echo "Installing LocalStack and moto into $venv ..." >&2
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
printf '%s\n' "$want" > "$stamp"
