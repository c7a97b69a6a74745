#!/usr/bin/env bash
# tiny: a busybox userland with a small init that reads a NoCloud seed.
# Usage: build.sh OUTDIR
#   -> OUTDIR/rootfs.tar  (docker-importable: the container kind)
#   -> OUTDIR/vmlinuz, initrd.img, disk.qcow2, vm.json (the VM kind: the SAME rootfs on an
#      ext4 disk, booted by the Debian cloud kernel)
#   -> OUTDIR/manifest.json
# Needs only Debian packages (busybox-static, linux-image-cloud-amd64, dropbear-bin and its
# libraries) and the host tools depmod (kmod), mke2fs, cpio, qemu-img. No registry, no loop
# mounts. Run as root so the files on the ext4 disk are owned by root.
set -euo pipefail
out=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
cache=${POCKETCLOUD_CACHE:-$HOME/.cache/pocketcloud}/debs
mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Under pipefail, `cmd | head -n1` fails at random: head exits, cmd dies of SIGPIPE (141).
# first reads its whole input, so the writer never sees a closed pipe.
first() { awk 'NR == 1'; }

fetch_deb() {  # fetch_deb PACKAGE -> path of the .deb in the cache
  local pkg=$1 deb
  deb=$(ls "$cache"/"${pkg}"_*.deb 2>/dev/null | first || true)
  if [ -z "$deb" ]; then
    echo "downloading $pkg from the Debian archive" >&2
    (cd "$cache" && apt-get download "$pkg" >&2) || {
      echo "could not download $pkg: run 'apt-get update' (as root) and retry" >&2; exit 1; }
    deb=$(ls "$cache"/"${pkg}"_*.deb | first)
  fi
  echo "$deb"
}

for tool in dpkg-deb depmod modinfo mke2fs cpio gzip qemu-img; do
  command -v "$tool" >/dev/null || { echo "missing host tool $tool (install kmod, e2fsprogs, cpio, qemu-utils)" >&2; exit 1; }
done

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
version=$("$bb" 2>&1 | sed -n '1s/^BusyBox v\([^ ]*\).*/\1/p')
cat > "$root/etc/os-release" <<OS
NAME="pocketcloud tiny"
ID=pocketcloud-tiny
PRETTY_NAME="pocketcloud tiny (BusyBox ${version})"
VERSION_ID="1"
HOME_URL="https://github.com/pocketcloud"
OS

# ---- the VM part: kernel, modules, dropbear --------------------------------------
echo "fetching the Debian cloud kernel"
kpkg=""
if apt-cache depends linux-image-cloud-amd64 >/dev/null 2>&1; then
  kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | first)
fi
if [ -n "$kpkg" ]; then
  kdeb=$(fetch_deb "$kpkg")
else  # no package lists: use whichever cloud kernel is cached
  kdeb=$(ls "$cache"/linux-image-[0-9]*-cloud-amd64_*.deb 2>/dev/null | sort -V | tail -n1)
  [ -n "$kdeb" ] || { echo "cannot resolve linux-image-cloud-amd64: run 'apt-get update' and retry" >&2; exit 1; }
fi
dpkg-deb -x "$kdeb" "$work/kernel"
kver=$(ls "$work/kernel/lib/modules" | first)
[ -n "$kver" ] && [ -f "$work/kernel/boot/vmlinuz-$kver" ] || { echo "no kernel in $kdeb" >&2; exit 1; }
echo "guest kernel $kver"
cp "$work/kernel/boot/vmlinuz-$kver" "$out/vmlinuz"

# Only the modules a VM needs (virtio disk/net/rng/balloon, the ISO seed, the ACPI power
# button), with their dependencies, so the rootfs stays small.
kmods="$work/kernel/lib/modules/$kver"
copy_module() {  # copy_module DESTROOT NAME: the module and everything it depends on
  local dest=$1 name=$2 f dep
  f=$(find "$kmods/kernel" -name "${name}.ko" -o -name "$(echo "$name" | tr _ -).ko" | first)
  [ -n "$f" ] || { echo "module $name not in the kernel package" >&2; exit 1; }
  [ -e "$dest/lib/modules/$kver/${f#$kmods/}" ] && return 0
  install -D -m 0644 "$f" "$dest/lib/modules/$kver/${f#$kmods/}"
  for dep in $(modinfo -F depends "$f" | tr , ' '); do copy_module "$dest" "$dep"; done
}
finish_modules() {  # finish_modules DESTROOT
  cp "$kmods/modules.builtin" "$kmods/modules.builtin.modinfo" "$kmods/modules.order" "$1/lib/modules/$kver/"
  depmod -b "$1" "$kver"
}
for m in virtio_pci virtio_blk virtio_net virtio_rng virtio_balloon isofs button evdev; do
  copy_module "$root" "$m"
