"""Teaching labs that run against the public API, like any student script would:
`lab isolation` (one VM and one container from the same rootfs, side by side),
`lab density` (host memory as N instances of each kind start), and `compare`."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from .client import ApiError, Client

Progress = Callable[[str], None]
READY_MARKER = "pocketcloud-init: ready"

PROBES = {
    "kernel": "uname -r",
    "os": ". /etc/os-release; echo \"$PRETTY_NAME\"",
    "pid1_inside": "tr '\\0' ' ' < /proc/1/cmdline",
    "visible_processes": "ls -d /proc/[0-9]* | wc -l",
    "cpu_loop": "a=$(cut -d' ' -f1 /proc/uptime); i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; "
                "b=$(cut -d' ' -f1 /proc/uptime); echo $a $b",
}


def wait_ready(client: Client, iid: str, kind: str, timeout: float = 300, progress: Progress = print) -> float:
    """Seconds until the instance's init says it is ready and a command runs in it."""
    start = time.monotonic()
    last = ""
    while time.monotonic() - start < timeout:
        inst = client.call("GET", f"/instances/{iid}")
        if inst["state"] in ("terminated", "stopped"):
            raise ApiError(0, "NotReady", f"{iid} is {inst['state']}: {inst.get('state_reason')}")
        console = client.call("GET", f"/instances/{iid}/console")
        if READY_MARKER in console:
            try:
                if client.call("POST", f"/instances/{iid}/exec", json={"command": "true", "timeout": 20})["exit_code"] == 0:
                    return time.monotonic() - start
            except ApiError as e:
                last = e.message
        elapsed = time.monotonic() - start
        if int(elapsed) % 10 == 0:
            progress(f"  {kind} {iid}: booting ({elapsed:.0f}s)")
        time.sleep(0.5)
    raise ApiError(0, "Timeout", f"{iid} was not ready within {timeout:.0f}s ({last})")


def _exec(client: Client, iid: str, command: str, timeout: int = 120) -> dict:
    return client.call("POST", f"/instances/{iid}/exec", json={"command": command, "timeout": timeout})


def measure(client: Client, iid: str) -> dict:
    """Probes inside the instance plus what the host sees of it."""
    inst = client.call("GET", f"/instances/{iid}")
    out: dict = {"id": iid, "kind": inst["kind"], "type": inst["type"], "memory_limit_mib": inst["memory_mib"]}
    for name, cmd in PROBES.items():
        res = _exec(client, iid, cmd)
        out[name] = res["stdout"].strip()
    a, _, b = out.pop("cpu_loop").partition(" ")
    try:
        out["cpu_loop_s"] = round(float(b) - float(a), 2)
    except ValueError:
        out["cpu_loop_s"] = None
    over = inst["memory_mib"] + 128
    res = _exec(client, iid, f"dd if=/dev/zero of=/dev/null bs={over}M count=1 2>&1; echo exit=$?")
    code = res["stdout"].strip().rsplit("exit=", 1)[-1]
    out["memory_test"] = (f"{over} MiB at once (limit {inst['memory_mib']} MiB): "
                          + {"0": "succeeded (limit not enforced!)", "137": "killed by the OOM killer",
                             "1": "refused (out of memory)"}.get(code, f"failed (exit {code})"))
    internals = client.call("GET", f"/instances/{iid}/internals")
    summary = internals.get("summary", {})
    out.update(isolation=summary.get("isolation"), host_pid=summary.get("host_pid"),
               host_process=summary.get("host_process"), host_memory_bytes=summary.get("host_memory_bytes"),
               image_size_bytes=summary.get("image_size_bytes"))
    return out


ROWS = [
    ("isolation boundary", "isolation"),
    ("kernel (uname -r inside)", "kernel"),
    ("os-release", "os"),
    ("PID 1 as seen inside", "pid1_inside"),
    ("PID 1 as seen from the host", "host_process"),
    ("host PID", "host_pid"),
    ("processes visible inside", "visible_processes"),
    ("memory used on the host", "host_memory_bytes"),
    ("start to ready", "ready_s"),
    ("image size on disk", "image_size_bytes"),
    ("CPU loop (300k iterations)", "cpu_loop_s"),
    ("memory beyond the type's limit", "memory_test"),
]


