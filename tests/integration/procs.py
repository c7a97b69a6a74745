"""What runs on the host, as tests see it through /proc and ps."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path


def assert_no_secret_on_command_lines(secrets: dict[str, str]) -> None:
    assert secrets and all(len(s) >= 20 for s in secrets.values())
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            for what, secret in secrets.items():
                assert secret not in cmdline, f"{what} is on the command line of pid {entry.name}"
    ps = subprocess.run(["ps", "-eww", "-o", "pid,args"], capture_output=True, text=True, check=True).stdout
    for what, secret in secrets.items():
        assert secret not in ps, f"{what} shows in ps"
