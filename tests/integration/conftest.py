"""Helpers for the integration tests; the real-server fixtures live in tests/conftest.py."""
from __future__ import annotations

import subprocess
from pathlib import Path

from emulator.config import Config


def pc_containers(docker_client, server) -> list:
    label = Config(home=Path(server.home)).instance_label
    return docker_client.containers.list(all=True, filters={"label": f"pocketcloud.cloud={label}"})


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)
