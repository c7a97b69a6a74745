#!/usr/bin/env bash
# tiny: a busybox userland with a small init that reads a NoCloud seed.
# Usage: build.sh OUTDIR   -> OUTDIR/rootfs.tar (docker-importable), OUTDIR/manifest.json
# Needs only Debian packages (busybox-static); no registry, no root.
set -euo pipefail
out=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
cache=${POCKETCLOUD_CACHE:-$HOME/.cache/pocketcloud}/debs
mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fetch_deb() {  # fetch_deb PACKAGE -> path of the .deb in the cache
  local pkg=$1 deb
  deb=$(ls "$cache"/"${pkg}"_*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$deb" ]; then
    echo "downloading $pkg from the Debian archive" >&2
    (cd "$cache" && apt-get download "$pkg" >&2) || {
      echo "could not download $pkg: run 'apt-get update' (as root) and retry" >&2; exit 1; }
    deb=$(ls "$cache"/"${pkg}"_*.deb | head -n1)
  fi
  echo "$deb"
}

echo "fetching busybox-static"
deb=$(fetch_deb busybox-static)
dpkg-deb -x "$deb" "$work/pkg"
bb="$work/pkg/bin/busybox"
[ -x "$bb" ] || { echo "busybox-static package has no /bin/busybox" >&2; exit 1; }

echo "laying out the root filesystem"
root="$work/rootfs"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,home,var/log,var/lib/cloud,var/www,mnt}
chmod 1777 "$root/tmp"
install -m 0755 "$bb" "$root/bin/busybox"
for applet in $("$bb" --list-full); do
  [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
# Our files replace applet links of the same name (/sbin/init is ours, not busybox's).
(cd "$here/files" && find . -type f) | while read -r f; do rm -f "$root/$f"; done
cp -a "$here/files/." "$root/"
chmod 0755 "$root/sbin/init"
version=$("$bb" 2>&1 | head -n1 | sed -n 's/^BusyBox v\([^ ]*\).*/\1/p')
cat > "$root/etc/os-release" <<OS
NAME="pocketcloud tiny"
ID=pocketcloud-tiny
PRETTY_NAME="pocketcloud tiny (BusyBox ${version})"
VERSION_ID="1"
HOME_URL="https://github.com/pocketcloud"
OS

echo "packing rootfs.tar"
tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$out/rootfs.tar" .
cat > "$out/manifest.json" <<JSON
{"os": "pocketcloud tiny", "busybox": "${version}", "init": "/sbin/init", "rootfs_bytes": $(stat -c %s "$out/rootfs.tar")}
JSON
echo "rootfs.tar: $(du -h "$out/rootfs.tar" | cut -f1)"
