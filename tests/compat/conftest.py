"""The compat suite: pocketcloud driven by the tools people already use, unmodified.

Terraform and its AWS provider are not Python packages: the machine provides them
(`terraform` on PATH, `hashicorp/aws` in a local filesystem mirror). When either is missing
the tests FAIL with the commands that install them; nothing is skipped.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS
from tests.integration.cloud import s3_engines, start_s3_server

from .tf import INSTALL, PROVIDER, find_mirror, mirrors


@pytest.fixture(scope="session")
def terraform_bin() -> str:
    path = shutil.which("terraform")
    if path is None:
        pytest.fail("terraform is not on PATH.\n" + INSTALL, pytrace=False)
    return path


@pytest.fixture(scope="session")
def provider_mirror(terraform_bin) -> Path:
    mirror = find_mirror()
    if mirror is None:
        pytest.fail(f"the hashicorp/aws {PROVIDER[3]} provider is in none of {', '.join(mirrors())}.\n"
                    + INSTALL, pytrace=False)
    return mirror


@pytest.fixture(scope="session", params=s3_engines())
def s3_server(request, tmp_path_factory):
    """The server the S3 compat tests use, per engine in POCKETCLOUD_TEST_S3_ENGINES: the
    session's own for `default`, else one started on that engine (e.g. ceph)."""
    if request.param == "default":
        yield request.getfixturevalue("server")
        return
    ARTIFACTS.mkdir(exist_ok=True)
    srv = start_s3_server(tmp_path_factory.mktemp(f"pc-compat-{request.param}"), ARTIFACTS, request.param)
    yield srv
    srv.stop()
