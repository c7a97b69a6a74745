"""Images of an account's own (issue 15) through the Cloud's use cases over fake engines:
CreateImage and RegisterImage from root snapshots, launching them, the name rules, quotas,
another account's ids, failures that roll back, and what a restarted server rolls back."""
from __future__ import annotations

import json

import pytest

from emulator.config import Config
from emulator.errors import AlreadyExists, EngineError, InvalidParameter, InvalidState, NotFound, QuotaExceeded
from emulator.journal import Journal
from emulator.launch_templates import ami_id, image_of_ami
from emulator.services import Cloud

from tests.fakes import FakeDriver

HV = {"mode": "qemu", "domain_type": "qemu", "reason": "fake: configured"}


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    monkeypatch.setattr("emulator.vpcs.host_taken", lambda: {"10.0.0.0/16"})  # no host scan in unit tests
    c = Cloud(Config(home=tmp_path / "home", recipes_dir=tmp_path / "none", max_images=3),
              drivers={"container": FakeDriver(), "vm": FakeDriver("vm", hypervisor=HV)})
    c.images.register("tiny", "container", "fake:tiny", "test")
    image = tmp_path / "tiny-vm"
    image.mkdir()
    (image / "vmlinuz").write_bytes(b"kernel")
    (image / "initrd.img").write_bytes(b"initrd")
    (image / "disk.qcow2").write_bytes(b"QFI\xfb" + b"\0" * 20 + (512 << 20).to_bytes(8, "big"))
    (image / "vm.json").write_text(json.dumps({"kernel": "vmlinuz", "initrd": "initrd.img", "disk": "disk.qcow2",
                                               "cmdline": "root=/dev/vda rw", "ssh": True}))
    c.images.register("tiny", "vm", str(image), "test")
    c.me = c.accounts.create("student")[0]
    c.other = c.accounts.create("other")[0]
    return c


def stopped(cloud, kind="container"):
    inst = cloud.run_instance(cloud.me, image="tiny", kind=kind)
    cloud.wait_for_launches()
    cloud.stop_instance(cloud.me, inst.id)
    return cloud.get_instance(cloud.me, inst.id)


def nothing_made(cloud) -> None:
    assert cloud.store.query("SELECT id FROM amis") == []
    assert cloud.store.query("SELECT id FROM snapshots") == []
    assert cloud.drivers["container"].images == {}
    assert not list((cloud.volume_area.root / "snapshots").glob("*"))
    assert not list((cloud.volume_area.root / "amis").glob("*"))


def test_a_container_image_copies_the_root_launches_and_is_the_owners_alone(cloud):
    me, other = cloud.me, cloud.other
    inst = stopped(cloud)
    ami = cloud.create_image(me, inst.id, name="web (v1) [test]", description="first", tags={"stage": "dev"})
    assert (ami.state, ami.kind, ami.name, ami.description, ami.owner) == ("available", "container", "web (v1) [test]",
                                                                           "first", me.id)
    [snap] = cloud.describe_snapshots(me)
    assert (snap.id, snap.root_kind, snap.state, snap.stored_bytes) == (ami.snapshot_id, "container", "completed", 4096)
    assert snap.engine_ref == ami.ref == cloud.drivers["container"].images[snap.id]
    assert cloud.resource_tags.of(me.id, [ami.id]) == {ami.id: {"stage": "dev"}}

    new = cloud.run_instance(me, image=ami.id, kind="container")
    assert cloud.drivers["container"].objects[new.engine_id]["image_ref"] == ami.ref
    assert new.image == ami.id

    for call in (lambda: cloud.run_instance(other, image=ami.id),
                 lambda: cloud.describe_machine_images(other, [ami.id]),
                 lambda: cloud.deregister_image(other, ami.id),
                 lambda: cloud.register_image(other, name="mine now", snapshot_id=snap.id),
                 lambda: cloud.create_image(other, inst.id, name="theirs")):
        with pytest.raises(NotFound):
            call()
    assert cloud.describe_machine_images(other) == []

    with pytest.raises(InvalidState) as e:
        cloud.delete_snapshot(me, snap.id)
    assert e.value.code == "InvalidSnapshot.InUse"
    cloud.deregister_image(me, ami.id)
    assert cloud.describe_machine_images(me) == [] and cloud.resource_tags.of(me.id, [ami.id]) == {}
    assert cloud.describe_snapshots(me, [snap.id]), "the snapshot outlives its image, as on AWS"
    cloud.delete_snapshot(me, snap.id)
    assert cloud.drivers["container"].images == {}


