"""A real container on a subnet bridge: Docker adopts pocketcloud's bridge, the container gets a
fixed address from pocketcloud's IPAM, the groups and the pinning apply to it, DOCKER-USER lets
it reach the VPC's other subnet, and a restart (new veth name) is handled by re-pinning."""
from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import time
from pathlib import Path

import docker
import pytest

from emulator.errors import AlreadyExists, EngineError, InvalidState, NotFound
from emulator.networks import bridges, dockeruser, lifecycle
from emulator.networks.imds import MetadataApp, MetadataServer
from emulator.networks.model import Port, Subnet

from .lab import hexid, sh

pytestmark = pytest.mark.integration

APPLETS = ["sh", "httpd", "nc", "printf", "mkdir", "echo", "tail", "head"]


@pytest.fixture(scope="session")
def busybox_image(docker_client) -> str:
    """A 1 MB image made here from the host's busybox-static (no registry is reachable)."""
    binary = Path(shutil.which("busybox") or "/bin/busybox").read_bytes()
    ref = f"pocketcloud-nettest/busybox:{hashlib.sha256(binary).hexdigest()[:12]}"
    try:
        docker_client.images.get(ref)
        return ref
    except docker.errors.ImageNotFound:
        pass
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(binary), 0o755
        tar.addfile(info, io.BytesIO(binary))
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    repo, tag = ref.split(":")
    docker_client.api.import_image_from_data(buf.getvalue(), repository=repo, tag=tag)
    return ref


def run_container(lab, image: str, subnet: Subnet, ip: str, name: str):
    api = lab.docker.api
    net = bridges.docker_network_name(lab.label, subnet.id)
    created = api.create_container(
        image, ["/bin/sh", "-c", f"mkdir -p /www && echo {name} > /www/index.html && exec httpd -f -p 80 -h /www"],
        name=f"pcn-{lab.label}-{name}", labels={"pocketcloud.test": lab.label},
        host_config=api.create_host_config(network_mode=net),
        networking_config=api.create_networking_config({net: api.create_endpoint_config(ipv4_address=ip)}))
    api.start(created["Id"])
    return lab.docker.containers.get(created["Id"])


@pytest.fixture(scope="module")
def ctr(lab, busybox_image):
    """A container in group web on subnet a, pinned, with its instance id in lab.ports."""
    sub = lab.names["a"]
    ip = lab.address(sub)
    c = run_container(lab, busybox_image, sub, ip, "ctr")
    iid = hexid("i")
    try:
        port = bridges.container_port(lab.docker, lab.label, c.id, sub)
        assert port["ip"] == ip
        lab.ports[iid] = Port(iid, sub.id, ip, port["mac"], (lab.names["web"].id,), port["ifname"])
        lab.apply()
        yield {"container": c, "iid": iid, "ip": ip}
    finally:
        c.remove(force=True)
        lab.ports.pop(iid, None)
        lab.apply()


def ctr_get(ctr, ip: str, port: int = 80) -> str:
    """What the container reads from ip:port (empty when nothing answered)."""
    code, out = ctr["container"].exec_run(["sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} {port} 2>/dev/null"])
    return out.decode(errors="replace").strip()


def test_container_joins_the_subnet_with_its_fixed_address(lab, ctr):
    n = lab.namespaces
    got = lab.probe("a_client", f"{ctr['ip']}:80")[f"{ctr['ip']}:80"]
    assert got is not None and "ctr" in got  # group web: tcp 80 from anywhere
    assert lab.probe("a_client", f"{ctr['ip']}:22")[f"{ctr['ip']}:22"] is None
    assert ctr_get(ctr, n["b_web"]["ip"]).startswith("b_web ")  # other subnet, other Docker bridge
    assert ctr_get(ctr, n["a_client"]["ip"]) == ""  # client has no ingress
    assert ctr_get(ctr, n["c_open"]["ip"]) == ""  # other VPC
    lab.matrix += [("a_client", "container", 80, "web: tcp 80", True, True),
                   ("container", "b_web", 80, "web, across two Docker bridges", True, True),
                   ("container", "a_client", 80, "client: no ingress", False, False),
                   ("container", "c_open", 80, "other VPC", False, False)]


def test_docker_user_chain_is_what_lets_two_docker_subnets_talk(lab, ctr):
    b_web = lab.namespaces["b_web"]["ip"]
    chain = dockeruser.chain_name(lab.label)
    sh("iptables", "-w", "-D", "DOCKER-USER", "-j", chain)
    try:
        assert ctr_get(ctr, b_web) == ""  # Docker's isolation chain drops it
    finally:
        dockeruser.sync(lab.label, [s.bridge for s in lab.subnets.values()])
    assert ctr_get(ctr, b_web).startswith("b_web ")