done
finish_modules "$root"

echo "fetching dropbear (SSH server) and its libraries"
for pkg in dropbear-bin libc6 libcrypt1 libtomcrypt1 libtommath1 libgmp10 zlib1g; do
  dpkg-deb -x "$(fetch_deb "$pkg")" "$work/dropbear"
done
for b in usr/sbin/dropbear usr/bin/dropbearkey; do install -D -m 0755 "$work/dropbear/$b" "$root/$b"; done
libdir=lib/x86_64-linux-gnu
mkdir -p "$root/$libdir" "$root/lib64"
for lib in ld-linux-x86-64.so.2 libc.so.6 libcrypt.so.1 libtomcrypt.so.1 libtommath.so.1 libgmp.so.10 libz.so.1 libutil.so.1; do
  src=$(find "$work/dropbear" -name "$lib" | first)
  [ -n "$src" ] || { echo "library $lib not found in the Debian packages" >&2; exit 1; }
  cp -L "$src" "$root/$libdir/$lib"
done
ln -sf "/$libdir/ld-linux-x86-64.so.2" "$root/lib64/ld-linux-x86-64.so.2"
# Prove every shared library resolves inside the rootfs (the guest's loader, our lib dir).
for b in usr/sbin/dropbear usr/bin/dropbearkey; do
  if "$root/$libdir/ld-linux-x86-64.so.2" --library-path "$root/$libdir" --list "$root/$b" | grep 'not found' >/dev/null; then
    echo "$b has unresolved libraries:" >&2
    "$root/$libdir/ld-linux-x86-64.so.2" --library-path "$root/$libdir" --list "$root/$b" >&2
    exit 1
  fi
done
mkdir -p "$root/etc/dropbear"
chmod 0700 "$root/root"

# ---- the initramfs: just enough to load virtio_blk and switch to the disk -----------
echo "building initrd.img"
ird="$work/initrd"
mkdir -p "$ird"/{bin,dev,proc,sys,newroot}
install -m 0755 "$bb" "$ird/bin/busybox"
for a in sh mount umount modprobe insmod switch_root sleep cat echo poweroff uname mkdir; do ln -s busybox "$ird/bin/$a"; done
install -m 0755 "$here/vm/initrd-init" "$ird/init"
for m in virtio_pci virtio_blk; do copy_module "$ird" "$m"; done
finish_modules "$ird"
(cd "$ird" && find . | sort | cpio -o -H newc -R 0:0 --quiet | gzip -9) > "$out/initrd.img"

echo "packing rootfs.tar"
tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$out/rootfs.tar" .
echo "rootfs.tar: $(du -h "$out/rootfs.tar" | cut -f1)"

echo "making the ext4 root disk (mke2fs -d, no loop mount) and its qcow2 base"
truncate -s 512M "$work/disk.raw"
mke2fs -q -t ext4 -L tiny-root -E root_owner=0:0 -d "$root" "$work/disk.raw"
qemu-img convert -q -c -O qcow2 "$work/disk.raw" "$out/disk.qcow2"
echo "disk.qcow2: $(du -h "$out/disk.qcow2" | cut -f1) (512 MiB virtual)"

cat > "$out/vm.json" <<JSON
{
  "kernel": "vmlinuz",
  "initrd": "initrd.img",
  "disk": "disk.qcow2",
  "cmdline": "root=/dev/vda rw console=ttyS0 quiet",
  "ssh": true,
  "ssh_user": "root",
  "ready_marker": "pocketcloud-init: ready",
  "boot_timeout": 120,
  "min_memory_mib": 128,
  "guest_kernel": "${kver}"
}
JSON
cat > "$out/manifest.json" <<JSON
{"os": "pocketcloud tiny", "busybox": "${version}", "init": "/sbin/init", "guest_kernel": "${kver}", "rootfs_bytes": $(stat -c %s "$out/rootfs.tar")}
JSON
