"""KVM or TCG: the hypervisor choice, proven rather than assumed.

/dev/kvm can exist and still hang every real guest (a broken nested KVM), so in auto mode
KVM is chosen only when a probe guest reached userspace under it within PROBE_BOUND
seconds. The answer is cached in BASE/hypervisor.json, keyed by the host kernel, the KVM
device and the probe image, so a server start does not probe again.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import re
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from ...errors import BackendUnavailable, CloudError
from . import domain
from .conn import Connection, engine_errors, error_code, libvirt
from .guest import read_text
from .image import load_vm_image
from .qemu_area import QemuArea

log = logging.getLogger(__name__)

PROBE_BOUND = 20.0  # seconds a probe guest gets under KVM to reach userspace
PROBE_MARKER = "pocketcloud-probe: ok"
ACCELERATORS = {"kvm": "KVM (hardware virtualization)", "qemu": "TCG (software emulation)"}


def host_warnings() -> list[str]:
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


def _result(requested: str, mode: str, reason: str) -> dict:
    return {"requested": requested, "mode": mode, "domain_type": mode, "accelerator": ACCELERATORS[mode],
            "reason": reason}


class HypervisorProbe:
    def __init__(self, conn: Connection, requested: str, base_dir: Path, probe_image: Path | None,
                 opts: domain.DomainOptions, area: QemuArea):
        self.conn = conn
        self.requested = requested
        self.base_dir = base_dir
        self.area = area
        self.probe_image = probe_image
        self.opts = opts

    def choose(self) -> dict:
        """{'requested', 'mode' ('kvm'|'qemu'), 'domain_type', 'accelerator', 'reason'}."""
        if self.requested == "qemu":
            return _result(self.requested, "qemu", "configured: hypervisor=qemu (TCG)")
        kvm_dev = Path("/dev/kvm")
        has_kvm_type = self._libvirt_offers_kvm()
        if self.requested == "kvm":
            if not kvm_dev.exists() or not has_kvm_type:
                raise BackendUnavailable(
                    "hypervisor=kvm was configured but KVM is not usable here "
                    f"({'no /dev/kvm' if not kvm_dev.exists() else 'libvirt offers no kvm domain type'})",
                    hint="use hypervisor=auto or qemu",
                )
            return _result(self.requested, "kvm", "configured: hypervisor=kvm")
        if not kvm_dev.exists():
            return _result(self.requested, "qemu", "auto: /dev/kvm does not exist, using TCG")
        if not has_kvm_type:
            return _result(self.requested, "qemu", "auto: libvirt offers no kvm domain type, using TCG")
        if self.probe_image is None or not (self.probe_image / "vm.json").exists():
            return _result(self.requested, "qemu",
                           "auto: /dev/kvm exists but no probe image (build 'tiny') to prove KVM works; using TCG")
        st = kvm_dev.stat()
        key = f"{os.uname().release}|{st.st_rdev}|{self.probe_image}|{(self.probe_image / 'vmlinuz').stat().st_size}"
        cache = self.base_dir / "hypervisor.json"
        try:
            cached = json.loads(cache.read_text())
            if cached.get("key") == key:
                return _result(self.requested, cached["mode"], cached["reason"] + " (cached probe)")
        except (OSError, ValueError, KeyError):
            pass
        self.reap_stale()
        ok, seconds, detail = self.probe()
        if ok:
            mode, reason = "kvm", f"auto: a KVM probe guest reached userspace in {seconds:.1f}s"
        else:
            mode, reason = "qemu", f"auto: /dev/kvm exists but a KVM probe guest {detail}; using TCG"
        self.base_dir.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"key": key, "mode": mode, "reason": reason, "probed_at": time.time()}))
        return _result(self.requested, mode, reason)

    def _libvirt_offers_kvm(self) -> bool:
        try:
            with engine_errors("capabilities"):
                caps = ET.fromstring(self.conn.get().getCapabilities())
        except CloudError:
            return False
        return any(d.get("type") == "kvm" for d in caps.iter("domain"))

    def probe(self) -> tuple[bool, float, str]:
        """Boot the probe image's kernel+initrd under KVM with `pocketcloud.probe`: its
        initrd prints PROBE_MARKER and powers off as soon as it reaches userspace."""
        try:
            vm = self.area.stage_image(load_vm_image(str(self.probe_image)))
            parent = self.area.ensure("probe")
        except OSError as e:
            return False, 0.0, f"could not be prepared ({e})"
        probe_dir = Path(tempfile.mkdtemp(prefix="probe-", dir=parent))
        log_path = probe_dir / "console.log"
        name = f"pc-probe-{os.getpid()}-{int(time.time())}"
        root = domain.base_domain(name, "kvm", 1, 256, vm, "console=ttyS0 pocketcloud.probe panic=-1", log_path,
                                  self.opts)
        dom = None
        started = time.monotonic()
        try:
            with engine_errors("kvm probe"):
                dom = self.conn.get().createXML(ET.tostring(root, encoding="unicode"), 0)
            # A server stopped mid-probe must not leave the probe guest running.
            atexit.register(destroy_probe, dom)
            while time.monotonic() - started < PROBE_BOUND:
                if PROBE_MARKER in read_text(log_path):
                    return True, time.monotonic() - started, "ok"
                time.sleep(0.2)
            tail = read_text(log_path)[-300:].strip().replace("\n", " | ")
            return False, PROBE_BOUND, f"did not reach userspace within {PROBE_BOUND:.0f}s (console: {tail or 'empty'})"
        except CloudError as e:
            return False, time.monotonic() - started, f"failed to start ({e.message})"
        finally:
            if dom is not None:
                atexit.unregister(destroy_probe)
                destroy_probe(dom)
            shutil.rmtree(probe_dir, ignore_errors=True)
            self.area.tidy()  # a cloud with no VM yet keeps no area

    def reap_stale(self) -> None:
        """Destroy probe guests whose creating process is gone (a crash mid-probe)."""
        try:
            doms = self.conn.get().listAllDomains(0)
        except (libvirt.libvirtError, CloudError):
            return
        for dom in doms:
            m = re.fullmatch(r"pc-probe-(\d+)-\d+", dom.name())
            if m and not Path(f"/proc/{m.group(1)}").exists():
                destroy_probe(dom)


def destroy_probe(dom) -> None:
    """A guest hung in a broken nested KVM can refuse the first destroy (its state lock is
    busy); a probe left running would burn a CPU forever, so try again."""
    for attempt in range(10):
        try:
            dom.destroy()
            return
        except libvirt.libvirtError as e:
            if error_code(e) == libvirt.VIR_ERR_NO_DOMAIN:
                return
            log.warning("destroying the KVM probe guest failed (attempt %d): %s", attempt + 1, e)
            time.sleep(1 + attempt)
