"""S3 through `pocketcloud serve` itself (gunicorn, the one port), with the aws CLI and boto3."""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import requests

pytestmark = pytest.mark.integration
AWS = str(Path(sys.executable).with_name("aws"))


def aws(server, api, *args, cwd=None):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": api.key_id, "AWS_SECRET_ACCESS_KEY": api.secret,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": server.url, "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    return subprocess.run([AWS, *args], env=env, capture_output=True, text=True, timeout=300, cwd=cwd)


def test_aws_s3_through_the_served_port(server, user, tmp_path):
    """`aws s3 cp` of 20 MiB: above the CLI's 8 MiB multipart threshold, so a multipart
    upload (3 parts) and ranged parallel downloads, checked byte for byte."""
    bucket = f"served-{server.port}"
    data = os.urandom(20 * 1024 * 1024 + 17)
    (tmp_path / "blob.bin").write_bytes(data)
    assert aws(server, user, "s3", "mb", f"s3://{bucket}").returncode == 0
    try:
        out = aws(server, user, "s3", "cp", str(tmp_path / "blob.bin"), f"s3://{bucket}/dir/blob.bin")
        assert out.returncode == 0, out.stderr
        out = aws(server, user, "s3", "ls", f"s3://{bucket}/dir/")
        assert "blob.bin" in out.stdout
        out = aws(server, user, "s3", "cp", f"s3://{bucket}/dir/blob.bin", str(tmp_path / "back.bin"))
        assert out.returncode == 0 and (tmp_path / "back.bin").read_bytes() == data
        # private by default: no anonymous read
        assert requests.get(f"{server.url}/{bucket}/dir/blob.bin", timeout=10).status_code == 403
        url = aws(server, user, "s3", "presign", f"s3://{bucket}/dir/blob.bin", "--expires-in", "60").stdout.strip()
        got = requests.get(url, timeout=30)
        assert got.status_code == 200 and hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
        s3 = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                          aws_access_key_id=user.key_id, aws_secret_access_key=user.secret)
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["dir/blob.bin"]
        parts = re.findall(rf'"PUT /{bucket}/dir/blob.bin\?\S*partNumber=(\d+)\S* HTTP/1.1" 200 ',
                           server.log_path.read_text())
        assert sorted(parts) == ["1", "2", "3"]  # the server took it as a 3-part multipart upload
        assert user.ok("GET", f"/buckets/{bucket}")["usage"] == {"objects": 1, "bytes": len(data)}
        info = user.ok("GET", "/info")["storage"]
        assert info["engine"] and "secret" not in str(info).lower()
    finally:
        out = aws(server, user, "s3", "rb", f"s3://{bucket}", "--force")
        assert out.returncode == 0, out.stderr
