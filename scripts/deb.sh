#!/usr/bin/env bash
# Builds earshot's Debian package from binaries already built:
#   cargo build --release --bins && scripts/deb.sh
# makes target/debian/earshot_VERSION_ARCH.deb from target/release/. Options:
#   --bin-dir DIR   where earshot and earshot-lambda are (default target/release)
#   --version V     the package version (default: Cargo.toml's)
#   --out DIR       where the .deb goes (default target/debian)
#   --fast          strip debug info from the binaries and compress lightly (for a package made
#                   from a debug build, as the tests do: 230 MB of binaries otherwise)
# Prints the package's path. The package holds the two binaries, the hardened unit of
# infra/minio/ (run as the system user `earshot`), /etc/earshot/earshot.toml as a conffile (the
# MinIO example), the man pages and shell completions made by earshot itself, the alerting rules
# and dashboard of infra/monitoring/, and the maintainer scripts of infra/debian/ (the user,
# /var/lib/earshot/{models,library}, a secrets file). Needs only dpkg-deb.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin_dir="$root/target/release"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -1)
out="$root/target/debian"
fast=false
while [ $# -gt 0 ]; do
  case "$1" in
    --fast) fast=true; shift ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: scripts/deb.sh [--bin-dir DIR] [--version V] [--out DIR] [--fast]" >&2; exit 2 ;;
  esac
done
for binary in earshot earshot-lambda; do
  [ -x "$bin_dir/$binary" ] || { echo "scripts/deb.sh: no $bin_dir/$binary; build it first (cargo build --release --bins)" >&2; exit 1; }
done
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg="$stage/earshot"

install -D -m 0755 "$bin_dir/earshot" "$pkg/usr/bin/earshot"
install -D -m 0755 "$bin_dir/earshot-lambda" "$pkg/usr/bin/earshot-lambda"
level=9
if $fast; then
  strip --strip-debug "$pkg/usr/bin/earshot" "$pkg/usr/bin/earshot-lambda"
  level=1
fi
install -D -m 0644 "$root/infra/minio/earshot.service" "$pkg/lib/systemd/system/earshot.service"
install -D -m 0644 "$root/infra/minio/earshot.toml" "$pkg/etc/earshot/earshot.toml"
for file in earshot-alerts.yml earshot-alerts.test.yml earshot-dashboard.json README.md; do
  install -D -m 0644 "$root/infra/monitoring/$file" "$pkg/usr/share/earshot/monitoring/$file"
done
install -D -m 0644 "$root/README.md" "$pkg/usr/share/doc/earshot/README.md"
install -D -m 0644 "$root/infra/minio/README.md" "$pkg/usr/share/doc/earshot/README.minio.md"
install -D -m 0644 "$root/infra/debian/copyright" "$pkg/usr/share/doc/earshot/copyright"
mkdir -p "$pkg/usr/share/man/man1"
"$bin_dir/earshot" man --dir "$pkg/usr/share/man/man1" >/dev/null
gzip -9n "$pkg"/usr/share/man/man1/*.1
install -d "$pkg/usr/share/bash-completion/completions" "$pkg/usr/share/zsh/vendor-completions" \
  "$pkg/usr/share/fish/vendor_completions.d"
"$bin_dir/earshot" completions bash > "$pkg/usr/share/bash-completion/completions/earshot"
"$bin_dir/earshot" completions zsh > "$pkg/usr/share/zsh/vendor-completions/_earshot"
"$bin_dir/earshot" completions fish > "$pkg/usr/share/fish/vendor_completions.d/earshot.fish"
find "$pkg/usr/share" -type f -exec chmod 0644 {} +

mkdir -p "$pkg/DEBIAN"
install -m 0755 "$root/infra/debian/postinst" "$root/infra/debian/prerm" "$root/infra/debian/postrm" "$pkg/DEBIAN/"
echo /etc/earshot/earshot.toml > "$pkg/DEBIAN/conffiles"
(cd "$pkg" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$pkg/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: earshot
Version: $version
Architecture: $arch
Maintainer: earshot developers <earshot@localhost>
Installed-Size: $size
Depends: libc6, adduser, passwd
Recommends: ffmpeg
Section: net
Priority: optional
Description: moderation of audio uploaded to S3-compatible object storage
 earshot watches an S3, MinIO or other S3-compatible bucket: each new audio
 object a rule matches is fetched, decoded and moderated (pornographic,
 illegal, advertising content, scored 0-100) by an offline engine or a
 cloud API; what fails is made private or moved aside, and a callback in
 Tencent COS's format tells your service. This package runs "earshot serve"
 as a hardened systemd service beside MinIO: edit /etc/earshot/earshot.toml,
 then run "systemctl enable --now earshot".
CONTROL
mkdir -p "$out"
deb="$out/earshot_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zgzip -z"$level" --build "$pkg" "$deb" >/dev/null
echo "$deb"
