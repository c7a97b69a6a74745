#!/usr/bin/env bash
# Ceph for POCKETCLOUD_S3_ENGINE=ceph and its tests: Debian's packages only. Nothing is started
# or configured here: pocketcloud bootstraps, supervises and stops one cluster per home itself
# (emulator/storage/ceph/). As root: installs what is missing. As a normal user: prints it.
# Idempotent.
set -euo pipefail

PACKAGES=(ceph-mon ceph-osd ceph-mgr radosgw ceph-common)
say() { printf '[engines] ceph: %s\n' "$*"; }

if ! command -v dpkg-query >/dev/null; then
  say "not a Debian/Ubuntu system: install Ceph's mon, osd, mgr, radosgw and CLI tools to use POCKETCLOUD_S3_ENGINE=ceph"
  exit 0
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  say "installed ($(ceph --version | awk '{print $3}'))"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  say "missing packages: ${missing[*]}"
  say "install them with:  sudo apt-get install --no-install-recommends ${missing[*]}"
  exit 1
fi
say "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
say "installed ($(ceph --version | awk '{print $3}'))"
