#!/usr/bin/env bash
# Installs what earshot's tests, demo and benchmarks need from Debian (ffmpeg, sox, espeak-ng,
# curl, GNU time for peak RSS, pocketsphinx-testdata's speech, frozen-bubble-data and extremetuxracer-data's music) and the pinned LocalStack/moto venv. Installs
# only what is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
packages=(ffmpeg sox libsox-fmt-mp3 espeak-ng curl time pocketsphinx-testdata frozen-bubble-data extremetuxracer-data)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
"$root/localstack/install.sh"
