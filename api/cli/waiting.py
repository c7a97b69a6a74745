"""Waiting with something to look at: a launch or stop that takes seconds shows its elapsed
time, and `--wait` shows the instance's state changes and, when the server reports them,
its boot phases (defined, QEMU started, kernel, network, SSH ready) as they happen."""
from __future__ import annotations

import queue
import threading
import time
from typing import Callable, TypeVar

import click

from .client import ApiError, Client
from .progress import Ticker, clock

T = TypeVar("T")

# The server's boot phases (GET /instances/ID -> boot.phases), said for people.
PHASES = {
    "defined": "defined (libvirt has the domain)",
    "qemu-started": "QEMU started (the virtual machine is powered on)",
    "kernel": "kernel booting (the guest's own Linux)",
    "network": "network up (the guest has its address)",
    "ssh-ready": "SSH ready (you can log in)",
}


def phase_text(phase: dict) -> str:
    name = phase.get("name", "?")
    text = PHASES.get(name, name)
    at = phase.get("elapsed")
    return f"{text}, {clock(float(at))} after launch" if isinstance(at, (int, float)) else text


def run_with_progress(ctx: click.Context, label: str, status: str, work: Callable[[Callable[[str], None]], T],
                      show: Callable[[Ticker, str], None] | None = None) -> T:
    """WORK(say) in a worker thread while this one shows a ticker: each `say(text)` becomes a
    line (SHOW(ticker, text) decides how; by default an event that is also the status), and
    a quiet stretch still shows the status with its elapsed time. Work that is done within
    half a second shows nothing at all."""
    said: queue.Queue = queue.Queue()
    result: dict = {}

    def run() -> None:
        try:
            result["value"] = work(said.put)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = e
        finally:
            said.put(None)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(0.5)
    ticker = Ticker(ctx, label)
    if worker.is_alive():
        ticker.__enter__()
        if not ticker.tty:  # a log says at once what it waits for (a terminal has the spinner)
            ticker.event(f"… {label}: {status}")
    try:
        ticker.status(status)
        while True:
            try:
                text = said.get(timeout=0.2)
            except queue.Empty:
                ticker.tick()
                continue
            if text is None:
                break
            if show is not None:
                show(ticker, text)
            else:
                ticker.event(text)
                ticker.status(text)
    finally:
        ticker.__exit__(None, None, None)
    if "error" in result:
        raise result["error"]
    return result["value"]


def call_with_progress(ctx: click.Context, c: Client, label: str, status: str, method: str, path: str,
                       **kwargs):
    """One REST call; if it takes longer than half a second, a ticker shows that it runs."""
    return run_with_progress(ctx, label, status, lambda say: c.call(method, path, **kwargs))


def wait_for_state(ctx: click.Context, c: Client, inst: dict, want: str, timeout: float) -> dict:
    """Poll until the instance is `want`, showing each state change and boot phase once."""
    iid = inst["id"]
    last_state, shown = None, set()
    with Ticker(ctx, iid) as ticker:
        while True:
            state = inst["state"]
            boot = inst.get("boot") or {}
            # Phases first: they happened before the state this answer reports (a VM is
            # running once SSH is ready, not before).
            for phase in boot.get("phases") or []:
                if phase.get("name") not in shown:
                    shown.add(phase.get("name"))
                    ticker.event(f"{iid}: {phase_text(phase)}")
            if state != last_state:
                ticker.event(f"{iid}: {state}", style="bold")
                last_state = state
            if state == want:
                return inst
            if state in ("terminated", "stopped") and want == "running":
                raise ApiError(409, "IncorrectInstanceState",
                               f"instance {iid} became {state} while waiting for {want}: "
                               f"{inst.get('state_reason') or 'see `pocketcloud instances console ' + iid + '`'}")
            if ticker.elapsed > timeout:
                raise ApiError(408, "WaitTimeout", f"instance {iid} is still {state} after {timeout:.0f}s; "
                                                   f"`pocketcloud instances console {iid}` shows its boot log")
            now = boot.get("phase")
            ticker.status(state + (f" ({PHASES.get(now, now).split(' (')[0]})" if now else "") + f", waiting for {want}")
            pause = time.monotonic() + (0.5 if ticker.elapsed < 10 else 1.0)
            while time.monotonic() < pause:
                time.sleep(0.1)
                ticker.tick()
            inst = c.call("GET", f"/instances/{iid}")
