"""LibvirtDriver against a real libvirtd and real QEMU guests (the tiny image).

Nothing is skipped: without libvirtd, genisoimage or the tiny recipe's packages the
tests fail and say what is missing. Every test cleans up what it made; the module
fixture removes the network it defined and checks that no domain is left.
Traffic goes only to 127.0.0.1 and to the guests on the network this module created.
"""
from __future__ import annotations

import ipaddress
import json
import os
import random
import shutil
import socket
import tarfile
import time
from pathlib import Path

import paramiko
import pytest

from emulator.compute.docker_driver import DockerDriver
from emulator.compute.driver import LaunchSpec, PortForward
from emulator.compute.libvirt import LibvirtDriver, mac_for
from emulator.compute.sshkeys import generate_keypair
from emulator.compute.types import INSTANCE_TYPES, InstanceType
from emulator.config import Config
from emulator.errors import EngineError, InvalidParameter, InvalidState, NotFound
from emulator.images import Images
from emulator.state import Store
from emulator.validation import new_instance_id

from .cloud import REPO

pytestmark = pytest.mark.integration
LABEL = f"vmtest-{os.getpid()}"
NANO = INSTANCE_TYPES["t2.nano"]


def _libvirt():
    try:
        import libvirt

        conn = libvirt.open("qemu:///system")
        conn.getVersion()
        return conn
    except Exception as e:  # noqa: BLE001 - any failure here means the engine is missing
        pytest.fail(f"libvirtd is not reachable at qemu:///system ({e}); run `make test`, which starts it")


@pytest.fixture(scope="module")
def conn():
    c = _libvirt()
    yield c
    c.close()


