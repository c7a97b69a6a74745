#!/usr/bin/env bash
# Make sure everything `make up` and `make test` need is installed, and the engines run.
#
#   engines.sh                  as root on Debian/Ubuntu: refresh package lists older than a
#                               day, install what is missing (apt), start dockerd, virtlogd
#                               and libvirtd. As a normal user: change nothing, print exactly
#                               what to install or start (exit 1 if anything is missing).
#   engines.sh --check          change nothing, as any user: print what would be refreshed,
#                               installed and started. Exit 0 when nothing would be done, 1
#                               otherwise.
#   engines.sh --packages-only  refresh and install, start nothing (a container, an image build).
#
# Idempotent: a second run finds everything in place and does nothing. The list covers a
# minimal Debian (debootstrap --variant=minbase), not only a full desktop: a Python venv and
# a C toolchain with headers (libvirt-python builds from source), ip, ssh, CA certificates.
set -euo pipefail

MODE=run
case "${1:-}" in
  "") ;;
  --check) MODE=check ;;
  --packages-only) MODE=packages ;;
  -h|--help) sed -n '2,16s/^# \{0,1\}//p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--check | --packages-only]" >&2; exit 2 ;;
esac

# One entry per need; "a|b" is satisfied by either package (the first is installed).
PACKAGES=(
  # the engines, and the VPC networking (nft rules, dnsmasq DHCP on subnet bridges)
  "docker.io|docker-ce" iptables nftables qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients dnsmasq-base
  # the Python side: `make venv` (python3 -m venv, pip over HTTPS) and libvirt-python's build
  python3 python3-venv python3-dev gcc pkg-config libvirt-dev make ca-certificates
  # image recipes (tiny, debian-12)
  busybox-static genisoimage debootstrap kmod cpio e2fsprogs
  # tests, the CLI and this script: ip (free subnets), ssh, curl, pgrep, a headless browser
  iproute2 openssh-client curl procps chromium
)
LOGDIR=${POCKETCLOUD_LOGDIR:-/var/log/pocketcloud}
DOCKER_CONFIG_FILE=${POCKETCLOUD_DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}
LISTS_MAX_AGE=86400  # seconds: image recipes `apt-get download` kernels, which stale lists get wrong
STAMP=/var/lib/apt/periodic/pocketcloud-update-stamp

say() { printf '[engines] %s\n' "$*"; }
is_root() { [ "$(id -u)" = 0 ]; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing_packages() {  # the first alternative of every entry none of whose packages is installed
  local entry alt found
  local -a alts
  for entry in "${PACKAGES[@]}"; do
    found=0
    IFS='|' read -ra alts <<<"$entry"
    for alt in "${alts[@]}"; do installed "$alt" && { found=1; break; }; done
    [ "$found" = 1 ] || echo "${alts[0]}"
  done
}

lists_age() {  # seconds since the package lists were last refreshed; empty when never
  # apt keeps the archive's own Last-Modified as the lists' mtimes, so those say nothing about
  # when *we* refreshed. Use our stamp, apt's daily-job stamp, and the lists folder (it
  # changes whenever an update brings anything new).
  compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null || return 0
  local newest=0 t f
  for f in "$STAMP" /var/lib/apt/periodic/update-success-stamp /var/lib/apt/lists; do
    [ -e "$f" ] || continue
    t=$(stat -c %Y "$f")
    [ "$t" -gt "$newest" ] && newest=$t
  done
  echo $(( $(date +%s) - newest ))
}

age_text() {  # age_text SECONDS|"" -> "last refreshed N h ago" / "never refreshed"
  if [ -z "$1" ]; then echo "never refreshed"; else echo "last refreshed $(($1 / 3600)) h ago"; fi
}

daemon_up() {  # daemon_up NAME
  case $1 in
    dockerd) command -v docker >/dev/null && docker info >/dev/null 2>&1 ;;
    virtlogd) command -v pgrep >/dev/null && pgrep -x virtlogd >/dev/null 2>&1 ;;
    libvirtd) command -v virsh >/dev/null && virsh -c qemu:///system version >/dev/null 2>&1 ;;
  esac
}

kvm_needs_group() {  # what udev does on a normal boot; without it libvirt re-probes QEMU on every call
  [ -c /dev/kvm ] && getent group kvm >/dev/null && [ "$(stat -c %G:%a /dev/kvm)" != kvm:660 ]
}

if ! command -v dpkg-query >/dev/null; then
  say "not a Debian/Ubuntu system: install Docker, libvirt + QEMU, Python >= 3.11 with venv and headers,"
  say "a C compiler, pkg-config, libvirt's headers and chromium yourself, then start dockerd and libvirtd"
  exit 0
fi

mapfile -t missing < <(missing_packages)
age=$(lists_age)
stale=0
if [ -z "$age" ] || [ "$age" -ge "$LISTS_MAX_AGE" ]; then stale=1; fi
down=()
for d in dockerd virtlogd libvirtd; do daemon_up "$d" || down+=("$d"); done

