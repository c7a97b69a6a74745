"""Without terraform or its provider the Terraform tests FAIL with the commands that install
them, never skip: the real test ids run in a child pytest whose PATH has no terraform, or
whose named mirror is empty. The terraform fixtures come first in those tests, so the child
fails before it starts a server."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TERRAFORM_TESTS = ["tests/compat/test_terraform.py::test_terraform_stack_lifecycle",
                   "tests/compat/test_terraform_s3.py::test_terraform_s3_resources",
                   "tests/compat/test_terraform_asg.py::test_terraform_launch_template_and_autoscaling_group"]


def without_terraform(path: str) -> str:
    return os.pathsep.join(d for d in path.split(os.pathsep) if d and not (Path(d) / "terraform").exists())


@pytest.mark.parametrize("missing", ["terraform", "provider"])
def test_terraform_tests_fail_with_install_steps_when_the_tools_are_missing(missing, tmp_path):
    env = {**os.environ, "POCKETCLOUD_TEST_S3_ENGINES": "default"}
    if missing == "terraform":
        env["PATH"] = without_terraform(env["PATH"])
        expected = ["terraform is not on PATH", "releases.hashicorp.com/terraform/1.11.4"]
    else:
        env["POCKETCLOUD_TF_MIRROR"] = str(tmp_path / "empty-mirror")
        expected = [f"provider is in none of {tmp_path / 'empty-mirror'}", "terraform providers mirror"]
    child = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *TERRAFORM_TESTS],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = child.stdout + child.stderr
    assert child.returncode == 1, out[-4000:]
    assert "3 errors" in out and "skipped" not in out and " passed" not in out, out[-4000:]
    for text in expected:
        assert text in out, out[-4000:]