def build_image(name: str, tmp: Path) -> Path:
    """A recipe built through the catalog (cached by recipe hash across runs)."""
    for tool in ("genisoimage", "qemu-img", "mke2fs", "depmod", "debootstrap"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed; run `bash scripts/engines.sh` as root")
    images = Images(Store(tmp / "state.db"), REPO / "images", Config().cache_dir, None)
    lines: list[str] = []
    try:
        built = images.build(name, progress=lines.append)
    except Exception as e:  # noqa: BLE001 - show the build's own output
        pytest.fail(f"building {name} failed: {e}\n" + "\n".join(lines[-30:]))
    assert "vm" in built["kinds"], "\n".join(lines[-20:])
    return Path(built["path"])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_image("tiny", tmp_path_factory.mktemp("vmstore"))


@pytest.fixture(scope="module")
def driver(conn, tiny, tmp_path_factory):
    base = tmp_path_factory.mktemp("vmbase")
    taken = " ".join(n.XMLDesc(0) for n in conn.listAllNetworks(0))
    octets = [o for o in range(64, 250) if f"10.213.{o}." not in taken]
    random.shuffle(octets)
    d = LibvirtDriver("qemu:///system", LABEL, base, hypervisor="qemu", network_name=f"pctest-{os.getpid()}",
                      network_cidr=f"10.213.{octets[0]}.0/24", probe_image=tiny)
    yield d
    for e in d.list_managed(LABEL).values():
        d.terminate(e.engine_id)
    left = d.list_managed(LABEL)
    d.remove_network()
    d.remove_host_files()
    d.forwarder.close_all()
    assert not left, f"tests left domains behind: {left}"
    assert not d.area.root.exists(), "the cloud's QEMU area goes with it"
    assert f"pctest-{os.getpid()}" not in [n.name() for n in conn.listAllNetworks(0)]


@pytest.fixture
def keypair(tmp_path):
    private, public = generate_keypair("vmtest")
    path = tmp_path / "id_ed25519"
    path.write_text(private)
    path.chmod(0o600)
    return path, public


def spec(image: Path, **kw) -> LaunchSpec:
    args = {"instance_id": new_instance_id(), "owner": "acct-test", "name": "vmtest", "image_ref": str(image),
            "type": NANO}
    args.update(kw)
    return LaunchSpec(**args)


def ssh(port: int, key: Path, command: str, timeout: float = 30) -> tuple[int, str]:
    """Through the 127.0.0.1 forward, as a user would."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.connect("127.0.0.1", port, username="root", key_filename=str(key), timeout=10,
                           banner_timeout=15, auth_timeout=15, allow_agent=False, look_for_keys=False)
            break
        except (paramiko.SSHException, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        _, out, _ = client.exec_command(command, timeout=timeout)
        text = out.read().decode()
        return out.channel.recv_exit_status(), text
    finally:
        client.close()


def shutoff_reason(conn, engine_id: str) -> str | int:
    """Why a stopped domain is off: "shutdown" (the guest powered off) or "destroyed" (killed)."""
    import libvirt

    state, reason = conn.lookupByName(engine_id).state()
    assert state == libvirt.VIR_DOMAIN_SHUTOFF, state
    return {libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN: "shutdown", libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED: "destroyed"}.get(
        reason, reason)


def leftovers(d: LibvirtDriver, conn, instance_id: str) -> list[str]:
    found = []
    if any(dom.name() == f"pc-{instance_id}" for dom in conn.listAllDomains(0)):
        found.append("domain")
    if (d.area.instances / instance_id).exists():
        found.append("instance dir (overlay, seed)")
    if any(k.startswith(f"pc-{instance_id}:") for k in d.forwarder.active()):
        found.append("port forward")
    net_xml = conn.networkLookupByName(d.network.name).XMLDesc(0)
    if mac_for(instance_id) in net_xml or instance_id in net_xml:
        found.append("DHCP reservation")
    return found


def test_tiny_vm_lifecycle(driver, conn, keypair, docker_client, tiny):
    key_path, public = keypair
    user_data = "#!/bin/sh\necho user-data-ran >> /root/user-data-marker\n"
    s = spec(tiny, ssh_keys=(public,), user_data=user_data, hostname="tiny-one")
    started = time.monotonic()
    inst = driver.launch(s)
    boot = time.monotonic() - started
    assert inst.state == "running", inst
    assert inst.engine_id == f"pc-{s.instance_id}"
    assert ipaddress.ip_address(inst.private_ip) in driver.network.subnet
    fwd = {p.guest: p.host for p in inst.ports}
    assert 22 in fwd and fwd[22], inst.ports
    assert inst.details["hypervisor"] == "qemu"
    assert boot < 60, f"tiny took {boot:.1f}s to SSH-ready"

    # SSH in through 127.0.0.1 with the user's key; user-data ran; the teaching pair.
    rc, out = ssh(fwd[22], key_path, "cat /root/user-data-marker; hostname; uname -r; cat /etc/os-release")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == "user-data-ran" and lines[1] == "tiny-one", out
    vm_kernel = lines[2]
    assert vm_kernel != os.uname().release
    assert vm_kernel == json.loads((tiny / "vm.json").read_text())["guest_kernel"]
    vm_os_release = "\n".join(lines[3:])

    container = docker_client.containers.run(_tiny_container_image(docker_client, tiny), detach=True,
                                             labels={"pocketcloud.cloud": LABEL})
    try:
        container_kernel = container.exec_run(["uname", "-r"]).output.decode().strip()
        container_os_release = container.exec_run(["cat", "/etc/os-release"]).output.decode()
    finally:
        container.remove(force=True)
        docker_client.images.remove(container.image.id, force=True)
    assert container_kernel == os.uname().release != vm_kernel
    assert container_os_release.strip() == vm_os_release.strip()

    # exec through the driver's own key.
    res = driver.exec(inst.engine_id, ["sh", "-c", "echo written-before-stop > /root/persist; sync; echo ok"], 30)
    assert (res.exit_code, res.stdout.strip()) == (0, "ok"), res

    # Illegal transitions.
    with pytest.raises(InvalidState):
        driver.start(inst.engine_id)

    stopped = driver.stop(inst.engine_id, timeout=30)
    assert stopped.state == "stopped"
    assert shutoff_reason(conn, inst.engine_id) == "shutdown", \
        "the guest ignored the ACPI power button (destroyed at the timeout)"
    assert driver.inspect(inst.engine_id).state == "stopped"
    with pytest.raises(InvalidState):
        driver.exec(inst.engine_id, ["true"], 5)
    with pytest.raises(InvalidState):
        driver.reboot(inst.engine_id, 5)
    # The forward keeps its port while stopped, and refuses politely.
    assert driver.forwarder.port(f"{inst.engine_id}:22") == fwd[22]

    again = driver.start(inst.engine_id)
    assert again.state == "running"
    assert again.private_ip == inst.private_ip
    rc, out = ssh(fwd[22], key_path, "cat /root/persist; wc -l < /root/user-data-marker")
    assert rc == 0 and out.split() == ["written-before-stop", "1"], out  # user-data ran once only

    rebooted = driver.reboot(inst.engine_id, timeout=30)
    assert rebooted.state == "running"
    console = driver.console(inst.engine_id, 500)
    assert console.count("pocketcloud-init: ready") >= 3, console
    assert "running user-data" in console

    driver.terminate(inst.engine_id)
    assert driver.inspect(inst.engine_id) is None
    assert leftovers(driver, conn, s.instance_id) == []
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", fwd[22])) != 0, "the SSH forward still listens"
    driver.terminate(inst.engine_id)  # a missing instance is not an error


def _tiny_container_image(docker_client, tiny: Path) -> str:
    tag = f"pocketcloud-vmtest/tiny:{tiny.name}"
    try:
        docker_client.images.get(tag)
    except Exception:  # noqa: BLE001 - not imported yet
        with open(tiny / "rootfs.tar", "rb") as f:
            docker_client.api.import_image_from_data(f, repository=tag.split(":")[0], tag=tiny.name,
                                                     changes=['CMD ["/sbin/init"]'])
    return tag


def test_bad_input_leaves_nothing(driver, conn, tiny, keypair):
    host_mib = conn.getInfo()[1]
    cases = [
        (spec(tiny, type=InstanceType("huge", 1, host_mib * 2)), InvalidParameter, "MiB"),
        (spec(tiny, type=InstanceType("wide", 64, 256)), InvalidParameter, "vCPU"),
        (spec(tiny, ssh_keys=("ssh-ed25519 not-base64!!",)), InvalidParameter, "SSH public key"),
        (spec(tiny, ssh_keys=(keypair[1] + "\n  - ssh-rsa injected",)), InvalidParameter, "SSH public key"),
        (spec(tiny, image_ref=str(tiny.parent / "no-such-build")), NotFound, "not usable"),
    ]
    for s, exc, words in cases:
        with pytest.raises(exc, match=words):
            driver.launch(s)
        assert leftovers(driver, conn, s.instance_id) == []
    with pytest.raises(InvalidParameter):
        driver.inspect("pc-../../etc")
    assert driver.inspect("pc-i-00000000000000000") is None
    with pytest.raises(NotFound):
        driver.start("pc-i-00000000000000000")


def test_guest_that_never_boots_times_out_and_keeps_its_console(driver, conn, tiny, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in ("vmlinuz", "initrd.img", "disk.qcow2"):
        shutil.copy(tiny / f, broken / f)
    vm = json.loads((tiny / "vm.json").read_text())
    vm["cmdline"] = vm["cmdline"].replace("root=/dev/vda", "root=/dev/vdz")  # no such disk
    vm["boot_timeout"] = 20
    (broken / "vm.json").write_text(json.dumps(vm))
    s = spec(broken)
    with pytest.raises(EngineError, match="did not become ready within 20s") as err:  # its own timeout, not the default
        driver.launch(s)
    assert err.value.code == "InstanceBootTimeout"
    assert leftovers(driver, conn, s.instance_id) == []
    kept = driver.base_dir / "logs" / f"pc-{s.instance_id}.console.log"
    assert "cannot mount root /dev/vdz" in kept.read_text()
    assert "cannot mount root" in driver.console(f"pc-{s.instance_id}", 50)
    kept.unlink()


def test_reconcile_view_of_domains_changed_behind_our_back(driver, conn, tiny):
    s = spec(tiny, ports=(PortForward(80),))
    inst = driver.launch(s, wait=False)
    try:
        assert inst.state in ("pending", "running")
        assert driver.list_managed(LABEL)[s.instance_id].engine_id == inst.engine_id
        assert {p.guest for p in inst.ports} == {22, 80}
        driver.set_forwards(inst.engine_id, (PortForward(8080),))
        moved = driver.inspect(inst.engine_id)
        assert {p.guest for p in moved.ports} == {22, 8080}, moved.ports  # SSH stays, 80 went
        dom = conn.lookupByName(inst.engine_id)
        dom.destroy()  # like `virsh destroy`
        assert driver.inspect(inst.engine_id).state == "stopped"
        dom.undefine()  # like `virsh undefine`
        assert driver.inspect(inst.engine_id) is None
        assert s.instance_id not in driver.list_managed(LABEL)
    finally:
        driver.terminate(inst.engine_id)  # still cleans the overlay, seed, forwards, DHCP entry
    assert leftovers(driver, conn, s.instance_id) == []


def test_hypervisor_choice_is_proven_and_cached(driver, tiny, tmp_path):
    assert driver.hypervisor()["mode"] == "qemu"  # configured
    auto = LibvirtDriver("qemu:///system", LABEL, tmp_path, hypervisor="auto", probe_image=tiny)
    hv = auto.hypervisor()
    assert hv["requested"] == "auto" and hv["mode"] in ("kvm", "qemu") and hv["reason"].startswith("auto:")
    if Path("/dev/kvm").exists():
        assert "probe" in hv["reason"], hv
        again = LibvirtDriver("qemu:///system", LABEL, tmp_path, hypervisor="auto", probe_image=tiny).hypervisor()
        assert again["mode"] == hv["mode"] and "cached" in again["reason"]
    assert not list((tmp_path / "probe").glob("*")), "the probe left files behind"


DEBIAN_USER_DATA = "#!/bin/sh\necho debian-user-data > /root/marker\n"


def image_os_release(image: Path) -> str:
    """The image's own /etc/os-release (a link to usr/lib/os-release), which the VM's disk and the
    container are both made from."""
    with tarfile.open(image / "rootfs.tar") as tar:
        return tar.extractfile("./usr/lib/os-release").read().decode().strip()


# One debian-12 VM boot per run (~2 min under TCG): with VPC networking on (the default) it is
# test_vpc_debian12's, on a subnet through the Ec2 datasource; with it off, this one, off a subnet.
@pytest.mark.skipif(Config().vpc_networking == "on",
                    reason="VPC networking on: the run's debian-12 boot is test_vpc_debian12's")
@pytest.mark.timeout(1500)
def test_debian12_boots_to_ssh_off_a_subnet_with_nocloud(driver, conn, keypair, tmp_path):
    """The heavy image: debootstrap + systemd + cloud-init. Built once (cached), ~2 min to SSH under TCG."""

    deb = build_image("debian-12", tmp_path)
    key_path, public = keypair
    user_data = DEBIAN_USER_DATA
    s = spec(deb, type=INSTANCE_TYPES["t2.micro"], ssh_keys=(public,), user_data=user_data, hostname="deb-one")
    t0 = time.monotonic()
    inst = driver.launch(s)
    to_ready = time.monotonic() - t0
    try:
        port = next(p.host for p in inst.ports if p.guest == 22)
        rc, out = ssh(port, key_path, "cat /root/marker; hostname; uname -r; cloud-init status; cloud-id;"
                                      " cat /etc/os-release")
        assert rc == 0, out
        lines = out.splitlines()
        assert lines[:2] == ["debian-user-data", "deb-one"], out
        vm_kernel = lines[2]
        assert vm_kernel != os.uname().release and vm_kernel.endswith("-cloud-amd64")
        assert lines[3] == "status: done", out
        # Not on a VPC subnet: no EC2 DMI, so the image's Ec2-first list falls to the seed
        assert lines[4] == "nocloud", out
        vm_os_release = "\n".join(lines[5:]).strip()
        res = driver.exec(inst.engine_id, ["sh", "-c", "cloud-id; journalctl -b -o cat -u pocketcloud-seed-keys"], 30)
        assert res.stdout.split()[0] == "nocloud" and "added for root" in res.stdout, res
        ready = [ln for ln in driver.console(inst.engine_id, 400).splitlines() if "pocketcloud-init: ready" in ln]
        print(f"\ndebian-12 off a subnet (NoCloud): launch -> ready (marker + SSH) {to_ready:.1f} s;"
              f" guest says: {ready[-1].strip() if ready else '?'}")
        assert 'VERSION_CODENAME=bookworm' in vm_os_release and vm_os_release == image_os_release(deb)
        assert driver.stop(inst.engine_id, timeout=90).state == "stopped"
        assert shutoff_reason(conn, inst.engine_id) == "shutdown", \
            "systemd ignored the ACPI power button (destroyed at the timeout)"
    finally:
        driver.terminate(inst.engine_id)
    assert leftovers(driver, conn, s.instance_id) == []


@pytest.mark.timeout(900)
def test_debian12_rootfs_runs_as_a_container_on_the_host_kernel(keypair, tmp_path):
    """The same image's rootfs.tar runs as a container, with cloud-init as PID 1's helper."""
    deb = build_image("debian-12", tmp_path)
    _, public = keypair
    user_data = DEBIAN_USER_DATA
    docker = DockerDriver("unix:///var/run/docker.sock", LABEL)
    repo, tag = "pocketcloud-vmtest/debian-12", deb.name
    docker.import_rootfs(str(deb / "rootfs.tar"), repo, tag)
    c = None
    try:
        c = docker.launch(LaunchSpec(new_instance_id(), "acct-test", "deb", f"{repo}:{tag}", INSTANCE_TYPES["t2.micro"],
                                     user_data=user_data, ssh_keys=(public,)))
        deadline = time.monotonic() + 120
        while "pocketcloud-init: ready" not in docker.console(c.engine_id, 200):
            assert time.monotonic() < deadline, docker.console(c.engine_id, 200)
            time.sleep(0.5)
        res = docker.exec(c.engine_id, ["sh", "-c", "cat /root/marker; uname -r; cloud-id; cat /etc/os-release"], 30)
        lines = res.stdout.splitlines()
        assert lines[0] == "debian-user-data", res
        assert lines[1] == os.uname().release, "a container shares the host's kernel"
        assert lines[2] == "nocloud", "the container's init pins NoCloud (ds-identify does not run there)"
        assert "\n".join(lines[3:]).strip() == image_os_release(deb), "the image's userland, as in the VM"
    finally:
        if c is not None:
            docker.terminate(c.engine_id)
        docker.remove_image(f"{repo}:{tag}")
