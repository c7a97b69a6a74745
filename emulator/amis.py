"""Images of an account's own (AMIs, issue 15): CreateImage from an instance, RegisterImage from
a root volume's snapshot, described next to the catalog, launched like it, deregistered.

An AMI is a record over a root snapshot (root_snapshots.py), which it keeps in use (AWS's
InvalidSnapshot.InUse) and leaves behind when deregistered, as AWS does: the snapshot is
what costs storage, and billing and hygiene see it. Its kind is its root's:
- a container AMI launches the snapshot's Docker image;
- a VM AMI is a folder in the cloud's QEMU area (amis/<ami-id>/) shaped like a recipe's
  output: the vm.json of the image the instance ran, its kernel and initrd, and the flattened
  root disk (a hard link to the snapshot's file), so the VM driver launches it unchanged.
Either kind launches as the other too: its other form is made once, at the first launch
that needs it, and kept beside it (ami_kinds.py).

Ids are random per image and only the owner sees them: another account's ami- id answers as
a missing one. The image is `pending` while its snapshot is taken, `available` after; a server
that dies meanwhile leaves a pending record, which a restarted one rolls back (with the
snapshot made for it).
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from .ami_kinds import CrossKindImages
from .errors import AlreadyExists, CloudError, InvalidParameter, InvalidState, NotFound, QuotaExceeded
from .placement import placements
from .validation import by_ids, tags as clean_tags
from .volumes import GIB, ROOT_DEVICE
from .volumes.snapshots import new_snapshot_id

log = logging.getLogger(__name__)

AMI_ID = re.compile(r"ami-[0-9a-f]{17}")
AMI_NAME = re.compile(r"[A-Za-z0-9()\[\] ./'@_-]{3,128}")
VM_FILES = ("kernel", "initrd", "disk")


@dataclass(frozen=True)
class MachineImage:
    id: str
    owner: str
    name: str
    description: str
    kind: str
    state: str
    snapshot_id: str
    source_instance_id: str
    source_image: str
    ref: str
    details: dict
    size_gib: int
    created_at: float


def ami_name(value) -> str:
    if not isinstance(value, str) or not AMI_NAME.fullmatch(value):
        raise InvalidParameter("AMI names must be between 3 and 128 characters long, and may contain letters, "
                               "numbers, '(', ')', '.', '-', '/', '_', ' ', '[', ']', '@' and \"'\"",
                               code="InvalidAMIName.Malformed")
    return value


def new_ami_id() -> str:
    return "ami-" + secrets.token_hex(9)[:17]


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:  # another file system
        shutil.copyfile(src, dest)


class MachineImageUseCases(CrossKindImages):
    """Mixed into Cloud; uses its store, config, images, drivers, locks, journal, snapshots."""

    @staticmethod
    def _ami(r) -> MachineImage:
        return MachineImage(r["id"], r["owner"], r["name"], r["description"], r["kind"], r["state"],
                            r["snapshot_id"], r["source_instance_id"], r["source_image"], r["ref"],
                            json.loads(r["details"] or "{}"), r["size_gib"], r["created_at"])

    def describe_machine_images(self, caller, ids: list[str] | None = None) -> list[MachineImage]:
        rows = [self._ami(r) for r in self.store.query(
            "SELECT * FROM amis WHERE owner=? ORDER BY created_at, id", (caller.id,))]
        return by_ids(rows, ids, AMI_ID, "ami", "image", ("InvalidAMIID", "InvalidAMIID.NotFound"))

    def all_machine_images(self) -> list[MachineImage]:
        return [self._ami(r) for r in self.store.query("SELECT * FROM amis ORDER BY created_at")]

    @property
    def ami_dir(self) -> Path:
        return self.volume_area.ensure("amis")

    # -- what a launch needs ---------------------------------------------------------------------
    def launch_image(self, owner: str, image: str, kind: str) -> dict:
        """The image row a launch uses: the catalog's, or (an ami- id) one of the owner's AMIs."""
        if not (isinstance(image, str) and AMI_ID.fullmatch(image)):
            return dict(self.images.resolve(image, kind))
        row = self.store.one("SELECT * FROM amis WHERE id=? AND owner=?", (image, owner))
        if row is None:
            raise NotFound(f"The image id '[{image}]' does not exist", code="InvalidAMIID.NotFound")
        ami = self._ami(row)
        if ami.state != "available":
            raise InvalidState(f"Image {ami.id} is {ami.state}", code="InvalidAMIID.Unavailable")
        if ami.kind != kind:
            return self.launch_as_other_kind(ami, kind)
        return {"name": ami.id, "kind": ami.kind, "ref": ami.ref, "source": f"ami:{ami.id}",
                "size": ami.size_gib * GIB, "details": json.dumps(ami.details), "created_at": ami.created_at}

    # -- writes ---------------------------------------------------------------------------------------
    def create_image(self, caller, instance_id: str, *, name, description=None, no_reboot: bool = False,
                     tags: dict | None = None) -> MachineImage:
        """An image of a stopped instance (or a running one, with no_reboot: crash-consistent, as
        AWS's NoReboot), its root copied now; available when this returns."""
        name, description, clean = ami_name(name), self._description(description), clean_tags(tags)
        inst = self.get_instance(caller, instance_id)
        with self._lock(inst.id):
            inst = self._row(inst.id)
            if inst.state not in ("running", "stopped") or (inst.state == "running" and not no_reboot):
                why = ("a running instance is imaged with NoReboot (pocketcloud does not reboot it for you): "
                       "stop it first, or pass NoReboot" if inst.state == "running"
                       else "an image is made from a running or stopped instance")
                raise InvalidState(f"The instance '{inst.id}' is {inst.state}: {why}",
                                   code="IncorrectInstanceState")
            where = placements(self, caller.id, [inst]).get(inst.id)
            root = next(v for v in where.volumes if v.root)
            aid, sid = new_ami_id(), new_snapshot_id()
            self._insert_ami(caller, aid, name, description, inst.kind, sid, root.size_gib,
                             source_instance_id=inst.id, source_image=inst.image)
            self.fault("record", op="image")
            try:
                snap = self.snapshot_root_volume(caller, root, f"Created by CreateImage({inst.id}) for {aid}", {},
                                                 sid=sid, instance=inst)
                self.fault("snapshot", op="image")
                self._complete_ami(aid, snap, inst.details.get("image_ref", ""), clean, caller)
            except BaseException:
                self._drop_ami(aid, with_snapshot=True)
                raise
        return self.describe_machine_images(caller, [aid])[0]

    def register_image(self, caller, *, name, snapshot_id: str, root_device_name=None, description=None,
                       tags: dict | None = None) -> MachineImage:
        """An image over a completed snapshot of a root volume (a data volume's holds no system)."""
        name, description, clean = ami_name(name), self._description(description), clean_tags(tags)
        snap = self.describe_snapshots(caller, [snapshot_id])[0]
        if snap.state != "completed":
            raise InvalidState(f"Snapshot '{snap.id}' is {snap.state}", code="IncorrectState")
        if not snap.root_kind:
            raise InvalidParameter(f"{snap.id} is a snapshot of a data volume: an image is registered from a "
                                   "snapshot of a root volume (CreateSnapshot of an instance's root, or CreateImage)",
                                   code="InvalidParameterValue")
        expected = ROOT_DEVICE[snap.root_kind]
        if root_device_name not in (None, expected):
            raise InvalidParameter(f"RootDeviceName {str(root_device_name)[:40]!r} does not fit {snap.id}: the root "
                                   f"of a {snap.root_kind} is {expected}", code="InvalidParameterValue")
        image_dir = self._source_image_dir(caller, snap) if snap.root_kind == "vm" else ""
        aid = new_ami_id()
        self._insert_ami(caller, aid, name, description, snap.root_kind, snap.id, snap.volume_size,
                         source_image=snap.source_image)
        try:
            self._complete_ami(aid, snap, image_dir, clean, caller)
        except BaseException:
            self._drop_ami(aid, with_snapshot=False)
            raise
        return self.describe_machine_images(caller, [aid])[0]

    def deregister_image(self, caller, image_id: str) -> None:
        """The image goes; its snapshot stays (and bills) until deleted, as on AWS; instances
        launched from it keep running (each has its own copy of what it booted)."""
        ami = self.describe_machine_images(caller, [image_id])[0]
        with self._locks.hold(ami.id):
            if ami.state == "pending":
                raise InvalidState(f"Image {ami.id} is pending: deregister it once it is available",
                                   code="IncorrectState")
            self._drop_ami(ami.id, with_snapshot=False)

    def _insert_ami(self, caller, aid: str, name: str, description: str, kind: str, sid: str, size_gib: int,
                    *, source_instance_id: str = "", source_image: str = "") -> None:
        try:
            with self.store.tx() as c:
                count = c.execute("SELECT COUNT(*) FROM amis WHERE owner=?", (caller.id,)).fetchone()[0]
                if count >= self.config.max_images:
                    raise QuotaExceeded(f"You have reached the limit of {self.config.max_images} images per account: "
                                        "deregister one first", code="ResourceLimitExceeded")
                c.execute("INSERT INTO amis (id, owner, name, description, kind, state, snapshot_id, source_instance_id,"
                          " source_image, size_gib, boot_id, created_at) VALUES (?,?,?,?,?,'pending',?,?,?,?,?,?)",
                          (aid, caller.id, name, description, kind, sid, source_instance_id, source_image, size_gib,
                           self.journal.boot_id, time.time()))
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"AMI name {name} is already in use by an image of yours",
                                code="InvalidAMIName.Duplicate") from None

    def _complete_ami(self, aid: str, snap, image_dir: str, tags: dict, caller) -> None:
        if snap.root_kind == "vm":
            ref, details = self._vm_folder(aid, snap, Path(image_dir))
        else:
            ref, details = snap.engine_ref, {}
        if tags:
            self.resource_tags.set(caller.id, [aid], tags)
        with self.store.tx() as c:
            c.execute("UPDATE amis SET state='available', ref=?, details=? WHERE id=?", (ref, json.dumps(details), aid))

    def _vm_folder(self, aid: str, snap, image_dir: Path) -> tuple[str, dict]:
        """amis/<aid>/: the source image's vm.json, kernel and initrd, and the snapshot as its disk."""
        folder = self.ami_dir / aid
        return str(folder), self._vm_folder_at(folder, image_dir, self.snapshot_file(snap.id),
                                               f"the image {snap.source_image or '?'} that {snap.id}'s instance ran")

    def _vm_folder_at(self, folder: Path, image_dir: Path, disk: Path, what: str) -> dict:
        """FOLDER shaped as a recipe's output: IMAGE_DIR's vm.json, kernel and initrd, DISK its disk."""
        try:
            vm = json.loads((image_dir / "vm.json").read_text())
        except (OSError, ValueError) as e:
            raise NotFound(f"{what} is gone ({e}): its kernel cannot be found",
                           code="InvalidSnapshot.NotFound") from None
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(mode=0o755)
        out = dict(vm)
        for key in ("kernel", "initrd"):
            if vm.get(key):
                src = (image_dir / vm[key]).resolve()
                if image_dir.resolve() not in src.parents or not src.is_file():
                    raise InvalidParameter(f"{image_dir}: {key} {vm[key]!r} is not a file inside the image")
                _link_or_copy(src, folder / src.name)
                out[key] = src.name
        _link_or_copy(disk, folder / "disk.qcow2")
        out["disk"] = "disk.qcow2"
        (folder / "vm.json").write_text(json.dumps(out, indent=1))
        return out

    def _source_image_dir(self, caller, snap) -> str:
        source = snap.source_image
        if AMI_ID.fullmatch(source):
            folder = self.volume_area.root / "amis" / source  # kept while its instances live
            if not (folder / "vm.json").is_file():
                raise InvalidParameter(f"{snap.id} is the root of an instance of {source}, which is deregistered "
                                       "and has no instance left: its kernel is gone with it",
                                       code="InvalidParameterValue")
            return str(folder)
        name, _, kind = source.rpartition(":")
        return self.images.resolve(name, kind)["ref"]

    def _folder_in_use(self, aid: str) -> bool:
        """A VM image's folder holds the kernel its instances boot (and image again from): it
        stays while one of them lives, even once the image is deregistered."""
        return self.store.one("SELECT 1 FROM instances WHERE image=? AND state!='terminated'", (aid,)) is not None

    def _drop_ami(self, aid: str, *, with_snapshot: bool) -> None:
        row = self.store.one("SELECT snapshot_id FROM amis WHERE id=?", (aid,))
        if not self._folder_in_use(aid):  # (the area's amis/ is not made just to find nothing in it)
            shutil.rmtree(self.volume_area.root / "amis" / aid, ignore_errors=True)
        self.drop_other_forms(aid)
        with self.store.tx() as c:
            c.execute("DELETE FROM amis WHERE id=?", (aid,))
        self.resource_tags.forget([aid])
        if with_snapshot and row is not None and self.store.one("SELECT id FROM snapshots WHERE id=?",
                                                                (row["snapshot_id"],)):
            self._drop_snapshot(row["snapshot_id"])

    # -- after a crash --------------------------------------------------------------------------------
    def reconcile_amis(self) -> list[str]:
        """Roll back the images a dead server left pending (and the snapshots CreateImage was
        taking for them); remove image folders no record names and no instance boots from."""
        report: list[str] = []
        for r in self.store.query("SELECT id, source_instance_id FROM amis WHERE state='pending' AND boot_id!=?",
                                  (self.journal.boot_id,)):
            with self._locks.hold(r["id"]):
                try:
                    self._drop_ami(r["id"], with_snapshot=bool(r["source_instance_id"]))
                    report.append(f"{r['id']}: pending image rolled back")
                except CloudError as e:
                    log.warning("reconcile: image %s not rolled back yet: %s", r["id"], e)
        area = self.volume_area.root / "amis"
        if area.is_dir():
            folders = list(area.iterdir())  # before the records: an image's record is made before its folder
            known = {r["id"] for r in self.store.query("SELECT id FROM amis")}
            for folder in folders:
                if AMI_ID.fullmatch(folder.name) and folder.name not in known and not self._folder_in_use(folder.name):
                    shutil.rmtree(folder, ignore_errors=True)
                    report.append(f"{folder.name}: image folder without a record removed")
        return report + self.reconcile_other_forms()
