#!/usr/bin/env bash
# Make sure the engines pocketcloud drives are installed and running.
# As root on Debian/Ubuntu: installs what is missing (apt) and starts the daemons.
# As a normal user: changes nothing, prints exactly what to install or start.
# Idempotent: a second run finds everything in place and does nothing.
set -euo pipefail

PACKAGES=(docker.io iptables curl openssh-client chromium busybox-static qemu-system-x86 qemu-utils libvirt-daemon-system
          libvirt-clients libvirt-dev pkg-config genisoimage debootstrap kmod cpio dnsmasq-base)
LOGDIR=${POCKETCLOUD_LOGDIR:-/var/log/pocketcloud}

say() { printf '[engines] %s\n' "$*"; }
is_root() { [ "$(id -u)" = 0 ]; }

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local t=$1 what=$2; shift 2
  for _ in $(seq 1 $((t * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  say "$what did not come up within ${t}s; see $LOGDIR"; return 1
}

start_daemon() {  # start_daemon NAME CHECK_CMD START_CMD...
  local name=$1 check=$2; shift 2
  if eval "$check" >/dev/null 2>&1; then say "$name is running"; return 0; fi
  say "starting $name (log: $LOGDIR/$name.log)"
  setsid "$@" >>"$LOGDIR/$name.log" 2>&1 < /dev/null &
}

if ! command -v dpkg-query >/dev/null; then
  say "not a Debian/Ubuntu system: install Docker, libvirt + QEMU yourself and start dockerd and libvirtd"
  exit 0
fi

mapfile -t missing < <(missing_packages)
if [ "${#missing[@]}" -gt 0 ]; then
  if is_root; then
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "missing packages: ${missing[*]}"
    say "install them with:  sudo apt-get install ${missing[*]}"
    exit 1
  fi
fi

if ! is_root; then
  ok=1
  docker info >/dev/null 2>&1 || { ok=0; say "dockerd is not reachable: sudo systemctl start docker (and add yourself to the docker group)"; }
  virsh -c qemu:///system version >/dev/null 2>&1 || { ok=0; say "libvirtd is not reachable: sudo systemctl start libvirtd (and add yourself to the libvirt group)"; }
  [ "$ok" = 1 ] && say "engines are running"
  exit $((1 - ok))
fi

mkdir -p "$LOGDIR"
# What udev does on a normal boot: without it libvirt finds KVM unusable, re-probes QEMU on
# every call and each define/start takes 30-60 s (KVM use itself is still proven by a probe).
if [ -c /dev/kvm ] && getent group kvm >/dev/null && [ "$(stat -c %G:%a /dev/kvm)" != kvm:660 ]; then
  say "giving /dev/kvm to group kvm (mode 0660), as udev would"
  chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
fi
start_daemon dockerd "docker info" dockerd
wait_for 60 dockerd docker info
start_daemon virtlogd "pgrep -x virtlogd" virtlogd
start_daemon libvirtd "virsh -c qemu:///system version" libvirtd
wait_for 60 libvirtd virsh -c qemu:///system version
say "engines ready: $(docker version --format 'dockerd {{.Server.Version}}'), $(virsh -c qemu:///system version | sed -n 's/^Running hypervisor: //p')"

# --- Ceph, the optional S3 engine (POCKETCLOUD_S3_ENGINE=ceph; its tests run in `make test`) ---
bash "$(dirname "${BASH_SOURCE[0]}")/ceph-packages.sh"