def test_an_image_whose_source_has_no_vm_form_is_refused_as_a_vm_with_nothing_made(cloud):
    cloud.images.register("solo", "container", "fake:solo", "test")  # a catalog image with no vm.json
    inst = cloud.run_instance(cloud.me, image="solo", kind="container")
    cloud.wait_for_launches()
    cloud.stop_instance(cloud.me, inst.id)
    ami = cloud.create_image(cloud.me, inst.id, name="solo image")
    with pytest.raises(InvalidParameter) as e:
        cloud.run_instance(cloud.me, image=ami.id, kind="vm")
    assert e.value.code == "InvalidParameterCombination" and "'solo' has no VM form" in e.value.message
    assert [p.name for p in (cloud.volume_area.root / "amis").iterdir()] == []
    assert [i.id for i in cloud.describe_instances(cloud.me)] == [inst.id]
    with pytest.raises(NotFound):  # another account's image is not there at all, whatever the kind
        cloud.run_instance(cloud.other, image=ami.id, kind="vm")


def test_a_running_instance_is_imaged_only_with_no_reboot(cloud):
    inst = cloud.run_instance(cloud.me, image="tiny")
    with pytest.raises(InvalidState) as e:
        cloud.create_image(cloud.me, inst.id, name="running")
    assert e.value.code == "IncorrectInstanceState" and "NoReboot" in e.value.message
    nothing_made(cloud)
    ami = cloud.create_image(cloud.me, inst.id, name="running", no_reboot=True)
    assert ami.state == "available" and cloud.get_instance(cloud.me, inst.id).state == "running"


@pytest.mark.parametrize("name", ["ab", "x" * 129, "bad:colon", "tab\there", "ünïcode", "", None, 7])
def test_malformed_names_are_refused_and_change_nothing(cloud, name):
    inst = stopped(cloud)
    with pytest.raises(InvalidParameter) as e:
        cloud.create_image(cloud.me, inst.id, name=name)
    assert e.value.code == "InvalidAMIName.Malformed"
    nothing_made(cloud)


def test_names_are_unique_per_account_and_images_are_counted(cloud):
    inst = stopped(cloud)
    cloud.create_image(cloud.me, inst.id, name="same")
    with pytest.raises(AlreadyExists) as e:
        cloud.create_image(cloud.me, inst.id, name="same")
    assert e.value.code == "InvalidAMIName.Duplicate"
    assert len(cloud.describe_snapshots(cloud.me)) == 1, "the refused image took no snapshot"
    other_inst = cloud.run_instance(cloud.other, image="tiny")
    assert cloud.create_image(cloud.other, other_inst.id, name="same", no_reboot=True).name == "same"
    cloud.create_image(cloud.me, inst.id, name="two")
    cloud.create_image(cloud.me, inst.id, name="three")
    with pytest.raises(QuotaExceeded) as e:
        cloud.create_image(cloud.me, inst.id, name="four")
    assert e.value.code == "ResourceLimitExceeded"
    assert len(cloud.describe_snapshots(cloud.me)) == 3


def test_a_failed_copy_rolls_the_image_back(cloud):
    inst = stopped(cloud)
    cloud.drivers["container"].fail_snapshot = True
    with pytest.raises(EngineError):
        cloud.create_image(cloud.me, inst.id, name="broken")
    nothing_made(cloud)


def test_a_vm_image_boots_the_source_kernel_on_the_flattened_disk(cloud):
    me = cloud.me
    inst = stopped(cloud, "vm")
    ami = cloud.create_image(me, inst.id, name="vm image")
    folder = cloud.volume_area.root / "amis" / ami.id
    assert ami.ref == str(folder) and ami.kind == "vm" and ami.size_gib == 1
    vm = json.loads((folder / "vm.json").read_text())
    assert vm == {"kernel": "vmlinuz", "initrd": "initrd.img", "disk": "disk.qcow2", "cmdline": "root=/dev/vda rw",
                  "ssh": True}
    assert (folder / "vmlinuz").read_bytes() == b"kernel"
    assert (folder / "disk.qcow2").read_bytes().endswith(b"root of " + inst.id.encode())
    assert (folder / "disk.qcow2").stat().st_ino == cloud.snapshot_file(ami.snapshot_id).stat().st_ino

    new = cloud.run_instance(me, image=ami.id, kind="vm")
    cloud.wait_for_launches()
    new = cloud.get_instance(me, new.id)
    assert cloud.drivers["vm"].objects[new.engine_id]["image_ref"] == str(folder)
    assert 22 in {p["guest"] for p in new.ports}, "vm.json's ssh came along"

    again = cloud.register_image(me, name="registered", snapshot_id=ami.snapshot_id, root_device_name="/dev/vda")
    assert json.loads((cloud.volume_area.root / "amis" / again.id / "vm.json").read_text())["kernel"] == "vmlinuz"
    with pytest.raises(InvalidParameter):
        cloud.register_image(me, name="wrong root", snapshot_id=ami.snapshot_id, root_device_name="/dev/sdz")
    cloud.deregister_image(me, ami.id)
    assert cloud.snapshot_file(ami.snapshot_id).exists()
    assert folder.exists(), "an instance still boots from it"
    # An image of an instance of an image of one's own (deregistered since): the kernel came through it.
    cloud.stop_instance(me, new.id)
    third = cloud.create_image(me, new.id, name="third generation")
    assert (cloud.volume_area.root / "amis" / third.id / "vmlinuz").read_bytes() == b"kernel"
    cloud.terminate_instance(me, new.id)
    assert cloud.reconcile()["images"] == [f"{ami.id}: image folder without a record removed"]
    assert not folder.exists()


