"""Formatting for people, shared by the CLI and the console (no Flask here: the CLI imports it)."""
from __future__ import annotations

import re


def fmt_size(n) -> str:
    """Bytes for people: 1.5 MiB."""
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


ACCELERATORS = {"kvm": "KVM (hardware virtualization)", "qemu": "TCG (software emulation)"}
# What the server's reasons mean, said for a student; the raw reason stays for --verbose.
WHY = [
    (r"^configured: ", "configured (POCKETCLOUD_HYPERVISOR={requested})"),
    (r"/dev/kvm does not exist", "this machine has no /dev/kvm (no hardware virtualization here)"),
    (r"libvirt offers no kvm", "libvirt offers no KVM domain type on this machine"),
    (r"no probe image", "KVM is not proven yet: `pocketcloud images build tiny`, then restart the server"),
    (r"probe guest reached userspace in ([0-9.]+)s", "a test VM booted under KVM in {0}s"),
    (r"/dev/kvm exists but a KVM probe guest",
     "/dev/kvm exists, but a test VM could not boot under KVM here, so VMs run slower, in software"),
]


def hypervisor_summary(hv: dict, vm_up: bool = True) -> tuple[str, str | None]:
    """(one readable line: the accelerator in use and why, the raw diagnostic or None)."""
    mode = hv.get("mode") or hv.get("in_use")
    reason = hv.get("reason") or ""
    if not mode:
        return f"- (no VM engine: {reason or 'libvirt is not available'})", None
    accel = hv.get("accelerator") or ACCELERATORS.get(mode, mode)
    why = None
    for pattern, text in WHY:
        m = re.search(pattern, reason)
        if m:
            why = text.format(*m.groups(), requested=hv.get("requested") or mode)
            break
    if why is None:  # an unknown reason: its first clause, without the diagnostic in brackets
        why = re.sub(r"\s*\(.*$", "", reason.removeprefix("auto: ")) or "no reason given"
    if "cached" in reason:
        why += " (probed once)"
    raw = reason if reason and ("(" in reason or why != reason) else None
    return f"{accel}: {why}" + ("" if vm_up else " [VM engine down]"), raw