def _fmt(key: str, value) -> str:
    if value is None or value == "":
        return "-"
    if key.endswith("_bytes"):
        return f"{value / 1048576:.1f} MiB"
    if key.endswith("_s"):
        return f"{value:.2f} s"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def table(left: dict, right: dict) -> list[list[str]]:
    header = ["", f"VM {left['id']}", f"container {right['id']}"]
    return [header] + [[label, _fmt(k, left.get(k)), _fmt(k, right.get(k))] for label, k in ROWS]


def render(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "| " + " | ".join("---" for _ in rows[0]) + " |"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows[1:]]
    return "\n".join(out)


def chart(path: Path, vm: dict, ct: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    labels = ["VM", "container"]
    colors = ["#4063d8", "#389826"]
    axes[0].bar(labels, [vm.get("ready_s") or 0, ct.get("ready_s") or 0], color=colors)
    axes[0].set_title("start to ready (s)")
    axes[1].bar(labels, [(vm.get("host_memory_bytes") or 0) / 1048576, (ct.get("host_memory_bytes") or 0) / 1048576],
                color=colors)
    axes[1].set_title("memory used on the host (MiB)")
    fig.suptitle("pocketcloud: the same rootfs as a VM and as a container")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def isolation(client: Client, out_dir: Path, itype: str = "t2.nano", image: str = "tiny",
              progress: Progress = print) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    made: list[str] = []
    results: dict[str, dict] = {}
    try:
        for kind in ("vm", "container"):
            progress(f"launching {image} as a {kind} ({itype})")
            t0 = time.monotonic()
            inst = client.call("POST", "/instances", json={"image": image, "kind": kind, "type": itype,
                                                           "name": f"lab-{kind}", "tags": {"pocketcloud:lab": "isolation"}})
            made.append(inst["id"])
            wait_ready(client, inst["id"], kind, progress=progress)
            ready = time.monotonic() - t0
            progress(f"  {kind} {inst['id']} ready in {ready:.1f}s; probing")
            results[kind] = {**measure(client, inst["id"]), "ready_s": ready}
    finally:
        for iid in made:
            try:
                client.call("DELETE", f"/instances/{iid}")
            except ApiError as e:
                progress(f"warning: could not terminate {iid}: {e.message}")
    rows = table(results["vm"], results["container"])
    chart(out_dir / "isolation.png", results["vm"], results["container"])
    (out_dir / "isolation.json").write_text(json.dumps(results, indent=2))
    (out_dir / "isolation.md").write_text(
        "# pocketcloud lab: hypervisor vs container isolation\n\n"
        f"The `{image}` rootfs launched once as a VM and once as a container, type `{itype}`, "
        "probed with the same commands inside both.\n\n" + markdown(rows) + "\n\n![chart](isolation.png)\n")
    return {"results": results, "table": rows, "report": str(out_dir / "isolation.md"),
            "chart": str(out_dir / "isolation.png")}


def density(client: Client, out_dir: Path, count: int, itype: str = "t2.nano", image: str = "tiny",
            kinds: tuple[str, ...] = ("container", "vm"), progress: Progress = print) -> dict:
    """Start up to `count` instances of each kind, one at a time, reading the host's memory after each."""
    out_dir.mkdir(parents=True, exist_ok=True)
    series: dict[str, list[tuple[int, float]]] = {}
    for kind in kinds:
        made: list[str] = []
        base = client.call("GET", "/info")["host"]["memory"]["used_bytes"]
        series[kind] = [(0, 0.0)]
        try:
            for n in range(1, count + 1):
                inst = client.call("POST", "/instances", json={"image": image, "kind": kind, "type": itype,
                                                               "tags": {"pocketcloud:lab": "density"}})
                made.append(inst["id"])
                wait_ready(client, inst["id"], kind, progress=progress)
                used = client.call("GET", "/info")["host"]["memory"]["used_bytes"]
                series[kind].append((n, (used - base) / 1048576))
                progress(f"  {n} {kind}(s): +{(used - base) / 1048576:.0f} MiB on the host")
        finally:
            for iid in made:
                client.call("DELETE", f"/instances/{iid}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for kind, pts in series.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=kind)
    ax.set_xlabel(f"instances running ({itype})")
    ax.set_ylabel("host memory used (MiB, above the start)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "density.png", dpi=110)
    plt.close(fig)
    (out_dir / "density.json").write_text(json.dumps(series, indent=2))
    return {"series": series, "chart": str(out_dir / "density.png")}