def test_a_data_volume_snapshot_registers_no_image(cloud):
    vol = cloud.create_volume(cloud.me, zone=cloud.config.region + "a", size_gib=1)
    cloud.volume_pool.file(vol.id).parent.mkdir(parents=True, exist_ok=True)
    with cloud.store.tx() as c:  # a completed data snapshot, as CreateSnapshot leaves one
        c.execute("INSERT INTO snapshots (id, owner, volume_id, volume_size, state, created_at) "
                  "VALUES ('snap-0123456789abcdef0', ?, ?, 1, 'completed', 0)", (cloud.me.id, vol.id))
    with pytest.raises(InvalidParameter) as e:
        cloud.register_image(cloud.me, name="data", snapshot_id="snap-0123456789abcdef0")
    assert "data volume" in e.value.message
    assert cloud.store.query("SELECT id FROM amis") == []


def test_a_restarted_server_rolls_back_what_a_dead_one_left_pending(cloud):
    inst = stopped(cloud)
    kept = cloud.create_image(cloud.me, inst.id, name="kept")
    # A server killed in CreateImage: its image pending, its snapshot pending, the commit made.
    cloud.journal = Journal(cloud.store, boot_id="dead")
    cloud._insert_ami(cloud.me, "ami-0123456789abcdef0", "half", "", "container", "snap-0123456789abcdef0", 1,
                      source_instance_id=inst.id, source_image="tiny")
    cloud._insert_snapshot(cloud.me, "vol-0123456789abcdef0", 1, "", root_kind="container",
                           sid="snap-0123456789abcdef0")
    cloud.drivers["container"].images["snap-0123456789abcdef0"] = "fake-snap:snap-0123456789abcdef0"
    cloud.drivers["container"].images["snap-00000000000000000"] = "fake-snap:orphan"
    (cloud.ami_dir / "ami-00000000000000000").mkdir()
    cloud.journal = Journal(cloud.store)
    report = cloud.reconcile()["images"]
    assert len(report) == 3, report  # the image took its snapshot (and that image) with it
    assert [a.id for a in cloud.describe_machine_images(cloud.me)] == [kept.id]
    assert [s.id for s in cloud.describe_snapshots(cloud.me)] == [kept.snapshot_id]
    assert list(cloud.drivers["container"].images) == [kept.snapshot_id]
    assert not (cloud.ami_dir / "ami-00000000000000000").exists()
    assert cloud.reconcile()["images"] == []


def test_an_image_bills_its_snapshot_and_hygiene_names_it_while_nothing_runs_from_it(cloud):
    inst = stopped(cloud)
    ami = cloud.create_image(cloud.me, inst.id, name="idle")
    [block] = [b for b in cloud.billing.meter._blocks() if b.kind == "snapshot"]
    assert (block.id, block.account, block.size_gib) == (ami.snapshot_id, cloud.me.id, round(4096 / 1024 ** 3, 6))
    report = cloud.billing.hygiene.report([cloud.me.id], snapshot_days=0)
    [item] = [i for i in report["items"] if i["resource"] in (ami.id, ami.snapshot_id)]
    assert (item["kind"], item["resource"], item["name"]) == ("unused-image", ami.id, "idle")
    assert "deregister-image" in item["cleanup"] and item["monthly_cost"] > 0
    cloud.run_instance(cloud.me, image=ami.id)
    report = cloud.billing.hygiene.report([cloud.me.id], snapshot_days=0)
    assert not [i for i in report["items"] if i["resource"] in (ami.id, ami.snapshot_id)]


def test_a_launch_template_names_an_image_of_its_owners(cloud):
    """What an auto scaling group launches from a template whose ImageId is an image of the owner's."""
    inst = stopped(cloud)
    ami = cloud.create_image(cloud.me, inst.id, name="scaled")
    own = {a.id: a.kind for a in cloud.describe_machine_images(cloud.me)}
    assert image_of_ami(cloud.list_images(), ami.id, own) == (ami.id, "container")
    assert image_of_ami(cloud.list_images(), ami_id("tiny", "container"), own) == ("tiny", "container")
    with pytest.raises(NotFound):
        image_of_ami(cloud.list_images(), ami.id, {a.id: a.kind for a in cloud.describe_machine_images(cloud.other)})