def test_restarted_container_is_cut_off_until_repinned(lab, ctr):
    sub, b_web = lab.names["a"], lab.namespaces["b_web"]["ip"]
    old = lab.ports[ctr["iid"]].ifname
    ctr["container"].restart(timeout=1)
    port = bridges.container_port(lab.docker, lab.label, ctr["container"].id, sub)
    assert port["ifname"] != old  # Docker picked a new veth name
    spoofed = lab.fw.counters()["bridge:spoofed"]["packets"]
    assert ctr_get(ctr, b_web) == ""  # its address is pinned to a port that no longer exists
    assert lab.fw.counters()["bridge:spoofed"]["packets"] > spoofed
    t0 = time.perf_counter()
    new = lab.fw.repin(lab.desired(), ctr["iid"], port["ifname"])
    lab.ports[ctr["iid"]] = next(p for p in new.ports if p.instance_id == ctr["iid"])
    # The container's ARP entry for its gateway failed while it was cut off; the kernel retries
    # within a second or two, so poll instead of expecting the very next packet to pass.
    while not ctr_get(ctr, b_web).startswith("b_web "):
        assert time.perf_counter() - t0 < 10, "still cut off after re-pinning"
    print(f"\nrepin -> container reaches the other subnet again: {time.perf_counter() - t0:.2f} s")


def test_container_reads_its_metadata_with_imdsv2(restore, ctr):
    lab = restore

    def lookup(ip: str):
        port = next((p for p in lab.ports.values() if p.ip == ip), None)
        return {"instance_id": port.instance_id, "local_ipv4": ip, "http_tokens": "required"} if port else None

    server = MetadataServer(MetadataApp(lookup)).start()
    try:
        lab.imds_port = server.port
        lab.apply()
        script = ("T=$(printf 'PUT /latest/api/token HTTP/1.0\\r\\nX-aws-ec2-metadata-token-ttl-seconds: 60\\r\\n\\r\\n'"
                  " | nc -w 3 169.254.169.254 80 | tail -n 1); "
                  "printf \"GET /latest/meta-data/instance-id HTTP/1.0\\r\\nX-aws-ec2-metadata-token: $T\\r\\n\\r\\n\""
                  " | nc -w 3 169.254.169.254 80 | tail -n 1; echo; "
                  "printf 'GET /latest/meta-data/instance-id HTTP/1.0\\r\\n\\r\\n' | nc -w 3 169.254.169.254 80"
                  " | head -n 1")
        _, out = ctr["container"].exec_run(["sh", "-c", script])
        lines = out.decode().split("\n")
        assert lines[0] == ctr["iid"], out
        assert "401" in lines[1], out  # IMDSv1 refused: this instance requires tokens
        lab.matrix.append(("container", "169.254.169.254", 80, "IMDSv2 (v1 refused)", True, True))
    finally:
        server.stop()


def test_subnet_lifecycle_with_docker_and_rollback(lab, busybox_image):
    v2 = lab.names["v2"]
    sub = lab.subnet(v2)  # bridge + Docker network
    assert bridges.owner(sub.bridge) == bridges.alias(lab.label, sub.id)
    assert Path(f"/proc/sys/net/ipv4/conf/{sub.bridge}/route_localnet").read_text().strip() == "1"
    assert sh("ip", "-4", "-br", "addr", "show", sub.bridge).stdout.split()[2] == f"{sub.gateway}/24"
    c = run_container(lab, busybox_image, sub, lab.address(sub), "life")
    try:
        with pytest.raises(InvalidState) as e:
            lifecycle.delete_subnet(lab.label, sub, lab.docker, lab.dir)
        assert e.value.code == "DependencyViolation"
        assert bridges.owner(sub.bridge) and lab.docker.networks.list(names=[bridges.docker_network_name(lab.label, sub.id)])
    finally:
        c.remove(force=True)
    lifecycle.delete_subnet(lab.label, sub, lab.docker, lab.dir)
    del lab.subnets[sub.id]
    assert bridges.owner(sub.bridge) is None
    assert not lab.docker.networks.list(filters={"label": f"pocketcloud.subnet={sub.id}"})

    # A Docker network already holding the range: creation fails and leaves no bridge behind.
    clash = Subnet(hexid("subnet"), v2.id, sub.cidr)
    squatter = lab.docker.networks.create(f"pcn-{lab.label}-squat", driver="bridge",
                                          ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=sub.cidr)]),
                                          labels={"pocketcloud.cloud": lab.label})
    try:
        with pytest.raises(EngineError):
            lifecycle.create_subnet(lab.label, clash, lab.docker)
        assert bridges.owner(clash.bridge) is None
    finally:
        squatter.remove()

    # An interface that is not ours under the bridge's name is left alone.
    other = Subnet(hexid("subnet"), v2.id, sub.cidr)
    sh("ip", "link", "add", other.bridge, "type", "bridge")  # some other program's bridge
    try:
        with pytest.raises(AlreadyExists):
            bridges.ensure_bridge(lab.label, other)
        assert bridges.owner(other.bridge) == ""
    finally:
        sh("ip", "link", "del", other.bridge)


def test_repin_of_an_unknown_instance_changes_nothing(lab):
    before = lab.fw.ruleset()
    with pytest.raises(NotFound) as e:
        lab.fw.repin(lab.desired(), hexid("i"), "veth0")
    assert e.value.code == "InvalidInstanceID.NotFound"
    assert lab.fw.ruleset() == before
