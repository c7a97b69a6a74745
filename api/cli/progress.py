"""Progress for long work: bars on a terminal's stderr, nothing when piped or in JSON mode
(scripts read stdout; stderr stays free of redraws)."""
from __future__ import annotations

import sys

import click

from .context import json_mode
from .output import console


class TransferProgress:
    """A byte-counting bar (uploads, downloads)."""

    def __init__(self, ctx: click.Context, label: str, total: int | None):
        self.bar = None
        if sys.stderr.isatty() and not json_mode(ctx):
            from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

            self.bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                                TransferSpeedColumn(), console=console(stderr=True), transient=True)
            self.task = self.bar.add_task(label, total=total)
            self.bar.start()

    def advance(self, n: int) -> None:
        if self.bar:
            self.bar.update(self.task, advance=n)

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
