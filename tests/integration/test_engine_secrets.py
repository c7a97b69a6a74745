"""The S3 engine's root secret never shows on a command line (issue "Security" 2): any local
user could read it from `ps` and bypass every tenancy check. The Ceph leg is in ceph/."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.procs import assert_no_secret_on_command_lines

pytestmark = pytest.mark.integration


def test_standin_root_secret_is_not_on_any_command_line(server):
    info = server.admin.ok("GET", "/info")["storage"]
    assert info["engine"] == "rclone" and info["status"] == "running" and info["pid"]
    creds = json.loads((Path(server.home) / "storage" / "root-credentials.json").read_text())
    cmdline = Path(f"/proc/{info['pid']}/cmdline").read_bytes().decode()
    assert "serve\0s3" in cmdline  # the engine is the process we look at
    assert_no_secret_on_command_lines({"root secret": creds["secret_key"], "root access key": creds["access_key"]})