# A cloud's containers outlive a dockerd restart (as its VMs outlive libvirtd's): live-restore.
live_restore_configured() {
  [ -f "$DOCKER_CONFIG_FILE" ] && python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1])).get("live-restore") is True else 1)' "$DOCKER_CONFIG_FILE" 2>/dev/null
}
live_restore_active() { [ "$(docker info --format '{{.LiveRestoreEnabled}}' 2>/dev/null)" = true ]; }

if [ "$MODE" = check ]; then
  todo=0
  if [ "$stale" = 1 ]; then
    todo=1; say "would refresh the package lists (apt-get update): $(age_text "$age")"
  else
    say "package lists are fresh (refreshed $((age / 60)) min ago)"
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    todo=1; say "would install ${#missing[@]} packages: ${missing[*]}"
  else
    say "all ${#PACKAGES[@]} packages are installed"
  fi
  if kvm_needs_group; then todo=1; say "would give /dev/kvm to group kvm (mode 0660), as udev would"; fi
  if ! live_restore_configured; then todo=1; say "would set live-restore in $DOCKER_CONFIG_FILE (containers outlive a dockerd restart)"; fi
  if [ "${#down[@]}" -eq 0 ]; then
    say "dockerd, virtlogd and libvirtd are running"
  elif is_root; then
    todo=1; say "would start: ${down[*]}"
  else
    todo=1; say "not reachable as $(id -un) (not started, or no permission): ${down[*]}"
  fi
  is_root || { [ "$todo" = 0 ] || say "(installing and starting needs root: sudo bash $0)"; }
  exit "$todo"
fi

if ! is_root; then
  ok=1
  if [ "${#missing[@]}" -gt 0 ]; then
    ok=0
    say "missing packages: ${missing[*]}"
    say "install them with:  sudo apt-get update && sudo apt-get install ${missing[*]}"
  fi
  if [ "$MODE" = run ]; then
    daemon_up dockerd || { ok=0; say "dockerd is not reachable: sudo systemctl start docker (and add yourself to the docker group)"; }
    daemon_up libvirtd || { ok=0; say "libvirtd is not reachable: sudo systemctl start libvirtd (and add yourself to the libvirt group)"; }
  fi
  [ "$ok" = 1 ] && say "everything is in place"
  exit $((1 - ok))
fi

export DEBIAN_FRONTEND=noninteractive
if [ "$stale" = 1 ]; then
  say "refreshing the package lists ($(age_text "$age"))"
  apt-get update -qq
  mkdir -p "$(dirname "$STAMP")" && touch "$STAMP"
fi
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing: ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "$MODE" = packages ]; then
  say "packages in place; not starting any daemon (--packages-only)"
  exit 0
fi

mkdir -p "$LOGDIR"
if kvm_needs_group; then
  say "giving /dev/kvm to group kvm (mode 0660), as udev would"
  chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
fi

wait_for() {  # wait_for SECONDS NAME
  local t=$1 name=$2
  for _ in $(seq 1 $((t * 5))); do daemon_up "$name" && return 0; sleep 0.2; done
  say "$name did not come up within ${t}s; see $LOGDIR/$name.log"; return 1
}

start_daemon() {  # start_daemon NAME COMMAND...
  local name=$1; shift
  if daemon_up "$name"; then say "$name is running"; return 0; fi
  say "starting $name (log: $LOGDIR/$name.log)"
  setsid "$@" >>"$LOGDIR/$name.log" 2>&1 < /dev/null &
}

if ! live_restore_configured; then
  say "setting live-restore in $DOCKER_CONFIG_FILE: containers keep running while dockerd restarts"
  mkdir -p "$(dirname "$DOCKER_CONFIG_FILE")"
  python3 - "$DOCKER_CONFIG_FILE" <<'PY'
import json, os, sys
path = sys.argv[1]
conf = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
conf["live-restore"] = True
tmp = path + ".tmp"
with open(tmp, "w") as f:
    json.dump(conf, f, indent=2)
    f.write("\n")
os.replace(tmp, path)
PY
fi
start_daemon dockerd dockerd
wait_for 60 dockerd
if ! live_restore_active; then  # a running dockerd takes live-restore on a reload, no restart
  say "reloading dockerd's configuration (live-restore)"
  [ -s /var/run/docker.pid ] && kill -HUP "$(cat /var/run/docker.pid)" || true
  for _ in $(seq 1 50); do live_restore_active && break; sleep 0.2; done
  live_restore_active || say "dockerd did not take live-restore; see $LOGDIR/dockerd.log"
fi
start_daemon virtlogd virtlogd
start_daemon libvirtd libvirtd
wait_for 60 libvirtd
say "engines ready: $(docker version --format 'dockerd {{.Server.Version}}'), $(virsh -c qemu:///system version | sed -n 's/^Running hypervisor: //p')"

# --- Ceph, the optional S3 engine (POCKETCLOUD_S3_ENGINE=ceph; its tests run in `make test`) ---
bash "$(dirname "${BASH_SOURCE[0]}")/ceph-packages.sh"
