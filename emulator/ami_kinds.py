"""An image of one's own launched as the other kind (issue 15: "launched as both kinds where
the rootfs allows"). The catalogue's recipes make one rootfs that boots both ways; an AMI's
root is one of the two forms, and the other is made from it once, at the first launch that
needs it, kept beside the AMI and removed with it (DeregisterImage):

- container AMI -> VM: the image's files (`docker export`) become an ext4 disk (`mke2fs -d`,
  as the recipes make theirs, with the label, UUID and size of the catalogue disk) in the
  AMI's folder of the QEMU area, amis/<ami-id>/, with the kernel and initrd of the image the
  container came from: the folder a VM AMI has, so the VM driver boots it unchanged;
- VM AMI -> container: the flattened root disk, raw, read with e2fsprogs (no mount, no nbd),
  `docker import`ed as pocketcloud-amis:<ami-id>, labelled with the cloud and the AMI.

Each is made in amis/.convert-<ami-id>/ and appears whole (a rename, or dockerd's import
completing), so a server killed meanwhile leaves only scratch, which reconcile removes; the
next launch makes it again. Where the rootfs does not allow it (the container's image has no
VM form, the disk holds no ext4), the launch is refused, saying why, with nothing made.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

from .compute.docker_amis import ami_ref
from .errors import CloudError, EngineError, InvalidParameter, NotFound
from .volumes import GIB
from .volumes import rootfs

log = logging.getLogger(__name__)

CONVERT_PREFIX = ".convert-"
MAX_SOURCE_DEPTH = 16  # an AMI of an instance of an AMI of ...: a chain this long is refused


def _refuse(ami_id: str, why: str) -> InvalidParameter:
    return InvalidParameter(f"{ami_id} cannot launch as the other kind: {why}", code="InvalidParameterCombination")


class CrossKindImages:
    """Mixed into MachineImageUseCases; uses its store, images, drivers, locks and ami_dir."""

    def launch_as_other_kind(self, ami, kind: str) -> dict:
        """The launch row of AMI as KIND, its other form made first if this is its first launch so."""
        made = self._other_form(ami, kind)
        if made is None:  # (a describe of its instances finds it made, and never waits here)
            with self._locks.hold(ami.id):  # one conversion at a time; a DeregisterImage waits for it
                row = self.store.one("SELECT state FROM amis WHERE id=?", (ami.id,))
                if row is None or row["state"] != "available":
                    raise NotFound(f"The image id '[{ami.id}]' does not exist", code="InvalidAMIID.NotFound")
                made = self._other_form(ami, kind)
                if made is None:
                    self._converting.add(ami.id)
                    try:
                        made = self._make_vm_form(ami) if kind == "vm" else self._make_container_form(ami)
                    finally:
                        self._converting.discard(ami.id)
        if kind == "vm":
            vm = json.loads((made / "vm.json").read_text())
            return {"name": ami.id, "kind": "vm", "ref": str(made), "source": f"ami:{ami.id}",
                    "size": ami.size_gib * GIB, "details": json.dumps(vm), "created_at": ami.created_at}
        return {"name": ami.id, "kind": "container", "ref": made, "source": f"ami:{ami.id}",
                "size": self.driver("container").image_size(made) or ami.size_gib * GIB, "details": "{}",
                "created_at": ami.created_at}

    def _other_form(self, ami, kind: str):
        """AMI's form as KIND if it is made: the VM folder, or the container image's name."""
        if kind == "vm":
            folder = self.ami_dir / ami.id
            return folder if (folder / "vm.json").is_file() else None
        ref = ami_ref(ami.id)
        return ref if self.driver("container").image_exists(ref) else None

    # -- container -> VM ---------------------------------------------------------------------------
    def _make_vm_form(self, ami) -> Path:
        folder = self.ami_dir / ami.id
        image_dir = self._vm_source(ami.id, ami.source_image, 0)
        vm = json.loads((image_dir / "vm.json").read_text())
        scratch = self._scratch(ami.id)
        started = time.monotonic()
        try:
            log.info("%s: making its VM form: exporting the container image %s", ami.id, ami.ref)
            with self.driver("container").exported(ami.ref, ami.id) as tar:
                rootfs.tar_to_tree(tar, scratch / "tree")
            layout = rootfs.disk_layout(image_dir / vm["disk"], scratch)
            log.info("%s: writing its ext4 disk (label %r, %d MiB at least)", ami.id, layout.label, layout.size >> 20)
            rootfs.tree_to_qcow2(scratch / "tree", layout, scratch / "disk.raw", scratch / "disk.qcow2")
            shutil.rmtree(scratch / "tree")
            self._vm_folder_at(scratch / "vm", image_dir, scratch / "disk.qcow2", ami.id)
            self.fault("convert", op="image")
            os.rename(scratch / "vm", folder)  # whole, or not there
        except OSError as e:  # a host tool missing, the area full
            raise EngineError(f"{ami.id}: making its VM form failed: {e}") from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        log.info("%s: VM form ready in %.1fs (%s)", ami.id, time.monotonic() - started, folder)
        return folder

    def _vm_source(self, ami_id: str, source: str, depth: int) -> Path:
        """The folder (a vm.json, its kernel and initrd) of the VM form of the image a container
        AMI's instance ran: a catalogue image's, or that of the AMI it was launched from."""
        if depth > MAX_SOURCE_DEPTH:
            raise _refuse(ami_id, "its chain of source images is too long")
        if source.startswith("ami-"):
            folder = self.volume_area.root / "amis" / source
            if (folder / "vm.json").is_file():
                return folder
            row = self.store.one("SELECT source_image FROM amis WHERE id=?", (source,))
            if row is None:
                raise _refuse(ami_id, f"it was made from {source}, which is deregistered: the kernel "
                                      "to boot its files with is gone with it")
            return self._vm_source(ami_id, row["source_image"], depth + 1)
        name = source.rpartition(":")[0] if ":" in source else source
        try:
            return Path(self.images.resolve(name, "vm")["ref"])
        except CloudError:
            raise _refuse(ami_id, f"its image {name!r} has no VM form (no kernel to boot its files with)") from None

    # -- VM -> container ---------------------------------------------------------------------------
    def _make_container_form(self, ami) -> str:
        driver = self.driver("container")
        ref = ami_ref(ami.id)
        disk = Path(ami.ref) / ami.details.get("disk", "disk.qcow2")
        scratch = self._scratch(ami.id)
        started = time.monotonic()
        try:
            log.info("%s: making its container form: reading %s", ami.id, disk)
            raw = scratch / "disk.raw"
            rootfs.run(["qemu-img", "convert", "-q", "-O", "raw", str(disk), str(raw)], what="qemu-img convert")
            (scratch / "x").mkdir()
            with open(scratch / "rootfs.tar", "wb") as out:
                n = rootfs.ext4_to_tar(raw, out, scratch / "x")
            raw.unlink()
            log.info("%s: %d files read from its disk; docker import as %s", ami.id, n, ref)
            self.fault("convert", op="image")
            with open(scratch / "rootfs.tar", "rb") as tar:
                driver.import_ami(tar, ami.id)
        except OSError as e:  # a host tool missing, the area full
            raise EngineError(f"{ami.id}: making its container form failed: {e}") from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        log.info("%s: container form ready in %.1fs", ami.id, time.monotonic() - started)
        return ref

    # -- housekeeping ------------------------------------------------------------------------------
    @property
    def _converting(self) -> set[str]:
        """The AMIs this server is converting now: the reconcile loop leaves their scratch alone."""
        return self.__dict__.setdefault("_converting_amis", set())

    def _scratch(self, ami_id: str) -> Path:
        scratch = self.ami_dir / f"{CONVERT_PREFIX}{ami_id}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(mode=0o700)
        return scratch

    def drop_other_forms(self, ami_id: str) -> None:
        """The container form of a deregistered AMI (its VM form is its folder, which goes with
        it). One a container still runs from, or a root snapshot's image is layered on, stays:
        the snapshot's deletion (or reconcile) sweeps it once nothing holds it."""
        driver = self.drivers.get("container")
        if driver is None:
            return
        ref = driver.ami_images().get(ami_id)
        if ref:
            try:
                driver.remove_image(ref)
            except CloudError as e:
                log.info("image %s stays while something is made from it: %s", ref, e)

    def sweep_other_forms(self) -> list[str]:
        """Remove the container forms of deregistered AMIs that nothing holds any more."""
        driver = self.drivers.get("container")
        if driver is None or not driver.available()[0]:
            return []
        known = {r["id"] for r in self.store.query("SELECT id FROM amis")}
        report = []
        for aid, ref in driver.ami_images().items():
            if aid not in known:
                try:
                    driver.remove_image(ref)
                    report.append(f"{aid}: container form {ref} of a deregistered image removed")
                except CloudError as e:
                    log.info("%s stays for now: %s", ref, e)
        return report

    def reconcile_other_forms(self) -> list[str]:
        """Scratch a dead server's conversions left, and container forms of AMIs that are gone."""
        report = []
        area = self.volume_area.root / "amis"
        if area.is_dir():
            for d in area.glob(f"{CONVERT_PREFIX}*"):
                if d.name[len(CONVERT_PREFIX):] not in self._converting:
                    shutil.rmtree(d, ignore_errors=True)
                    report.append(f"{d.name}: half-made conversion removed")
        driver = self.drivers.get("container")
        if driver is None or not driver.available()[0]:
            return report
        report += [f"{c}: export container removed" for c in driver.export_leftovers(busy=set(self._converting))]
        return report + self.sweep_other_forms()
