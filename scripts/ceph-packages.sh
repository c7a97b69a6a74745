#!/usr/bin/env bash
# Ceph for POCKETCLOUD_S3_ENGINE=ceph and its tests: Debian's packages only. Nothing is started
# or configured here: pocketcloud bootstraps, supervises and stops one cluster per home itself
# (emulator/storage/ceph/). As root: installs what is missing. As a normal user: prints it.
# Idempotent.
#
# Also sshd (openssh-server) for the multi-host test, whose "other machine" is a network
# namespace running a private sshd. Installing that package normally starts and enables the
# system's SSH service; where this script installs it, it does neither: no new way into
# this machine appears.
set -euo pipefail

PACKAGES=(ceph-mon ceph-osd ceph-mgr radosgw ceph-common)
say() { printf '[engines] ceph: %s\n' "$*"; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

if ! command -v dpkg-query >/dev/null; then
  say "not a Debian/Ubuntu system: install Ceph's mon, osd, mgr, radosgw and CLI tools to use POCKETCLOUD_S3_ENGINE=ceph"
  exit 0
fi
missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
need_sshd=0
installed openssh-server || need_sshd=1
if [ "${#missing[@]}" -eq 0 ] && [ "$need_sshd" = 0 ]; then
  say "installed ($(ceph --version | awk '{print $3}'))"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  [ "${#missing[@]}" -eq 0 ] || say "missing packages: ${missing[*]}"
  [ "${#missing[@]}" -eq 0 ] || say "install them with:  sudo apt-get install --no-install-recommends ${missing[*]}"
  [ "$need_sshd" = 0 ] || say "the multi-host test needs sshd: sudo bash $0 (installs openssh-server, its service left off)"
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing: ${missing[*]}"
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi
if [ "$need_sshd" = 1 ]; then
  say "installing openssh-server for the multi-host test's private sshd (the system's SSH service stays off)"
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then  # tells the package scripts not to start the service
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$guard" && chmod 755 "$guard"
    trap 'rm -f "$guard"' EXIT
  fi
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 openssh-server >/dev/null
  if [ -d /run/systemd/system ]; then
    systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
  fi
fi
say "installed ($(ceph --version | awk '{print $3}'))"
