"""LibvirtDriver: the Driver protocol over libvirtd, built from this package's parts.

Per instance (engine id = domain name `pc-<instance-id>`), under AREA/instances/<iid>/ (AREA
is the cloud's directory QEMU can reach, see qemu_area.py):
  root.qcow2   copy-on-write overlay on the image's read-only base (disk.qcow2)
  seed.iso     NoCloud seed (volume label cidata: meta-data, user-data)
  console.log  the serial console, appended across boots (written by virtlogd)
  boot.offset  size of console.log when the current boot began (readiness is looked for
               after it)
The domain's <metadata> carries the cloud label, owner, ports and private IP, so
`list_managed` and a restarted server find everything again without our database.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from pathlib import Path

from ...errors import AlreadyExists, CloudError, EngineError, InvalidParameter, InvalidState, NotFound
from .. import cloudinit
from ..driver import Driver, EngineInstance, ExecResult, LaunchSpec, PortForward, Usage
from ..execio import MAX_EXEC_OUTPUT
from ..forwarder import Forwarder
from . import domain, guest, internals
from .disks import VolumeDisks
from .conn import Connection, engine_errors, error_code, libvirt
from .image import boot_timeout, check_launch, load_vm_image
from .network import VmNetwork
from .probe import HypervisorProbe, host_warnings
from .qemu_area import QemuArea


class LibvirtDriver(VolumeDisks, Driver):
    kind = "vm"
    name = "libvirt"

    def __init__(self, uri: str, cloud_label: str, base_dir: str | Path, *, hypervisor: str = "auto",
                 network_name: str = "pocketcloud", network_cidr: str = "10.213.0.0/24",
                 probe_image: str | Path | None = None, forwarder: Forwarder | None = None,
                 boot_timeout: float | None = None, run_as: str | None = None,
                 tcg_tb_cache_mib: int | None = None, free_page_reporting: bool = True,
                 vm_root: str | Path | None = None, qemu_user: str = "libvirt-qemu"):
        """
        uri           libvirt URI (qemu:///system)
        cloud_label   tags every domain, so list_managed finds this cloud's domains only
        base_dir      kept console logs, the management key, probe cache (never QEMU's)
        hypervisor    auto | kvm | qemu
        network_*     the NAT network the driver defines and starts itself
        probe_image   a vm image dir (tiny) whose kernel+initrd serve as the KVM probe
        forwarder     share one with the container driver; one is created otherwise
        boot_timeout  overrides the image's vm.json boot_timeout
        run_as        qemu's DAC label '+UID:+GID'; default: qemu_user's, or this process's own
                      when it cannot hand files to that user (not root)
        vm_root, qemu_user  where each cloud's QEMU area is made, the user QEMU runs as
        tcg_tb_cache_mib  TCG translation cache per VM (QEMU's default is 1 GiB); None: default
        """
        if hypervisor not in ("auto", "kvm", "qemu"):
            raise InvalidParameter("hypervisor must be auto, kvm or qemu")
        self.uri = uri
        self.cloud_label = cloud_label
        self.base_dir = Path(base_dir).resolve()
        self.hypervisor_mode = hypervisor
        self._conn = Connection(uri)
        self.network = VmNetwork(self._conn, network_name, network_cidr)
        self.area = QemuArea.for_cloud(cloud_label, self.base_dir, root=Path(vm_root) if vm_root else None,
                                       user_name=qemu_user)
        default_label = self.area.user.label if self.area.user else f"+{os.getuid()}:+{os.getgid()}"
        self.opts = domain.DomainOptions(run_as or default_label, tcg_tb_cache_mib, free_page_reporting)
        self.forwarder = forwarder or Forwarder()
        self.boot_timeout = boot_timeout
        self._probe = HypervisorProbe(self._conn, hypervisor, self.base_dir,
                                      Path(probe_image).resolve() if probe_image else None, self.opts,
                                      self.area)
        self._hv: dict | None = None
        self._hv_lock = threading.Lock()
        self._ready = guest.Readiness()
        self._mgmt_key = guest.ManagementKey(self.base_dir)
        self._exec_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="vm-exec")  # never the bottleneck: the services cap execs

    @property
    def conn(self):
        return self._conn.get()

    # -- the engine ----------------------------------------------------------------
    def available(self) -> tuple[bool, str]:
        try:
            c = self.conn
            with engine_errors("version"):
                lv, qv = c.getLibVersion(), c.getVersion()
            return True, f"libvirt {lv // 1000000}.{lv // 1000 % 1000}, QEMU {qv // 1000000}.{qv // 1000 % 1000}"
        except CloudError as e:
            self._conn.drop()
            return False, str(e)

    def info(self) -> dict:
        c = self.conn
        with engine_errors("info"):
            lv, qv = c.getLibVersion(), c.getVersion()
            node = c.getInfo()
        return {
            "uri": self.uri,
            "libvirt_version": f"{lv // 1000000}.{lv // 1000 % 1000}.{lv % 1000}",
            "qemu_version": f"{qv // 1000000}.{qv // 1000 % 1000}.{qv % 1000}",
            "host_cpus": node[2],
            "host_memory_mib": node[1],
            "hypervisor": self.hypervisor(),
            "network": {"name": self.network.name, "cidr": str(self.network.subnet),
                        "gateway": str(self.network.gateway)},
            "base_dir": str(self.base_dir),
            "qemu": {**self.area.describe(), "dac_label": self.opts.run_as},
            "warnings": host_warnings(),
        }

    def hypervisor(self) -> dict:
        """{'requested', 'mode' ('kvm'|'qemu'), 'domain_type', 'accelerator', 'reason'},
        chosen once (see probe.py)."""
        with self._hv_lock:
            if self._hv is None:
                self._hv = self._probe.choose()
            return dict(self._hv)

    def remove_network(self) -> None:
        self.network.remove()

    def remove_host_files(self) -> None:  # the cloud's QEMU area, once its domains are gone
        self.area.remove()

    # -- lifecycle -------------------------------------------------------------------
    def _inst_dir(self, engine_id: str) -> Path:
        return self.area.instances / domain.check_engine_id(engine_id)

    def preflight(self, spec: LaunchSpec) -> None:
        vm = load_vm_image(spec.image_ref)
        with engine_errors("host info"):
            node = self.conn.getInfo()
        check_launch(spec, vm, host_mib=node[1], host_cpus=node[2])

    def launch(self, spec: LaunchSpec, wait: bool = True) -> EngineInstance:
        """Define and start the domain. With wait (default) return only once the guest is
        ready (its ready marker on the console, and SSH answering when the image has it);
        a guest that is not ready within its boot timeout is removed, its console log kept
        under BASE/logs/, and EngineError raised. Any failure removes everything created."""
        vm = load_vm_image(spec.image_ref)
        with engine_errors("host info"):
            node = self.conn.getInfo()
        hostname, keys = check_launch(spec, vm, host_mib=node[1], host_cpus=node[2])
        hv = self.hypervisor()
        engine_id = domain.engine_id_for(spec.instance_id)
        inst_dir = self._inst_dir(engine_id)
        on_subnet = spec.network  # VPC networking: the subnet's bridge, address and MAC are pocketcloud's
        mac = on_subnet.mac if on_subnet else domain.mac_for(spec.instance_id)
        created_dir = defined = False
        ip = None
        try:
            with engine_errors(f"launch {spec.instance_id}"):
                if self._conn.lookup(engine_id) is not None:
                    raise AlreadyExists(f"a domain {engine_id} already exists", code="InvalidInstanceID.Duplicate")
                net = None if on_subnet else self.network.ensure()
                try:  # the image's files staged where QEMU reaches them, with the instance's dir
                    vm, _ = self.area.claim(spec.instance_id, vm)
                except FileExistsError:
                    raise AlreadyExists(f"instance directory {inst_dir} already exists") from None
                created_dir = True
                subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(vm["disk"]), "-F", "qcow2",
                                str(inst_dir / "root.qcow2"), *([f"{spec.root_gib}G"] if spec.root_gib else [])],
                               check=True, capture_output=True)
                files = cloudinit.seed_files(spec.instance_id, hostname, spec.user_data,
                                             keys + (self._mgmt_key.public(),))
                guest.write_seed_iso(inst_dir, files)
                ip = on_subnet.ip if on_subnet else self.network.reserve_ip(net, spec.instance_id, mac)
                ports = list(spec.ports)
                auto = set()
                if spec.auto_ssh and vm.get("ssh") and not any(p.guest == 22 for p in ports):
                    ports.append(PortForward(22, None))
                    auto.add(22)
                bound = [PortForward(p.guest, self._open_forward(engine_id, ip, p), p.protocol) for p in ports]
                xml = domain.instance_domain_xml(spec, vm, hv, inst_dir, mac, ip, bound, auto,
                                                 cloud_label=self.cloud_label, network_name=self.network.name,
                                                 opts=self.opts, bridge=on_subnet.bridge if on_subnet else None,
                                                 tap=on_subnet.tap if on_subnet else None)
                dom = self.conn.defineXML(xml)
                defined = True
            spec.step("define", engine_id)
            with engine_errors(f"start {spec.instance_id}"):
                guest.mark_boot(inst_dir)
                dom.create()
            spec.step("start", engine_id)
            if wait:
                self.wait_ready(engine_id, boot_timeout(vm, self.boot_timeout), on_step=spec.step)
            return self._describe(dom)
        except BaseException as e:
            kept = None
            if created_dir:  # never touch what an existing instance of that id owns
                if (inst_dir / "console.log").exists():
                    kept = self._keep_console(engine_id, inst_dir)
                self._remove(engine_id, mac if ip else None, defined)
            if isinstance(e, TimeoutError):
                tail = guest.read_text(kept)[-1500:] if kept else ""
                raise EngineError(
                    f"{spec.instance_id} did not become ready within {boot_timeout(vm, self.boot_timeout):.0f}s "
                    f"under {hv['accelerator']}; the VM was removed, its console log kept at {kept}.\n"
                    f"Last console output:\n{tail}",
                    code="InstanceBootTimeout",
                ) from None
            raise

    def _keep_console(self, engine_id: str, inst_dir: Path) -> Path | None:
        try:
            logs = self.base_dir / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            dest = logs / f"{engine_id}.console.log"
            shutil.copyfile(inst_dir / "console.log", dest)
            return dest
        except OSError:
            return None

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
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                                  | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
            except libvirt.libvirtError:
                pass
        # The MAC (and the reservation's name) follow from the instance id, so the DHCP
        # entry goes even when the domain was undefined behind our back.
        iid = domain.check_engine_id(engine_id)
        self.network.release_ip(mac or domain.mac_for(iid), iid)
        self._ready.forget(engine_id)
        self.area.release(iid)

    def _dom(self, engine_id: str):
        domain.check_engine_id(engine_id)
        with engine_errors(f"instance {engine_id}"):
            return self.conn.lookupByName(engine_id)

    def inspect(self, engine_id: str) -> EngineInstance | None:
        try:
            return self._describe(self._dom(engine_id), restore_forwards=True)
        except NotFound:
            return None

    def start(self, engine_id: str, wait: bool = True) -> EngineInstance:
        dom = self._dom(engine_id)
        with engine_errors(f"start {engine_id}"):
            if dom.isActive():
                raise InvalidState(f"{engine_id} is already running", code="IncorrectInstanceState")
            self.network.ensure()
            self._restore_forwards(dom)
            guest.mark_boot(self._inst_dir(engine_id))
            dom.create()
        if wait:
            timeout = boot_timeout(load_vm_image(self._meta(dom).get("image", "")), self.boot_timeout)
            try:
                self.wait_ready(engine_id, timeout)
            except TimeoutError:
                raise EngineError(f"{engine_id} started but was not ready within {timeout:.0f}s; see its console",
                                  code="InstanceBootTimeout") from None
        return self._describe(dom)

    def stop(self, engine_id: str, timeout: int) -> EngineInstance:
        """ACPI power button, then destroy after `timeout` seconds."""
        dom = self._dom(engine_id)
        with engine_errors(f"stop {engine_id}"):
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
                    except libvirt.libvirtError:
                        if dom.isActive():
                            raise
        self._ready.forget(engine_id)
        return self._describe(dom)

    def reboot(self, engine_id: str, timeout: int) -> EngineInstance:
        """A clean stop (ACPI, destroy after timeout) and a fresh start of the same domain."""
        dom = self._dom(engine_id)
        with engine_errors(f"reboot {engine_id}"):
            if not dom.isActive():
                raise InvalidState(f"{engine_id} is not running; start it instead", code="IncorrectInstanceState")
        self.stop(engine_id, timeout)
        return self.start(engine_id)

    def remove_leftovers(self, instance_id: str) -> None:
        """Domain, overlay, seed, DHCP reservation and forwards all follow from the instance id."""
        self.terminate(domain.engine_id_for(instance_id))

    def terminate(self, engine_id: str) -> None:
        domain.check_engine_id(engine_id)
        with engine_errors(f"terminate {engine_id}"):
            self._remove(engine_id, None, defined=True)

    def wait_ready(self, engine_id: str, timeout: float, on_step=None) -> EngineInstance:
        """Block until the guest is ready; TimeoutError after `timeout` seconds, InvalidState
        if the domain stops meanwhile. ON_STEP(name, engine_id), if given, hears the boot
        phases as they are seen: `kernel` (the guest prints on its console), `network` (its
        DHCP lease), `ssh-ready` (ready: marker printed, SSH answering where there is SSH)."""
        dom = self._dom(engine_id)
        meta = self._meta(dom)
        deadline = time.monotonic() + timeout
        seen: set[str] = set()

        def phase(name: str, reached) -> None:
            if on_step is not None and name not in seen and reached():
                seen.add(name)
                on_step(name, engine_id)

        while True:
            with engine_errors(f"instance {engine_id}"):
                active = dom.isActive()
            if not active:
                raise InvalidState(f"{engine_id} stopped while booting; see its console")
            phase("kernel", lambda: guest.console_since_boot(self._inst_dir(engine_id)).strip() != "")
            phase("network", lambda: self.network.has_lease(meta.get("mac") or ""))
            if self._is_ready(dom, engine_id, meta, deep=True):
                phase("kernel", lambda: True)
                phase("network", lambda: True)
                phase("ssh-ready", lambda: True)
                return self._describe(dom)
            if time.monotonic() > deadline:
                raise TimeoutError(engine_id)
            time.sleep(0.25)

    def _is_ready(self, dom, engine_id: str, meta: dict, deep: bool = False) -> bool:
        try:
            dom_id = dom.ID()
        except libvirt.libvirtError:
            return False
        return self._ready.check(engine_id, dom_id, meta, self._inst_dir(engine_id), deep)

    # -- the guest ---------------------------------------------------------------------
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
        try:
            return guest.tail_lines(log, tail)
        except OSError:  # removed with its instance meanwhile
            return ""

    def exec(self, engine_id: str, command: list[str], timeout: int, max_output: int = MAX_EXEC_OUTPUT) -> ExecResult:
        """Run a command in the guest over SSH, with the driver's management key."""
        dom = self._dom(engine_id)
        meta = self._meta(dom)
        if meta.get("ssh") != "yes":
            raise InvalidState("this VM image has no SSH server, so commands cannot be run in it")
        with engine_errors("exec"):
            if not dom.isActive():
                raise InvalidState("the instance is not running; start it before exec", code="IncorrectInstanceState")
        future = self._exec_pool.submit(guest.ssh_run, meta.get("ip"), meta.get("ssh-user") or "root",
                                        self._mgmt_key.path, command, timeout, max_output)
        try:
            return future.result(timeout=timeout + 60)
        except FutureTimeout:  # ssh_run ends at its own deadline; this is a guest that stopped answering
            raise EngineError(f"the guest did not answer over SSH within {timeout + 60}s") from None

    def internals(self, engine_id: str) -> dict:
        dom = self._dom(engine_id)
        with engine_errors(f"internals {engine_id}"):
            xml = dom.XMLDesc(0)
            active = dom.isActive()
        return internals.describe(engine_id=engine_id, uri=self.uri, xml=xml, active=bool(active),
                                  meta=self._meta(dom), inst_dir=self._inst_dir(engine_id),
                                  bridge=self.network.bridge(), network_name=self.network.name,
                                  subnet=str(self.network.subnet))

    def usage(self, engine_id: str) -> Usage | None:
        """CPU time, resident memory and bytes sent, from libvirt's bulk domain stats (the
        interface counters are the guest's side of its tap)."""
        flags = (libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_BALLOON
                 | libvirt.VIR_DOMAIN_STATS_INTERFACE)
        try:
            dom = self._dom(engine_id)
            with engine_errors(f"stats {engine_id}"):
                if not dom.isActive():
                    return None
                stats = self.conn.domainListGetStats([dom], flags)[0][1]
        except CloudError:
            return None
        rss, nics = stats.get("balloon.rss"), stats.get("net.count", 0)
        return Usage(stats.get("cpu.time"), rss * 1024 if rss is not None else None,
                     sum(stats.get(f"net.{i}.tx.bytes", 0) for i in range(nics)) if nics else None)

    # -- what the engine holds ------------------------------------------------------------
    def list_managed(self, cloud_label: str) -> dict[str, EngineInstance]:
        with engine_errors("list domains"):
            doms = self.conn.listAllDomains(0)
        out = {}
        for dom in doms:
            if not domain.ENGINE_ID.match(dom.name()):
                continue  # not an instance (a KVM probe, another tool's domain)
            try:
                meta = self._meta(dom)
                if meta.get("cloud") == cloud_label and meta.get("instance-id"):
                    out[meta["instance-id"]] = self._describe(dom, meta=meta, brief=True)
            except CloudError:
                continue  # gone meanwhile, or not ours to read
        return out

    def set_forwards(self, engine_id: str, ports: tuple[PortForward, ...]) -> None:
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
        for p in meta.get("ports", []):
            if p.guest not in wanted or wanted[p.guest].host not in (None, p.host):
                self.forwarder.close(f"{engine_id}:{p.guest}")
        bound = [PortForward(guest_port, self._open_forward(engine_id, meta.get("ip"), p), p.protocol)
                 for guest_port, p in sorted(wanted.items())]
        with engine_errors(f"set forwards {engine_id}"):
            raw = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, domain.NS, 0)
            flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG | (libvirt.VIR_DOMAIN_AFFECT_LIVE if dom.isActive() else 0)
            dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, domain.metadata_with_ports(raw, bound, auto),
                            domain.NS_KEY, domain.NS, flags)

    def restore_forwards(self) -> None:
        """Re-open the port forwards of every managed domain (call once at server start)."""
        with engine_errors("list domains"):
            doms = self.conn.listAllDomains(0)
        for dom in doms:
            try:
                if domain.ENGINE_ID.match(dom.name()) and self._meta(dom).get("cloud") == self.cloud_label:
                    self._restore_forwards(dom)
            except CloudError:
                pass

    # -- helpers ---------------------------------------------------------------------------
    def _meta(self, dom) -> dict:
        with engine_errors("metadata"):
            try:
                raw = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, domain.NS, 0)
            except libvirt.libvirtError as e:
                if error_code(e) == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
                    return {}
                raise
        return domain.parse_metadata(raw)

    def _resolver(self, engine_id: str, ip: str | None, guest_port: int):
        def resolve():
            try:
                if self.conn.lookupByName(engine_id).isActive():
                    return (ip, guest_port)
            except (libvirt.libvirtError, CloudError):
                pass
            return None

        return resolve

    def _open_forward(self, engine_id: str, ip: str | None, p: PortForward) -> int:
        return self.forwarder.open(f"{engine_id}:{p.guest}", p.host, self._resolver(engine_id, ip, p.guest))

    def _restore_forwards(self, dom, meta: dict | None = None) -> list[str]:
        meta = meta if meta is not None else self._meta(dom)
        errors = []
        for p in meta.get("ports", []):
            try:
                self._open_forward(dom.name(), meta.get("ip"), p)
            except CloudError as e:
                errors.append(f"127.0.0.1:{p.host} -> {p.guest}: {e.message}")
        return errors

    def _describe(self, dom, *, meta: dict | None = None, restore_forwards: bool = False,
                  brief: bool = False) -> EngineInstance:
        """The instance as the engine has it. `brief` (a listing) skips what needs more than
        the domain's state and metadata: the QEMU pid and the vCPU/memory figures."""
        engine_id = dom.name()
        with engine_errors(f"instance {engine_id}"):
            state_code, _reason = dom.state()
            info = None if brief else dom.info()
        meta = meta if meta is not None else self._meta(dom)
        ready = domain.STATES.get(state_code) == "running" and self._is_ready(dom, engine_id, meta)
        active = state_code in domain.ACTIVE_STATES
        return domain.engine_instance(
            engine_id, state_code, meta, ready=ready, inst_dir=self._inst_dir(engine_id),
            vcpus_memory=(info[3], info[2] // 1024) if info else None,
            qemu_pid=internals.qemu_pid(engine_id) if active and not brief else None,
            forward_errors=self._restore_forwards(dom, meta) if restore_forwards else [])
