#!/usr/bin/env bash
# Prove that scripts/engines.sh knows everything a minimal Debian needs for `make up` and
# `make test`, on a machine that has nothing a fuller image happens to carry.
#
# Outside CI, as root, ~10 minutes, needs dockerd and the Debian archive (and PyPI):
#   1. debootstrap --variant=minbase bookworm, `docker import` it as pc-bookworm-check (no
#      registry pull), copy this checkout's tracked files into a container of it;
#   2. engines.sh --check there must change nothing and list what it would install;
#   3. engines.sh --packages-only installs it for real; --check then finds every package;
#   4. the Python part for real: `make venv` (python3 -m venv + pip install -e
#      '.[test,vm,labs]', which compiles libvirt-python) and imports of what it installed;
#   5. every host tool the code, the recipes and the tests call is on PATH.
# The container, the image and the rootfs are removed at the end, whatever happened.
# Logs: artifacts/clean-machine/.
#
# Two container-isms, not machine needs: a policy-rc.d stops package scripts from starting
# daemons in the container (as Docker's own Debian images do), and the host's local CA
# certificates are copied in (a machine behind a TLS-inspecting proxy needs its CA too).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
IMAGE=pc-bookworm-check
NAME=pc-bookworm-check-$$
MIRROR=${POCKETCLOUD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${POCKETCLOUD_CACHE:-$HOME/.cache/pocketcloud}/debootstrap
OUT=$REPO/artifacts/clean-machine
ROOTFS=""

say() { printf '[clean-machine] %s\n' "$*"; }
fail() { say "FAILED: $*"; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root (debootstrap, docker import)"
for tool in debootstrap docker git tar; do command -v "$tool" >/dev/null || fail "needs $tool on this host"; done

cleanup() {
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  docker rmi -f "$IMAGE" >/dev/null 2>&1 || true
  if [ -n "$ROOTFS" ]; then rm -rf "$ROOTFS"; fi
}
trap cleanup EXIT
cleanup
mkdir -p "$OUT" "$CACHE"
rm -f "$OUT"/*.log
started=$(date +%s)
in_box() { docker exec -i "$NAME" bash -c "$*"; }

say "1. debootstrap --variant=minbase bookworm from $MIRROR (log: $OUT/debootstrap.log)"
ROOTFS=$(mktemp -d /var/tmp/pc-bookworm.XXXXXX)
debootstrap --variant=minbase --cache-dir="$CACHE" bookworm "$ROOTFS" "$MIRROR" >"$OUT/debootstrap.log" 2>&1 \
  || fail "debootstrap (see $OUT/debootstrap.log)"
rm -rf "$ROOTFS"/var/lib/apt/lists/*  # as shipped by a minimal image: no package lists yet
tar -C "$ROOTFS" -c . | docker import - "$IMAGE" >/dev/null
rm -rf "$ROOTFS"; ROOTFS=""
docker run -d --name "$NAME" "$IMAGE" sleep infinity >/dev/null
printf '#!/bin/sh\nexit 101\n' | in_box 'cat > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  in_box 'mkdir -p /usr/local/share/ca-certificates'
  for crt in /usr/local/share/ca-certificates/*.crt; do docker cp "$crt" "$NAME:/usr/local/share/ca-certificates/"; done
fi
git ls-files -z | tar --null -T - -c | in_box 'mkdir -p /src && tar -x -C /src'

say "2. engines.sh --check on the bare system"
set +e
in_box 'cd /src && bash scripts/engines.sh --check' | tee "$OUT/check-before.log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 1 ] || fail "--check on a bare system should exit 1 (something to do), got $rc"
grep -q "would refresh the package lists" "$OUT/check-before.log" || fail "--check did not plan an apt-get update"
for need in python3-venv python3-dev gcc pkg-config iproute2 openssh-client ca-certificates make; do
  grep -q "would install.* $need\b" "$OUT/check-before.log" || fail "--check does not list $need"
done
[ -z "$(in_box 'ls /var/lib/apt/lists | grep -v -x -e partial -e lock || true')" ] \
  || fail "--check changed the package lists"

say "3. engines.sh --packages-only (log: $OUT/install.log)"
in_box 'cd /src && bash scripts/engines.sh --packages-only' >"$OUT/install.log" 2>&1 \
  || { tail -20 "$OUT/install.log"; fail "engines.sh --packages-only"; }
set +e
in_box 'cd /src && bash scripts/engines.sh --check' | tee "$OUT/check-after.log"
set -e
grep -q "all [0-9]* packages are installed" "$OUT/check-after.log" || fail "packages still missing after the install"
grep -q "package lists are fresh" "$OUT/check-after.log" || fail "package lists not refreshed"

say "4. make venv: python3 -m venv + pip install -e '.[test,vm,labs]' (log: $OUT/venv.log)"
in_box 'cd /src && make venv' >"$OUT/venv.log" 2>&1 || { tail -30 "$OUT/venv.log"; fail "make venv"; }
in_box 'cd /src && .venv/bin/python -c "import libvirt, docker, flask, gunicorn, boto3, paramiko, playwright, matplotlib" \
        && test -x .venv/bin/rclone && .venv/bin/pocketcloud --help >/dev/null && .venv/bin/aws --version && .venv/bin/python -m pytest --version' \
  >>"$OUT/venv.log" 2>&1 || { tail -20 "$OUT/venv.log"; fail "the installed Python part does not import or run"; }

say "5. host tools the code, the image recipes and the tests call"
tools="python3 make gcc pkg-config ip ssh ssh-keygen curl pgrep docker dockerd virsh libvirtd virtlogd qemu-system-x86_64
       qemu-img genisoimage debootstrap mke2fs cpio depmod modinfo dpkg-deb apt-get busybox iptables nft dnsmasq chromium"
missing=$(in_box "for t in $(echo $tools); do command -v \$t >/dev/null || printf '%s ' \$t; done")
[ -z "$missing" ] || fail "not on PATH after engines.sh: $missing"

say "OK in $(( $(date +%s) - started )) s: engines.sh --check planned, engines.sh installed, make venv built"
say "everything a minimal bookworm needs; the image and the container are removed now"
