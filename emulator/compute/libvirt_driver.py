"""Virtual machines through libvirtd (QEMU, under KVM when it really works, else TCG).

libvirt.libvirtError never leaves this module: `_engine_errors` turns each into an
emulator.errors exception, like the Docker driver does for docker-py.

Per instance (engine id = domain name `pc-<instance-id>`), under BASE/instances/<iid>/:
  root.qcow2   copy-on-write overlay on the image's read-only base (disk.qcow2)
  seed.iso     NoCloud seed (volume label cidata: meta-data, user-data)
  console.log  the serial console, appended across boots (written by virtlogd)
  boot.offset  size of console.log when the current boot began (readiness is looked for
               after it)
The domain's <metadata> carries the cloud label, owner, ports and private IP, so
`list_managed` and a restarted server find everything again without our database.

An image of kind vm is a directory with a vm.json (see images/README.md).
"""
from __future__ import annotations

import atexit
import hashlib
import ipaddress
import json
import logging
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import AlreadyExists, BackendUnavailable, CloudError, EngineError, InvalidParameter, InvalidState, NotFound
from . import hostinfo
from .driver import EngineInstance, ExecResult, LaunchSpec, PortForward
from .forwarder import Forwarder
from .sshkeys import generate_keypair, validate_public_key

log = logging.getLogger(__name__)

try:  # libvirt-python is a C extension; without it the driver reports itself unavailable.
    import libvirt

    # libvirt prints every error to stderr by default; ours are converted and raised instead.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
except ImportError:  # pragma: no cover - exercised only on hosts without libvirt-python
    libvirt = None

NS = "https://pocketcloud.dev/xmlns/instance/1"
NS_KEY = "pocketcloud"
MAX_OUTPUT = 1024 * 1024
HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
IID = re.compile(r"^i-[0-9a-f]{17}$")
ENGINE_ID = re.compile(r"^pc-i-[0-9a-f]{17}$")
KVM_PROBE_BOUND = 20.0  # seconds a probe guest gets under KVM to reach userspace
PROBE_MARKER = "pocketcloud-probe: ok"

_STATES = {  # libvirt domain state -> EC2 state (running may still be pending: see _describe)
    0: "pending",  # NOSTATE
    1: "running",  # RUNNING
    2: "running",  # BLOCKED
    3: "running",  # PAUSED
    4: "stopping",  # SHUTDOWN (being shut down)
    5: "stopped",  # SHUTOFF
    6: "stopped",  # CRASHED
    7: "stopped",  # PMSUSPENDED
}


def _code(e) -> int:
    try:
        return e.get_error_code()
    except Exception:
        return -1


@contextmanager
def _engine_errors(what: str) -> Iterator[None]:
    """The ONE place libvirt (and helper tool) failures become emulator errors."""
    try:
        yield
    except CloudError:
        raise
    except Exception as e:
        if libvirt is not None and isinstance(e, libvirt.libvirtError):
            code, text = _code(e), (e.get_error_message() or str(e))
            if code in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_NO_NETWORK):
                raise NotFound(f"{what}: {text}") from None
            if code == libvirt.VIR_ERR_OPERATION_INVALID:
                raise InvalidState(f"{what}: {text}", code="IncorrectInstanceState") from None
            if code in (libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN) or (
                code == libvirt.VIR_ERR_SYSTEM_ERROR and "socket" in text
            ):
                raise BackendUnavailable(
                    f"{what}: libvirtd is not reachable ({text})",
                    hint="start it with `bash scripts/engines.sh` (virtlogd -d; libvirtd -d)",
                ) from None
            if code == libvirt.VIR_ERR_OPERATION_TIMEOUT:
                raise EngineError(f"{what}: libvirtd timed out: {text}") from None
            raise EngineError(f"{what}: libvirtd said: {text}") from None
        if isinstance(e, subprocess.CalledProcessError):
            out = (e.stderr or e.stdout or b"")
            out = out.decode(errors="replace") if isinstance(out, bytes) else out
            raise EngineError(f"{what}: {shlex.join(map(str, e.cmd))} failed: {out.strip()[-500:]}") from None
        if isinstance(e, FileNotFoundError) and e.filename and "/" not in str(e.filename):
            raise BackendUnavailable(f"{what}: the tool {e.filename} is not installed") from None
        if isinstance(e, OSError):
            raise EngineError(f"{what}: {e}") from None
        raise


def _mac_for(instance_id: str, salt: int = 0) -> str:
    h = hashlib.sha256(f"{instance_id}/{salt}".encode()).digest()
    return "52:54:00:%02x:%02x:%02x" % (h[0], h[1], h[2])


