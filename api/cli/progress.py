"""Progress for long work, on stderr: rich spinners and bars on a terminal, plain stamped
lines when piped (at least one every 2 seconds while something runs), nothing in JSON mode
(scripts read stdout; stderr stays free of redraws)."""
from __future__ import annotations

import sys
import time

import click

from .context import json_mode
from .output import console

HEARTBEAT = 1.6  # seconds without a line before a piped ticker says it is still working (ticks are 0.2 s apart: gaps stay under 2 s on a busy host)


def clock(seconds: float) -> str:
    """12.3s, 1m05s: elapsed time as people read it."""
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


class Ticker:
    """Live status of one wait. `event` prints a line that stays (a step, a state change);
    `status` sets what is going on now; `tick` is called often by the waiting loop.

    On a terminal the status is a spinner line with the elapsed time, redrawn continuously;
    piped, every event is a `[  1.2s] text` line and a quiet stretch of HEARTBEAT seconds
    prints the status again, so a log never looks hung."""

    def __init__(self, ctx: click.Context, label: str = "", heartbeat: float = HEARTBEAT):
        self.quiet = json_mode(ctx)
        self.tty = sys.stderr.isatty() and not self.quiet
        # Stamps count from the command's start, so a launch and the wait after it share one
        # clock; quiet time counts from the command's last line, whichever ticker printed it.
        self.shared = ctx.find_root().obj if ctx.find_root().obj is not None else {}
        self.started = self.shared.setdefault("started", time.monotonic())
        self.label, self.text, self.heartbeat = label, "", heartbeat
        self.con = console(stderr=True) if self.tty else None
        self.spinner = None

    def __enter__(self) -> "Ticker":
        if self.tty:
            self.spinner = self.con.status(self._line())
            self.spinner.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.spinner is not None:
            self.spinner.stop()
            self.spinner = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _line(self) -> str:
        from rich.markup import escape

        head = f"{escape(self.label)}: " if self.label else ""
        return f"{head}{escape(self.text)} [dim]({clock(self.elapsed)})[/]"

    def event(self, text: str, style: str = "") -> None:
        if self.quiet:
            return
        if self.tty:
            from rich.markup import escape

            stamp = f"[dim]{clock(self.elapsed):>7}[/] "
            self.con.print(stamp + (f"[{style}]{escape(text)}[/]" if style else escape(text)))
        else:
            click.echo(f"[{self.elapsed:6.1f}s] {text}", err=True)
        self.shared["last_line"] = time.monotonic()

    def status(self, text: str) -> None:
        self.text = text
        self.tick()

    def tick(self) -> None:
        if self.quiet:
            return
        if self.spinner is not None:
            self.spinner.update(self._line())
        elif time.monotonic() - self.shared.get("last_line", self.started) >= self.heartbeat:
            self.event(f"… {self.label}: {self.text}" if self.label else f"… {self.text}")


class TransferProgress:
    """Bytes moved: a bar on a terminal; piped, a line with the bytes so far at least every
    HEARTBEAT seconds while data flows (a big upload in a log is not one long silence)."""

    def __init__(self, ctx: click.Context, label: str, total: int | None):
        from ..text import fmt_size

        self.bar, self.label, self.total, self.done, self.fmt = None, label, total, 0, fmt_size
        self.plain = not sys.stderr.isatty() and not json_mode(ctx)
        self.started = self.last = time.monotonic()
        if sys.stderr.isatty() and not json_mode(ctx):
            from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

            self.bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                                TransferSpeedColumn(), console=console(stderr=True), transient=True)
            self.task = self.bar.add_task(label, total=total)
            self.bar.start()

    def advance(self, n: int) -> None:
        self.done += n
        if self.bar:
            self.bar.update(self.task, advance=n)
        elif self.plain and time.monotonic() - self.last >= HEARTBEAT:
            self.last = time.monotonic()
            of = f" of {self.fmt(self.total)}" if self.total else ""
            click.echo(f"[{self.last - self.started:6.1f}s] {self.label}: {self.fmt(self.done)}{of}", err=True)

    def close(self) -> None:
        if self.bar:
            self.bar.stop()


class UploadBody:
    """A file for requests: known length (so Content-Length is sent), progress as it is read."""

    def __init__(self, f, length: int, progress: TransferProgress):
        self.f, self.length, self.progress = f, length, progress

    def __len__(self) -> int:
        return self.length

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n if n and n > 0 else 1 << 20)
        self.progress.advance(len(data))
        return data
