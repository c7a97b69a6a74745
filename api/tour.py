"""The first-run tour, shared by `pocketcloud tour` and the console's tour page: the same
image launched as a container and as a VM, compared, then cleaned up. Each step is one
sentence of what happens and one of what to look at; the comparison is computed the same
way for both front ends from two callables (run a command inside, read the internals)."""
from __future__ import annotations

from typing import Callable

from .text import fmt_size

NAMES = {"container": "tour-container", "vm": "tour-vm"}

STEPS = [
    {"key": "check", "title": "Your cloud",
     "say": "pocketcloud runs containers on Docker and virtual machines on libvirt/QEMU, on this one machine.",
     "look": "the hypervisor line: KVM runs guest code on the CPU directly, TCG emulates it in software."},
    {"key": "container", "title": "A container from the tiny image",
     "say": "A container is a group of processes on this machine's own kernel, fenced in by namespaces "
            "and cgroups, so it starts in about a second.",
     "look": "how fast it reaches running: there is no kernel to boot."},
    {"key": "vm", "title": "A VM from the same image",
     "say": "The same root filesystem now boots as a virtual machine: QEMU emulates a whole computer and "
            "the image's own Linux kernel starts inside it.",
     "look": "how many seconds it takes, and where they go: QEMU starts, the guest kernel boots, the "
             "network comes up, SSH answers."},
    {"key": "compare", "title": "Side by side",
     "say": "The same commands ran inside both, next to what this machine sees of each.",
     "look": "the kernel row (the container reports this machine's kernel, the VM its own) and the host "
             "process row (a container's PID 1 is a process here; a VM is one QEMU process)."},
    {"key": "cleanup", "title": "Clean up",
     "say": "Terminating removes the container and the VM with their disks; their records stay listed "
            "for an hour, as on EC2.",
     "look": "the state going to terminated; `pocketcloud instances ls` still shows them for a while."},
]

NEXT = [
    "pocketcloud tour --keep, then pocketcloud explain tour-vm     what runs behind the VM, layer by layer",
    "pocketcloud lab isolation            the same comparison, measured further, as a report with a chart",
    "pocketcloud instances run tiny --name web --port 80 --wait      then: pocketcloud instances exec web uname -r",
    "docs/getting-started.md              the guide this tour follows",
]

PROBES = [
    ("kernel (uname -r inside)", "uname -r"),
    ("operating system", ". /etc/os-release; echo \"$PRETTY_NAME\""),
    ("PID 1 as seen inside", "tr '\\0' ' ' < /proc/1/cmdline"),
    ("processes visible inside", "ls -d /proc/[0-9]* | wc -l"),
]


def step(key: str) -> dict:
    return next(s for s in STEPS if s["key"] == key)


def comparison(run: Callable[[str, str], str], internals: Callable[[str], dict], container: dict, vm: dict,
               host_kernel: str) -> list[tuple[str, str, str]]:
    """Rows (label, container, vm): the probes inside each, then what the host sees."""
    rows = [(label, run(container["id"], cmd).strip() or "-", run(vm["id"], cmd).strip() or "-")
            for label, cmd in PROBES]
    facts = {}
    for kind, inst in (("container", container), ("vm", vm)):
        summary = (internals(inst["id"]) or {}).get("summary") or {}
        facts[kind] = summary
    host = [
        ("this machine's kernel", host_kernel, host_kernel),
        ("isolation boundary", facts["container"].get("isolation") or "-", facts["vm"].get("isolation") or "-"),
        ("the host process behind it", _short(facts["container"].get("host_process")),
         _short(facts["vm"].get("host_process"))),
        ("memory it uses on the host", fmt_size(facts["container"].get("host_memory_bytes")) or "-",
         fmt_size(facts["vm"].get("host_memory_bytes")) or "-"),
        ("created to running", _launch_time(container), _launch_time(vm)),
    ]
    return rows + host


def _short(text) -> str:
    text = str(text or "-")
    return text if len(text) <= 48 else text[:45] + "..."


def _launch_time(inst: dict) -> str:
    from datetime import datetime

    try:
        a = datetime.fromisoformat(inst["created_at"].replace("Z", "+00:00"))
        b = datetime.fromisoformat(inst["launched_at"].replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError, AttributeError):
        return "-"
    return f"{(b - a).total_seconds():.0f} s"