class LibvirtDriver:
    kind = "vm"

    def __init__(
        self,
        uri: str,
        cloud_label: str,
        base_dir: str | Path,
        *,
        hypervisor: str = "auto",
        network_name: str = "pocketcloud",
        network_cidr: str = "10.213.0.0/24",
        probe_image: str | Path | None = None,
        forwarder: Forwarder | None = None,
        boot_timeout: float | None = None,
        run_as: str | None = None,
        tcg_tb_cache_mib: int | None = None,
        free_page_reporting: bool = True,
    ):
        """
        uri           libvirt URI (qemu:///system)
        cloud_label   tags every domain, so list_managed finds this cloud's domains only
        base_dir      instance dirs, kept console logs, the management key, probe cache;
                      must be reachable by the qemu process (see run_as)
        hypervisor    auto | kvm | qemu
        network_*     the NAT network the driver defines and starts itself
        probe_image   a vm image dir (tiny) whose kernel+initrd serve as the KVM probe
        forwarder     share one with the container driver; one is created otherwise
        boot_timeout  overrides the image's vm.json boot_timeout
        run_as        qemu's DAC label 'UID:GID'; default: this process's uid:gid, so qemu
                      can read the files this process made (no chown, no relabelling)
        tcg_tb_cache_mib  TCG translation cache per VM (QEMU's default is 1 GiB); None: default
        """
        if hypervisor not in ("auto", "kvm", "qemu"):
            raise InvalidParameter("hypervisor must be auto, kvm or qemu")
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$", network_name):
            raise InvalidParameter(f"invalid libvirt network name {network_name!r}")
        try:
            net = ipaddress.IPv4Network(network_cidr)
        except ValueError as e:
            raise InvalidParameter(f"invalid network cidr {network_cidr!r}: {e}") from None
        if net.prefixlen > 28 or not net.is_private:
            raise InvalidParameter("the VM network must be a private IPv4 subnet of /28 or larger")
        self.uri = uri
        self.cloud_label = cloud_label
        self.base_dir = Path(base_dir).resolve()
        self.hypervisor_mode = hypervisor
        self.network_name = network_name
        self.network = net
        self.probe_image = Path(probe_image).resolve() if probe_image else None
        self.forwarder = forwarder or Forwarder()
        self.boot_timeout = boot_timeout
        self.run_as = run_as or f"+{os.getuid()}:+{os.getgid()}"
        self.tcg_tb_cache_mib = tcg_tb_cache_mib
        self.free_page_reporting = free_page_reporting
        self._conn = None
        self._lock = threading.RLock()
        self._net_lock = threading.Lock()
        self._hv: dict | None = None
        self._ready: dict[str, tuple[int, bool]] = {}  # engine id -> (domain id, ready)
        self._exec_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="vm-exec")

    # -- connection --------------------------------------------------------------
    @property
    def conn(self):
        if libvirt is None:
            raise BackendUnavailable("libvirt-python is not installed", hint="pip install libvirt-python")
        with self._lock:
            if self._conn is not None:
                try:
                    if self._conn.isAlive():
                        return self._conn
                except libvirt.libvirtError:
                    pass
                self._conn = None
            with _engine_errors(f"connect {self.uri}"):
                self._conn = libvirt.open(self.uri)
            return self._conn

    def available(self) -> tuple[bool, str]:
        try:
            c = self.conn
            with _engine_errors("version"):
                lv, qv = c.getLibVersion(), c.getVersion()
            return True, f"libvirt {lv // 1000000}.{lv // 1000 % 1000}, QEMU {qv // 1000000}.{qv // 1000 % 1000}"
        except CloudError as e:
            self._conn = None
            return False, str(e)

    def info(self) -> dict:
        c = self.conn
        with _engine_errors("info"):
            lv, qv = c.getLibVersion(), c.getVersion()
            node = c.getInfo()
        return {
            "uri": self.uri,
            "libvirt_version": f"{lv // 1000000}.{lv // 1000 % 1000}.{lv % 1000}",
            "qemu_version": f"{qv // 1000000}.{qv // 1000 % 1000}.{qv % 1000}",
            "host_cpus": node[2],
            "host_memory_mib": node[1],
            "hypervisor": self.hypervisor(),
            "network": {"name": self.network_name, "cidr": str(self.network), "gateway": str(self._gateway())},
            "base_dir": str(self.base_dir),
            "warnings": self.warnings(),
        }

    @staticmethod
    def warnings() -> list[str]:
        """Host setup problems that make VMs slow or fail, each with its fix."""
        out = []
        try:
            st = os.stat("/dev/kvm")
            if not st.st_mode & 0o060 and not st.st_mode & 0o006:
                out.append(
                    "/dev/kvm is accessible to root only: libvirtd then re-probes QEMU on every call "
                    "(30-60 s per define/start). Fix: chgrp kvm /dev/kvm && chmod 0660 /dev/kvm "
                    "(what udev does on a normal boot)"
                )
        except OSError:
            pass
        return out

    # -- hypervisor choice -------------------------------------------------------
    def hypervisor(self) -> dict:
        """{'requested', 'mode' ('kvm'|'qemu'), 'domain_type', 'accelerator', 'reason'}.
        In auto mode KVM is chosen only if a probe guest reached userspace under it
        within KVM_PROBE_BOUND seconds (the result is cached in BASE/hypervisor.json)."""
        with self._lock:
            if self._hv is None:
                self._hv = self._choose_hypervisor()
            return dict(self._hv)

    def _choose_hypervisor(self) -> dict:
        def result(mode: str, reason: str) -> dict:
            return {
                "requested": self.hypervisor_mode,
                "mode": mode,
                "domain_type": mode,
                "accelerator": "KVM (hardware virtualization)" if mode == "kvm" else "TCG (software emulation)",
                "reason": reason,
            }

        if self.hypervisor_mode == "qemu":
            return result("qemu", "configured: hypervisor=qemu (TCG)")
        kvm_dev = Path("/dev/kvm")
        has_kvm_type = self._libvirt_offers_kvm()
        if self.hypervisor_mode == "kvm":
            if not kvm_dev.exists() or not has_kvm_type:
                raise BackendUnavailable(
                    "hypervisor=kvm was configured but KVM is not usable here "
                    f"({'no /dev/kvm' if not kvm_dev.exists() else 'libvirt offers no kvm domain type'})",
                    hint="use hypervisor=auto or qemu",
                )
            return result("kvm", "configured: hypervisor=kvm")
        if not kvm_dev.exists():
            return result("qemu", "auto: /dev/kvm does not exist, using TCG")
        if not has_kvm_type:
            return result("qemu", "auto: libvirt offers no kvm domain type, using TCG")
        if self.probe_image is None or not (self.probe_image / "vm.json").exists():
            return result("qemu", "auto: /dev/kvm exists but no probe image (build 'tiny') to prove KVM works; using TCG")
        st = kvm_dev.stat()
        key = f"{os.uname().release}|{st.st_rdev}|{self.probe_image}|{(self.probe_image / 'vmlinuz').stat().st_size}"
        cache = self.base_dir / "hypervisor.json"
        try:
            cached = json.loads(cache.read_text())
            if cached.get("key") == key:
                return result(cached["mode"], cached["reason"] + " (cached probe)")
        except (OSError, ValueError, KeyError):
            pass
        self._reap_stale_probes()
        ok, seconds, detail = self._probe_kvm()
        if ok:
            mode, reason = "kvm", f"auto: a KVM probe guest reached userspace in {seconds:.1f}s"
        else:
            mode, reason = "qemu", f"auto: /dev/kvm exists but a KVM probe guest {detail}; using TCG"
        self.base_dir.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"key": key, "mode": mode, "reason": reason, "probed_at": time.time()}))
        return result(mode, reason)

    def _libvirt_offers_kvm(self) -> bool:
        try:
            with _engine_errors("capabilities"):
                caps = ET.fromstring(self.conn.getCapabilities())
        except CloudError:
            return False
        return any(d.get("type") == "kvm" for d in caps.iter("domain"))

    def _probe_kvm(self) -> tuple[bool, float, str]:
        """Boot the probe image's kernel+initrd under KVM with `pocketcloud.probe`: its
        initrd prints PROBE_MARKER and powers off as soon as it reaches userspace."""
        vm = self._image(str(self.probe_image))
        probe_dir = Path(tempfile.mkdtemp(prefix="probe-", dir=self._mkdir(self.base_dir / "probe")))
        log_path = probe_dir / "console.log"
        name = f"pc-probe-{os.getpid()}-{int(time.time())}"
        root = self._domain_xml_base(name, "kvm", 1, 256, vm, "console=ttyS0 pocketcloud.probe panic=-1", log_path)
        dom = None
        started = time.monotonic()
        try:
            with _engine_errors("kvm probe"):
                dom = self.conn.createXML(ET.tostring(root, encoding="unicode"), 0)
            # A server stopped mid-probe must not leave the probe guest running.
            atexit.register(self._destroy_probe, dom)
            while time.monotonic() - started < KVM_PROBE_BOUND:
                if PROBE_MARKER in self._read(log_path):
                    return True, time.monotonic() - started, "ok"
                time.sleep(0.2)
            tail = self._read(log_path)[-300:].strip().replace("\n", " | ")
            return False, KVM_PROBE_BOUND, f"did not reach userspace within {KVM_PROBE_BOUND:.0f}s (console: {tail or 'empty'})"
        except CloudError as e:
            return False, time.monotonic() - started, f"failed to start ({e.message})"
        finally:
            if dom is not None:
                atexit.unregister(self._destroy_probe)
                self._destroy_probe(dom)
            shutil.rmtree(probe_dir, ignore_errors=True)

    @staticmethod
    def _destroy_probe(dom) -> None:
        """A guest hung in a broken nested KVM can refuse the first destroy (its state lock
        is busy); a probe left running would burn a CPU forever, so try again."""
        for attempt in range(10):
            try:
                dom.destroy()
                return
            except libvirt.libvirtError as e:
                if _code(e) == libvirt.VIR_ERR_NO_DOMAIN:
                    return
                log.warning("destroying the KVM probe guest failed (attempt %d): %s", attempt + 1, e)
                time.sleep(1 + attempt)

    def _reap_stale_probes(self) -> None:
        """Destroy probe guests whose creating process is gone (a crash mid-probe)."""
        try:
            doms = self.conn.listAllDomains(0)
        except (libvirt.libvirtError, CloudError):
            return
        for dom in doms:
            m = re.fullmatch(r"pc-probe-(\d+)-\d+", dom.name())
            if m and not Path(f"/proc/{m.group(1)}").exists():
                self._destroy_probe(dom)

    # -- network -----------------------------------------------------------------
    def _gateway(self) -> ipaddress.IPv4Address:
        return self.network.network_address + 1

    def _ensure_network(self):
        with self._net_lock, _engine_errors(f"network {self.network_name}"):
            try:
                net = self.conn.networkLookupByName(self.network_name)
            except libvirt.libvirtError as e:
                if _code(e) != libvirt.VIR_ERR_NO_NETWORK:
                    raise
                self._check_subnet_free()
                net = self.conn.networkDefineXML(self._network_xml())
            if not net.isActive():
                net.create()
            return net

    def _network_xml(self) -> str:
        n = self.network
        root = ET.Element("network")
        ET.SubElement(root, "name").text = self.network_name
        ET.SubElement(root, "forward", mode="nat")
        ET.SubElement(root, "bridge", stp="on", delay="0")
        ip = ET.SubElement(root, "ip", address=str(self._gateway()), netmask=str(n.netmask))
        dhcp = ET.SubElement(ip, "dhcp")
        hosts = list(n.hosts())
        ET.SubElement(dhcp, "range", start=str(hosts[len(hosts) // 2]), end=str(hosts[-1]))
        return ET.tostring(root, encoding="unicode")

    def _check_subnet_free(self) -> None:
        """Refuse to define a network whose subnet overlaps a route the host already has
        (docker0 172.17/16, libvirt default 192.168.122/24, the LAN ...)."""
        taken = []
        try:
            with open("/proc/net/route") as f:
                next(f)
                for line in f:
                    parts = line.split()
                    dest, mask = int(parts[1], 16), int(parts[7], 16)
                    if mask == 0:
                        continue
                    net = ipaddress.IPv4Network(
                        (socket.inet_ntoa(dest.to_bytes(4, "little")), socket.inet_ntoa(mask.to_bytes(4, "little"))),
                        strict=False,
                    )
                    taken.append((parts[0], net))
        except OSError:
            return
        for other in self.conn.listAllNetworks(0):
            for ip in ET.fromstring(other.XMLDesc(0)).iter("ip"):
                if ip.get("address") and (ip.get("netmask") or ip.get("prefix")):
                    net = ipaddress.IPv4Network(f"{ip.get('address')}/{ip.get('netmask') or ip.get('prefix')}", strict=False)
                    taken.append((f"libvirt network {other.name()}", net))
        for where, net in taken:
            if net.overlaps(self.network):
                raise BackendUnavailable(
                    f"the VM subnet {self.network} overlaps {net} ({where})",
                    hint="choose another subnet for the pocketcloud network",
                )

    def remove_network(self) -> None:
        """Destroy and undefine the driver's network (tests; `pocketcloud` teardown)."""
        with self._net_lock, _engine_errors(f"remove network {self.network_name}"):
            try:
                net = self.conn.networkLookupByName(self.network_name)
            except libvirt.libvirtError as e:
                if _code(e) == libvirt.VIR_ERR_NO_NETWORK:
                    return
                raise
            if net.isActive():
                net.destroy()
            net.undefine()

    def _reserve_ip(self, net, instance_id: str, mac: str, hostname: str) -> str:
        """A static DHCP host entry: the instance keeps its private IP across stop/start."""
        root = ET.fromstring(net.XMLDesc(0))
        used = {h.get("ip") for h in root.iter("host")}
        used |= {lease.get("ipaddr") for lease in (net.DHCPLeases() or [])}
        hosts = list(self.network.hosts())
        # Static addresses come from the lower half; the dynamic range is the upper half.
        candidates = [str(ip) for ip in hosts[1 : len(hosts) // 2]]
        start = int(hashlib.sha256(instance_id.encode()).hexdigest(), 16) % len(candidates)
        for ip in candidates[start:] + candidates[:start]:
            if ip in used:
                continue
            # Named after the instance id: libvirt refuses two entries with the same name.
            host = ET.Element("host", mac=mac, name=instance_id, ip=ip)
            try:
                net.update(
                    libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
                    libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST,
                    -1,
                    ET.tostring(host, encoding="unicode"),
                    libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE | libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG,
                )
                return ip
            except libvirt.libvirtError as e:
                if any(w in str(e).lower() for w in ("existing", "already", "duplicate")):
                    continue
                raise
        raise EngineError(f"no free address left in {self.network}")

    def _release_ip(self, mac: str, instance_id: str) -> None:
        try:
            net = self.conn.networkLookupByName(self.network_name)
            for h in ET.fromstring(net.XMLDesc(0)).iter("host"):
                if h.get("mac") == mac or h.get("name") == instance_id:
                    flags = libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG
                    if net.isActive():
                        flags |= libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE
                    net.update(
                        libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE,
                        libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST,
                        -1,
                        ET.tostring(h, encoding="unicode"),
                        flags,
                    )
        except libvirt.libvirtError:
            pass

    # -- images ------------------------------------------------------------------
    def _image(self, ref: str) -> dict:
        folder = Path(ref)
        try:
            vm = json.loads((folder / "vm.json").read_text())
        except (OSError, ValueError) as e:
            raise NotFound(f"VM image {ref!r} is not usable: {e}", code="InvalidAMIID.NotFound") from None
        out = {"dir": folder, **vm}
        for key in ("kernel", "initrd", "disk"):
            rel = vm.get(key)
            if rel is None:
                if key == "initrd":
                    out[key] = None
                    continue
                raise InvalidParameter(f"VM image {ref}: vm.json has no {key!r}")
            p = (folder / rel).resolve()
            if folder.resolve() not in p.parents or not p.is_file():
                raise InvalidParameter(f"VM image {ref}: {key} {rel!r} is not a file inside the image")
            out[key] = p
        if not isinstance(vm.get("cmdline", ""), str) or len(vm.get("cmdline", "")) > 1024:
            raise InvalidParameter(f"VM image {ref}: cmdline must be a string")
        return out

    # -- domain XML ----------------------------------------------------------------
    def _domain_xml_base(self, name, domain_type, vcpus, memory_mib, vm, cmdline, log_path) -> ET.Element:
        d = ET.Element("domain", type=domain_type)
        ET.SubElement(d, "name").text = name
        ET.SubElement(d, "memory", unit="MiB").text = str(int(memory_mib))
        ET.SubElement(d, "vcpu", placement="static").text = str(int(vcpus))
        os_el = ET.SubElement(d, "os")
        ET.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
        ET.SubElement(os_el, "kernel").text = str(vm["kernel"])
        if vm.get("initrd"):
            ET.SubElement(os_el, "initrd").text = str(vm["initrd"])
        ET.SubElement(os_el, "cmdline").text = cmdline
        features = ET.SubElement(d, "features")
        ET.SubElement(features, "acpi")
        ET.SubElement(features, "apic")
        if domain_type == "qemu" and self.tcg_tb_cache_mib:
            # QEMU's TCG translation cache defaults to 1 GiB; most of a small guest's qemu RSS.
            tcg = ET.SubElement(features, "tcg")
            ET.SubElement(tcg, "tb-cache", unit="MiB").text = str(int(self.tcg_tb_cache_mib))
        if domain_type == "kvm":
            ET.SubElement(d, "cpu", mode="host-passthrough")
        ET.SubElement(d, "clock", offset="utc")
        ET.SubElement(d, "on_poweroff").text = "destroy"
        ET.SubElement(d, "on_reboot").text = "restart"
        ET.SubElement(d, "on_crash").text = "destroy"
        dev = ET.SubElement(d, "devices")
        serial = ET.SubElement(dev, "serial", type="pty")
        ET.SubElement(serial, "log", file=str(log_path), append="on")
        ET.SubElement(serial, "target", port="0")
        console = ET.SubElement(dev, "console", type="pty")
        ET.SubElement(console, "target", type="serial", port="0")
        rng = ET.SubElement(dev, "rng", model="virtio")
        ET.SubElement(rng, "backend", model="random").text = "/dev/urandom"
        if self.free_page_reporting:
            # The guest hands pages it frees back to the host: an idle VM's qemu RSS shrinks.
            ET.SubElement(dev, "memballoon", model="virtio", freePageReporting="on")
        else:
            ET.SubElement(dev, "memballoon", model="none")
        # qemu runs with this process's uid:gid and touches only files this process made.
        label = ET.SubElement(d, "seclabel", type="static", model="dac", relabel="no")
        ET.SubElement(label, "label").text = self.run_as
        return d

    def _domain_xml(self, spec: LaunchSpec, vm: dict, hv: dict, inst_dir: Path, mac: str, ip: str,
                    ports: list[PortForward], auto_ports: set[int] = frozenset()) -> str:
        name = self._engine_id(spec.instance_id)
        d = self._domain_xml_base(
            name, hv["domain_type"], spec.type.vcpus, spec.type.memory_mib, vm, vm.get("cmdline", ""),
            inst_dir / "console.log",
        )
        ET.SubElement(d, "title").text = f"pocketcloud {spec.instance_id} ({spec.name or 'unnamed'})"
        ET.SubElement(d, "description").text = (
            f"pocketcloud instance {spec.instance_id} of {spec.owner}, image {vm['dir'].name}, type {spec.type.name}"
        )
        meta = ET.SubElement(d, "metadata")
        m = ET.SubElement(meta, f"{{{NS}}}instance")
        for k, v in (
            ("cloud", self.cloud_label), ("instance-id", spec.instance_id), ("owner", spec.owner),
            ("image", str(vm["dir"])), ("type", spec.type.name), ("mac", mac), ("ip", ip),
            ("ssh", "yes" if vm.get("ssh") else "no"), ("ready-marker", vm.get("ready_marker", "")),
            ("hypervisor", hv["mode"]), ("hypervisor-reason", hv["reason"]),
            ("guest-kernel", vm.get("guest_kernel", "")), ("ssh-user", vm.get("ssh_user", "root")),
        ):
            ET.SubElement(m, f"{{{NS}}}{k}").text = v
        self._ports_xml(m, ports, auto_ports)
        dev = d.find("devices")
        disk = ET.Element("disk", type="file", device="disk")
        ET.SubElement(disk, "driver", name="qemu", type="qcow2", discard="unmap")
        ET.SubElement(disk, "source", file=str(inst_dir / "root.qcow2"))
        ET.SubElement(disk, "target", dev="vda", bus="virtio")
        seed = ET.Element("disk", type="file", device="disk")
        ET.SubElement(seed, "driver", name="qemu", type="raw")
        ET.SubElement(seed, "source", file=str(inst_dir / "seed.iso"))
        ET.SubElement(seed, "target", dev="vdb", bus="virtio")
        ET.SubElement(seed, "readonly")
        nic = ET.Element("interface", type="network")
        ET.SubElement(nic, "mac", address=mac)
        ET.SubElement(nic, "source", network=self.network_name)
        ET.SubElement(nic, "model", type="virtio")
        for i, el in enumerate((disk, seed, nic)):
            dev.insert(i, el)
        ET.register_namespace(NS_KEY, NS)
        return ET.tostring(d, encoding="unicode")

    @staticmethod
    def _ports_xml(parent: ET.Element, ports, auto_ports) -> ET.Element:
        ports_el = ET.SubElement(parent, f"{{{NS}}}ports")
        for p in ports:
            attrs = {"guest": str(p.guest), "host": str(p.host), "protocol": p.protocol}
            if p.guest in auto_ports:
                attrs["auto"] = "yes"  # added by the driver (SSH), not asked for
            ET.SubElement(ports_el, f"{{{NS}}}port", attrs)
        return ports_el

    # -- validation ----------------------------------------------------------------
    def _validate(self, spec: LaunchSpec, vm: dict) -> tuple[str, tuple[str, ...]]:
        if not IID.match(spec.instance_id):
            raise InvalidParameter(f"invalid instance id {spec.instance_id!r}", code="InvalidInstanceID.Malformed")
        hostname = self._hostname(spec.hostname, spec.instance_id)
        keys = tuple(validate_public_key(k) for k in spec.ssh_keys)
        with _engine_errors("host info"):
            node = self.conn.getInfo()
        host_mib, host_cpus = node[1], node[2]
        t = spec.type
        if t.memory_mib > host_mib:
            raise InvalidParameter(
                f"instance type {t.name} needs {t.memory_mib} MiB but this host has {host_mib} MiB",
                code="InsufficientInstanceCapacity",
            )
        if t.memory_mib < int(vm.get("min_memory_mib", 64)):
            raise InvalidParameter(f"image {vm['dir'].name} needs at least {vm.get('min_memory_mib')} MiB of memory")
        if t.vcpus > host_cpus:
            raise InvalidParameter(
                f"instance type {t.name} needs {t.vcpus} vCPUs but this host has {host_cpus}",
                code="InsufficientInstanceCapacity",
            )
        if "\x00" in spec.user_data:
            raise InvalidParameter("user_data must not contain NUL bytes")
        for p in spec.ports:
            if p.protocol != "tcp" or not 0 < p.guest < 65536 or (p.host is not None and not 1024 <= p.host < 65536):
                raise InvalidParameter(f"invalid port forward {p}")
        return hostname, keys

    @staticmethod
    def _hostname(name: str, instance_id: str) -> str:
        """A valid DNS label from an instance name ('web_1.prod' -> 'web-1-prod')."""
        if name and HOSTNAME.match(name):
            return name
        clean = re.sub(r"[^A-Za-z0-9-]+", "-", name or "").strip("-")[:63].strip("-")
        return clean if clean and HOSTNAME.match(clean) else instance_id

    # -- lifecycle -------------------------------------------------------------------
    @staticmethod
    def _engine_id(instance_id: str) -> str:
        return f"pc-{instance_id}"

    def _inst_dir(self, engine_id: str) -> Path:
        if not ENGINE_ID.match(engine_id):
            raise InvalidParameter(f"invalid VM engine id {engine_id[:40]!r}")
        return self.base_dir / "instances" / engine_id[3:]

    @staticmethod
    def _mkdir(p: Path) -> Path:
        p.mkdir(parents=True, exist_ok=True)
        return p

    def launch(self, spec: LaunchSpec, wait: bool = True) -> EngineInstance:
        """Define and start the domain. With wait (default) return only once the guest is
        ready (its ready marker on the console, and SSH answering when the image has it);
        a guest that is not ready within its boot timeout is removed, its console log kept
        under BASE/logs/, and EngineError raised. Any failure removes everything created."""
        vm = self._image(spec.image_ref)
        hostname, keys = self._validate(spec, vm)
        hv = self.hypervisor()
        engine_id = self._engine_id(spec.instance_id)
        inst_dir = self._inst_dir(engine_id)
        mac = _mac_for(spec.instance_id)
        created_dir = defined = False
        ip = None
        try:
            with _engine_errors(f"launch {spec.instance_id}"):
                try:
                    self.conn.lookupByName(engine_id)
                    raise AlreadyExists(f"a domain {engine_id} already exists", code="InvalidInstanceID.Duplicate")
                except libvirt.libvirtError as e:
                    if _code(e) != libvirt.VIR_ERR_NO_DOMAIN:
                        raise
                net = self._ensure_network()
                try:
                    inst_dir.mkdir(parents=True)
                except FileExistsError:
                    raise AlreadyExists(f"instance directory {inst_dir} already exists") from None
                created_dir = True
                subprocess.run(
                    ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(vm["disk"]), "-F", "qcow2",
                     str(inst_dir / "root.qcow2")],
                    check=True, capture_output=True,
                )
                self._write_seed(inst_dir, spec, hostname, keys + (self._mgmt_public_key(),))
                ip = self._reserve_ip(net, spec.instance_id, mac, hostname)
                ports = list(spec.ports)
                auto = set()
                if spec.auto_ssh and vm.get("ssh") and not any(p.guest == 22 for p in ports):
                    ports.append(PortForward(22, None))
                    auto.add(22)
                bound = []
                for p in ports:
                    host = self.forwarder.open(f"{engine_id}:{p.guest}", p.host, self._resolver(engine_id, ip, p.guest))
                    bound.append(PortForward(p.guest, host, p.protocol))
                xml = self._domain_xml(spec, vm, hv, inst_dir, mac, ip, bound, auto)
                dom = self.conn.defineXML(xml)
                defined = True
                self._mark_boot(inst_dir)
                dom.create()
            if wait:
                self.wait_ready(engine_id, self._boot_timeout(vm))
            return self._describe(dom)
        except BaseException as e:
            kept = None
            if created_dir:  # never touch what an existing instance of that id owns
                if (inst_dir / "console.log").exists():
                    kept = self._keep_console(engine_id, inst_dir)
                self._remove(engine_id, mac if ip else None, defined)
            if isinstance(e, TimeoutError):
                tail = self._read(kept)[-1500:] if kept else ""
                raise EngineError(
                    f"{spec.instance_id} did not become ready within {self._boot_timeout(vm):.0f}s under "
                    f"{hv['accelerator']}; the VM was removed, its console log kept at {kept}.\n"
                    f"Last console output:\n{tail}",
                    code="InstanceBootTimeout",
                ) from None
            raise

    def _boot_timeout(self, vm: dict) -> float:
        return float(self.boot_timeout or vm.get("boot_timeout") or 180)

    def _keep_console(self, engine_id: str, inst_dir: Path) -> Path | None:
        try:
            dest = self._mkdir(self.base_dir / "logs") / f"{engine_id}.console.log"
            shutil.copyfile(inst_dir / "console.log", dest)
            return dest
        except OSError:
            return None

    def _write_seed(self, inst_dir: Path, spec: LaunchSpec, hostname: str, keys: tuple[str, ...]) -> None:
        # Every value is validated (id, hostname, one-line keys), so this YAML is safe.
        meta = f"instance-id: {spec.instance_id}\nlocal-hostname: {hostname}\n"
        if keys:
            meta += "public-keys:\n" + "".join(f"  - {k}\n" for k in keys)
        src = inst_dir / "seed"
        src.mkdir()
        (src / "meta-data").write_text(meta)
        (src / "user-data").write_text(spec.user_data)
        try:
            subprocess.run(
                ["genisoimage", "-quiet", "-output", str(inst_dir / "seed.iso"), "-volid", "cidata", "-joliet",
                 "-rock", str(src / "meta-data"), str(src / "user-data")],
                check=True, capture_output=True,
            )
        finally:
            shutil.rmtree(src, ignore_errors=True)

    def _mgmt_key_path(self) -> Path:
        return self.base_dir / "mgmt" / "id_ed25519"

    def _mgmt_public_key(self) -> str:
        """The driver's own key, added to every VM's seed so exec() can run commands."""
        path = self._mgmt_key_path()
        pub = path.with_suffix(".pub")
        with self._lock:
            if not pub.exists():
                self._mkdir(path.parent).chmod(0o700)
                private, public = generate_keypair("pocketcloud-management")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(private)
                pub.write_text(public + "\n")
            return pub.read_text().strip()

    def _mark_boot(self, inst_dir: Path) -> None:
        log = inst_dir / "console.log"
        (inst_dir / "boot.offset").write_text(str(log.stat().st_size if log.exists() else 0))

    def _remove(self, engine_id: str, mac: str | None, defined: bool = True) -> None:
        """Best-effort removal of everything of an instance (rollback and terminate)."""
        self.forwarder.close_prefix(f"{engine_id}:")
        if defined:
            try:
                dom = self.conn.lookupByName(engine_id)
                if mac is None:
                    mac = self._meta(dom).get("mac") or None
                try:
                    dom.destroy()
                except libvirt.libvirtError:
                    pass
                dom.undefineFlags(
                    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                )
            except libvirt.libvirtError:
                pass
        # The MAC (and the reservation's name) follow from the instance id, so the DHCP
        # entry goes even when the domain was undefined behind our back.
        self._release_ip(mac or _mac_for(engine_id[3:]), engine_id[3:])
        self._ready.pop(engine_id, None)
        shutil.rmtree(self._inst_dir(engine_id), ignore_errors=True)

    def _dom(self, engine_id: str):
        self._inst_dir(engine_id)  # validates the id
        with _engine_errors(f"instance {engine_id}"):
            return self.conn.lookupByName(engine_id)

    def inspect(self, engine_id: str) -> EngineInstance | None:
        try:
            dom = self._dom(engine_id)
        except NotFound:
            return None
        try:
            return self._describe(dom, restore_forwards=True)
        except NotFound:
            return None

    def start(self, engine_id: str, wait: bool = True) -> EngineInstance:
        dom = self._dom(engine_id)
        with _engine_errors(f"start {engine_id}"):
            if dom.isActive():
                raise InvalidState(f"{engine_id} is already running", code="IncorrectInstanceState")
            self._ensure_network()
            self._restore_forwards(dom)
            self._mark_boot(self._inst_dir(engine_id))
            dom.create()
        if wait:
            vm = self._image(self._meta(dom).get("image", ""))
            try:
                self.wait_ready(engine_id, self._boot_timeout(vm))
            except TimeoutError:
                raise EngineError(
                    f"{engine_id} started but was not ready within {self._boot_timeout(vm):.0f}s; see its console",
                    code="InstanceBootTimeout",
                ) from None
        return self._describe(dom)

    def stop(self, engine_id: str, timeout: int) -> EngineInstance:
        """ACPI power button, then destroy after `timeout` seconds."""
        dom = self._dom(engine_id)
        with _engine_errors(f"stop {engine_id}"):
            if dom.isActive():
                try:
                    dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
                except libvirt.libvirtError:
                    pass  # may already be going down
                deadline = time.monotonic() + max(0, timeout)
                while time.monotonic() < deadline and dom.isActive():
                    time.sleep(0.2)
                if dom.isActive():
                    try:
                        dom.destroy()
                    except libvirt.libvirtError as e:
                        if dom.isActive():
                            raise e
        self._ready.pop(engine_id, None)
        return self._describe(dom)

    def reboot(self, engine_id: str, timeout: int) -> EngineInstance:
        """A clean stop (ACPI, destroy after timeout) and a fresh start of the same domain."""
        dom = self._dom(engine_id)
        with _engine_errors(f"reboot {engine_id}"):
            if not dom.isActive():
                raise InvalidState(f"{engine_id} is not running; start it instead", code="IncorrectInstanceState")
        self.stop(engine_id, timeout)
        return self.start(engine_id)

    def terminate(self, engine_id: str) -> None:
        self._inst_dir(engine_id)
        with _engine_errors(f"terminate {engine_id}"):
            self._remove(engine_id, None, defined=True)

    def console(self, engine_id: str, tail: int) -> str:
        log = self._inst_dir(engine_id) / "console.log"
        if not log.exists():
            kept = self.base_dir / "logs" / f"{engine_id}.console.log"
            if kept.exists():
                log = kept
            elif self.inspect(engine_id) is None:
                raise NotFound(f"no console log for {engine_id}")
            else:
                return ""
        text = self._read(log)
        lines = text.splitlines()
        if tail and tail > 0:
            lines = lines[-tail:]
        return "\n".join(lines) + ("\n" if lines else "")

    def exec(self, engine_id: str, command: list[str], timeout: int) -> ExecResult:
        """Run a command in the guest over SSH, with the driver's management key."""
        dom = self._dom(engine_id)
        meta = self._meta(dom)
        if meta.get("ssh") != "yes":
            raise InvalidState("this VM image has no SSH server, so commands cannot be run in it")
        with _engine_errors("exec"):
            if not dom.isActive():
                raise InvalidState("the instance is not running; start it before exec", code="IncorrectInstanceState")
        ip = meta.get("ip")
        future = self._exec_pool.submit(self._ssh_run, ip, meta.get("ssh-user") or "root", command, timeout)
        try:
            return future.result(timeout=timeout + 15)
        except FutureTimeout:
            raise InvalidParameter(f"command still running after {timeout}s; run long jobs in the background") from None

    def _ssh_run(self, ip: str, user: str, command: list[str], timeout: int) -> ExecResult:
        import paramiko

        key = paramiko.Ed25519Key.from_private_key_file(str(self._mgmt_key_path()))
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(ip, 22, username=user, pkey=key, timeout=10, banner_timeout=20, auth_timeout=20,
                           allow_agent=False, look_for_keys=False)
            chan = client.get_transport().open_session(timeout=10)
            chan.settimeout(timeout)
            chan.exec_command(shlex.join(command))
            out, err = bytearray(), bytearray()
            deadline = time.monotonic() + timeout
            while True:
                if chan.recv_ready():
                    out += chan.recv(65536)
                if chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                if time.monotonic() > deadline:
                    raise InvalidParameter(f"command still running after {timeout}s; run long jobs in the background")
                time.sleep(0.02)
            return ExecResult(chan.recv_exit_status(), bytes(out[:MAX_OUTPUT]).decode(errors="replace"),
                              bytes(err[:MAX_OUTPUT]).decode(errors="replace"))
        except (paramiko.SSHException, OSError) as e:
            raise EngineError(f"exec over SSH to {ip} failed: {e}") from None
        finally:
            client.close()

    def list_managed(self, cloud_label: str) -> dict[str, str]:
        out = {}
        with _engine_errors("list domains"):
            doms = self.conn.listAllDomains(0)
        for dom in doms:
            try:
                meta = self._meta(dom)
            except CloudError:
                continue
            if meta.get("cloud") == cloud_label and meta.get("instance-id"):
                out[meta["instance-id"]] = dom.name()
        return out

    def set_forwards(self, engine_id: str, ports: tuple[PortForward, ...]) -> EngineInstance:
        """Make the instance's forwards exactly `ports` (plus the automatic SSH forward
        unless 22 is among them); host ports of None are picked here. Persisted in the
        domain's metadata, applied at once whether the VM runs or not."""
        dom = self._dom(engine_id)
        meta = self._meta(dom)
        wanted = {p.guest: p for p in ports}
        auto = set()
        for p in meta.get("ports", []):
            if p.guest in meta.get("auto_ports", set()) and p.guest not in wanted:
                wanted[p.guest] = p
                auto.add(p.guest)
        current = {p.guest: p for p in meta.get("ports", [])}
        for guest, p in current.items():
            if guest not in wanted or (wanted[guest].host not in (None, p.host)):
                self.forwarder.close(f"{engine_id}:{guest}")
        bound = []
        for guest, p in sorted(wanted.items()):
            host = self.forwarder.open(f"{engine_id}:{guest}", p.host, self._resolver(engine_id, meta.get("ip"), guest))
            bound.append(PortForward(guest, host, p.protocol))
        with _engine_errors(f"set forwards {engine_id}"):
            raw = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS, 0)
            root = ET.fromstring(raw)
            for el in list(root):
                if el.tag.split("}")[-1] == "ports":
                    root.remove(el)
            self._ports_xml(root, bound, auto)
            for el in root.iter():  # libvirt adds the namespace itself and refuses a declared one
                el.tag = el.tag.split("}")[-1]
            flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG | (libvirt.VIR_DOMAIN_AFFECT_LIVE if dom.isActive() else 0)
            dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, ET.tostring(root, encoding="unicode"),
                            NS_KEY, NS, flags)
        return self._describe(dom)

    def restore_forwards(self) -> None:
        """Re-open the port forwards of every managed domain (call once at server start)."""
        for engine_id in self.list_managed(self.cloud_label).values():
            try:
                self._restore_forwards(self._dom(engine_id))
            except CloudError:
                pass

    # -- readiness -----------------------------------------------------------------
    def wait_ready(self, engine_id: str, timeout: float) -> EngineInstance:
        """Block until the guest is ready; TimeoutError after `timeout` seconds, InvalidState
        if the domain stops meanwhile."""
        dom = self._dom(engine_id)
        deadline = time.monotonic() + timeout
        while True:
            with _engine_errors(f"instance {engine_id}"):
                active = dom.isActive()
            if not active:
                raise InvalidState(f"{engine_id} stopped while booting; see its console")
            if self._is_ready(dom, engine_id, deep=True):
                return self._describe(dom)
            if time.monotonic() > deadline:
                raise TimeoutError(engine_id)
            time.sleep(0.25)

    def _is_ready(self, dom, engine_id: str, deep: bool = False) -> bool:
        try:
            dom_id = dom.ID()
        except libvirt.libvirtError:
            return False
        cached = self._ready.get(engine_id)
        if cached and cached[0] == dom_id and cached[1]:
            return True
        meta = self._meta(dom)
        marker = meta.get("ready-marker") or ""
        ready = True
        if marker:
            inst_dir = self._inst_dir(engine_id)
            try:
                offset = int((inst_dir / "boot.offset").read_text())
            except (OSError, ValueError):
                offset = 0
            text = self._read(inst_dir / "console.log", offset)
            ready = marker in text
        if ready and meta.get("ssh") == "yes" and (deep or not marker):
            ready = self._ssh_banner(meta.get("ip"))
        if ready:
            self._ready[engine_id] = (dom_id, True)
        return ready

    @staticmethod
    def _ssh_banner(ip: str | None, timeout: float = 2.0) -> bool:
        if not ip:
            return False
        try:
            with socket.create_connection((ip, 22), timeout=timeout) as s:
                s.settimeout(timeout)
                return s.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    @staticmethod
    def _read(path: Path | None, offset: int = 0) -> str:
        if path is None:
            return ""
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if offset > size:  # virtlogd rotated the log
                    offset = 0
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    # -- describing ----------------------------------------------------------------
    def _meta(self, dom) -> dict:
        with _engine_errors("metadata"):
            try:
                raw = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS, 0)
            except libvirt.libvirtError as e:
                if _code(e) == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
                    return {}
                raise
        root = ET.fromstring(raw)
        out: dict = {}
        for el in root:
            tag = el.tag.split("}")[-1]
            if tag == "ports":
                out["ports"] = [
                    PortForward(int(p.get("guest")), int(p.get("host")), p.get("protocol", "tcp")) for p in el
                ]
                out["auto_ports"] = {int(p.get("guest")) for p in el if p.get("auto") == "yes"}
            else:
                out[tag] = el.text or ""
        return out

    def _resolver(self, engine_id: str, ip: str, guest: int):
        def resolve():
            try:
                if self.conn.lookupByName(engine_id).isActive():
                    return (ip, guest)
            except (libvirt.libvirtError, CloudError):
                pass
            return None

        return resolve

    def _restore_forwards(self, dom) -> list[str]:
        meta = self._meta(dom)
        errors = []
        for p in meta.get("ports", []):
            try:
                self.forwarder.open(f"{dom.name()}:{p.guest}", p.host, self._resolver(dom.name(), meta.get("ip"), p.guest))
            except CloudError as e:
                errors.append(f"127.0.0.1:{p.host} -> {p.guest}: {e.message}")
        return errors

    def _describe(self, dom, restore_forwards: bool = False) -> EngineInstance:
        engine_id = dom.name()
        with _engine_errors(f"instance {engine_id}"):
            state_code, _reason = dom.state()
            mem_kib, vcpus = dom.info()[2], dom.info()[3]
        meta = self._meta(dom)
        state = _STATES.get(state_code, "pending")
        ready = False
        if state == "running":
            ready = self._is_ready(dom, engine_id)
            if not ready:
                state = "pending"
        forward_errors = self._restore_forwards(dom) if restore_forwards else []
        inst_dir = self._inst_dir(engine_id)
        details = {
            "engine": "libvirt",
            "domain": engine_id,
            "engine_status": {1: "running", 2: "blocked", 3: "paused", 4: "shutting down", 5: "shut off",
                              6: "crashed", 7: "pm-suspended"}.get(state_code, "no state"),
            "hypervisor": meta.get("hypervisor"),
            "hypervisor_reason": meta.get("hypervisor-reason"),
            "guest_kernel": meta.get("guest-kernel"),
            "vcpus": vcpus,
            "memory_mib": mem_kib // 1024,
            "mac": meta.get("mac"),
            "ready": ready,
            "ssh": meta.get("ssh") == "yes",
            "console_log": str(inst_dir / "console.log"),
            "root_disk": str(inst_dir / "root.qcow2"),
            "image": meta.get("image"),
        }
        pid = self._qemu_pid(engine_id) if state_code in (1, 2, 3) else None
        if pid:
            details["qemu_pid"] = pid
        if forward_errors:
            details["forward_errors"] = forward_errors
        return EngineInstance(
            engine_id=engine_id,
            state=state,
            ports=tuple(sorted(meta.get("ports", []), key=lambda p: p.guest)),
            private_ip=meta.get("ip") or None,
            details=details,
        )

    def _qemu_pid(self, engine_id: str) -> int | None:
        for d in ("/run/libvirt/qemu", "/var/run/libvirt/qemu"):
            try:
                return int(Path(d, f"{engine_id}.pid").read_text().strip())
            except (OSError, ValueError):
                continue
        return None

    # -- internals -------------------------------------------------------------------
    def internals(self, engine_id: str) -> dict:
        """What really runs: the hypervisor and why, the domain XML, the QEMU process and
        its vCPU threads, guest vs host kernel, the disk chain and the network path."""
        dom = self._dom(engine_id)
        with _engine_errors(f"internals {engine_id}"):
            xml = dom.XMLDesc(0)
            active = dom.isActive()
        meta = self._meta(dom)
        root = ET.fromstring(xml)
        pid = self._qemu_pid(engine_id) if active else None
        qemu = hostinfo.process(pid) if pid else None
        threads = []
        if pid:
            for task in sorted(Path(f"/proc/{pid}/task").glob("*"), key=lambda p: int(p.name)):
                name = self._read(task / "comm").strip()
                if name.startswith("CPU "):
                    threads.append({"tid": int(task.name), "name": name})
        iface = root.find("./devices/interface")
        tap = iface.find("target").get("dev") if iface is not None and iface.find("target") is not None else None
        bridge = None
        with _engine_errors("network"):
            try:
                bridge = self.conn.networkLookupByName(self.network_name).bridgeName()
            except libvirt.libvirtError:
                pass
        inst_dir = self._inst_dir(engine_id)
        chain = []
        try:
            out = subprocess.run(["qemu-img", "info", "-U", "--backing-chain", "--output", "json",
                                  str(inst_dir / "root.qcow2")], capture_output=True, text=True, timeout=30)
            for layer in json.loads(out.stdout or "[]"):
                chain.append({"file": layer.get("filename"), "format": layer.get("format"),
                              "virtual_size_bytes": layer.get("virtual-size"),
                              "size_on_disk_bytes": layer.get("actual-size"),
                              "backing_file": layer.get("backing-filename")})
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
        guest_kernel = meta.get("guest-kernel") or None
        console = self._read(inst_dir / "console.log")
        m = re.search(r"kernel (\S+)", console[console.rfind("pocketcloud-init: booting"):]) if console else None
        if m:
            guest_kernel = m.group(1).rstrip(",")
        hv = {"mode": root.get("type"), "reason": meta.get("hypervisor-reason"),
              "accelerator": "KVM (hardware virtualization)" if root.get("type") == "kvm" else "TCG (software emulation)"}
        summary = {
            "isolation": f"hardware virtualization boundary: QEMU with {hv['accelerator']}, its own kernel",
            "kernel": guest_kernel,
            "host_pid": pid,
            "host_process": " ".join((qemu or {}).get("cmdline", [])[:3]) + " ..." if qemu else None,
            "host_memory_bytes": (qemu or {}).get("rss_bytes"),
            "image_size_bytes": sum(layer["size_on_disk_bytes"] or 0 for layer in chain) or None,
        }
        return {
            "isolation": summary["isolation"],
            "engine": {"name": "libvirt", "uri": self.uri, "domain": engine_id},
            "hypervisor": hv,
            "domain_xml": xml,
            "qemu": ({"pid": pid, "cmdline": qemu["cmdline"], "threads": qemu["threads"], "vcpu_threads": threads,
                      "rss_bytes": qemu["rss_bytes"]} if qemu else None),
            "kernel": {"guest": guest_kernel, "host": os.uname().release, "shared": False},
            "disk_chain": chain,
            "network": {"tap": tap, "bridge": bridge, "libvirt_network": self.network_name,
                        "subnet": str(self.network), "private_ip": meta.get("ip") or None,
                        "forwards": [{"host": f"127.0.0.1:{p.host}", "guest": f"{meta.get('ip')}:{p.guest}",
                                      "via": "pocketcloud's in-process TCP forwarder"} for p in meta.get("ports", [])]},
            "runtime_chain": [{"name": n, "pids": hostinfo.find_processes(n)} for n in ("libvirtd", "virtlogd")]
                             + ([{"name": "qemu-system-x86_64", "pids": [pid]}] if pid else []),
            "running": bool(pid),
            "summary": summary,
        }
