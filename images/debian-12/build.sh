#!/usr/bin/env bash
# debian-12: Debian bookworm (debootstrap, minbase) with systemd, openssh-server and
# cloud-init, plus the Debian cloud kernel (dbus too: without it systemd-logind does not
# run and the ACPI power button - libvirt's shutdown - is ignored). One rootfs, two kinds:
#   OUTDIR/vmlinuz, initrd.img, disk.qcow2, vm.json  - the VM (direct kernel boot)
#   OUTDIR/rootfs.tar                                 - the container
# In the container /sbin/init runs cloud-init's stages and sshd instead of systemd
# (files/sbin/init). Needs root, debootstrap, and the Debian archive (any apt mirror).
# About 3 minutes and 1.2 GB of scratch space; the base qcow2 is ~300 MB.
# Progress: each step is a `==> ` line and every tool's output streams as it is printed
# (no filter that buffers), so `pocketcloud images build` shows it live.
set -euo pipefail
out=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
cache=${POCKETCLOUD_CACHE:-$HOME/.cache/pocketcloud}/debootstrap
mirror=${POCKETCLOUD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" = 0 ] || { echo "debian-12 must be built as root (debootstrap, chroot)" >&2; exit 1; }
for tool in debootstrap mke2fs qemu-img tar; do
  command -v "$tool" >/dev/null || { echo "missing host tool $tool" >&2; exit 1; }
done
mkdir -p "$cache"
work=$(mktemp -d "${TMPDIR:-/var/tmp}/pc-debian12.XXXXXX")
root="$work/rootfs"
cleanup() {
  for m in dev/pts dev proc sys; do umount -l "$root/$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
step() { echo "==> $*"; }
indent() { sed -u 's/^/  /'; }  # unbuffered: a line goes out as soon as the tool prints it

step "debootstrap bookworm (minbase + systemd, openssh-server, cloud-init) from $mirror"
# debootstrap prints one line per stage and writes what dpkg does (each package unpacked
# and set up) to its own log: follow that log too, until debootstrap exits.
debootstrap --variant=minbase --cache-dir="$cache" \
  --include=systemd-sysv,dbus,openssh-server,cloud-init,python3-cffi-backend,ifupdown,isc-dhcp-client,netbase,iproute2,udev,sudo,ca-certificates,less,procps \
  bookworm "$root" "$mirror" > >(indent) 2>&1 &
bootstrap=$!
tail -n +1 -F --pid="$bootstrap" "$root/debootstrap/debootstrap.log" 2>/dev/null \
  | grep --line-buffered -E '^(Unpacking|Setting up|Preparing to unpack) ' | sed -u 's/^/  dpkg: /' &
wait "$bootstrap"
wait
[ -x "$root/usr/bin/cloud-init" ] || { echo "debootstrap failed" >&2; exit 1; }

step "installing the Debian cloud kernel in the chroot"
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"   # start no services in the chroot
chmod 755 "$root/usr/sbin/policy-rc.d"
cat > "$root/etc/apt/sources.list" <<SRC
deb $mirror bookworm main
deb $mirror bookworm-updates main
SRC
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -q update 2>&1 | indent
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends \
  linux-image-cloud-amd64 initramfs-tools 2>&1 | indent
kver=$(ls "$root/lib/modules" | sort -V | tail -n1)
[ -f "$root/boot/vmlinuz-$kver" ] && [ -f "$root/boot/initrd.img-$kver" ] || { echo "no kernel/initrd in the chroot" >&2; exit 1; }
step "guest kernel $kver"

step "configuring: fstab, serial console, cloud-init, the container init"
cat > "$root/etc/fstab" <<FSTAB
LABEL=debian-root / ext4 defaults,errors=remount-ro 0 1
FSTAB
echo debian > "$root/etc/hostname"
cp -a "$here/files/etc/." "$root/etc/"
chroot "$root" dpkg-divert --local --rename --add /sbin/init >/dev/null
install -m 0755 "$here/files/sbin/init" "$root/sbin/init"
install -m 0755 "$here/files/usr/local/sbin/pocketcloud-container-init" "$root/usr/local/sbin/pocketcloud-container-init"
install -m 0755 "$here/files/usr/local/sbin/pocketcloud-seed-keys" "$root/usr/local/sbin/pocketcloud-seed-keys"
chroot "$root" systemctl enable pocketcloud-seed-keys.service 2>&1 | indent
# Each instance gets its own identity: no machine-id, no SSH host keys in the image.
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*
# Boot faster under TCG: nothing waits for a network that cloud-init configures anyway.
chroot "$root" systemctl mask systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
  e2scrub_all.timer man-db.timer fstrim.timer >/dev/null 2>&1 || true
chroot "$root" passwd -l root >/dev/null
rm -f "$root/usr/sbin/policy-rc.d"
chroot "$root" apt-get clean
step "cleaning the image: apt lists and caches, logs"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/tmp/* "$root"/var/log/*.log
for m in dev/pts dev proc sys; do umount "$root/$m"; done

cp "$root/boot/vmlinuz-$kver" "$out/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$out/initrd.img"

step "packing rootfs.tar (the container kind)"
tar --numeric-owner -C "$root" --exclude=./boot -cf "$out/rootfs.tar" .

step "making the ext4 root disk (mke2fs -d, no loop mount) and its qcow2 base"
truncate -s 4G "$work/disk.raw"
mke2fs -q -t ext4 -L debian-root -d "$root" "$work/disk.raw"
qemu-img convert -q -O qcow2 "$work/disk.raw" "$out/disk.qcow2"
rm -f "$work/disk.raw"

version=$(. "$root/etc/os-release" && echo "$PRETTY_NAME")
cat > "$out/vm.json" <<JSON
{
  "kernel": "vmlinuz",
  "initrd": "initrd.img",
  "disk": "disk.qcow2",
  "cmdline": "root=LABEL=debian-root ro console=ttyS0 net.ifnames=0",
  "ssh": true,
  "ssh_user": "root",
  "ready_marker": "pocketcloud-init: ready",
  "boot_timeout": 360,
  "min_memory_mib": 512,
  "guest_kernel": "${kver}"
}
JSON
cat > "$out/manifest.json" <<JSON
{"os": "${version}", "init": "systemd (VM) / cloud-init stages (container)", "guest_kernel": "${kver}", "rootfs_bytes": $(stat -c %s "$out/rootfs.tar")}
JSON
step "done: disk.qcow2 $(du -h "$out/disk.qcow2" | cut -f1), rootfs.tar $(du -h "$out/rootfs.tar" | cut -f1)"
