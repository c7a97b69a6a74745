"""The unmodified `aws` CLI, pointed at the running server with AWS_ENDPOINT_URL only."""
from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            h.update(block)
    return h.hexdigest()


def curl(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--noproxy", "*", *args], capture_output=True, timeout=120)


def test_mb_cp_ls_sync_rm_rb_presign(aws_cli, alice, bucket_name, tmp_path):
    src = tmp_path / "src"
    (src / "nested").mkdir(parents=True)
    for i in range(5):
        (src / f"f{i}.txt").write_text(f"file {i}\n" * (i + 1))
    (src / "nested" / "deep.bin").write_bytes(os.urandom(3000))
    try:
        aws_cli(alice, "s3", "mb", f"s3://{bucket_name}")
        assert bucket_name in aws_cli(alice, "s3", "ls").stdout
        aws_cli(alice, "s3", "cp", str(src / "f0.txt"), f"s3://{bucket_name}/single/f0.txt")
        aws_cli(alice, "s3", "sync", str(src), f"s3://{bucket_name}/synced")
        listing = aws_cli(alice, "s3", "ls", "--recursive", f"s3://{bucket_name}").stdout
        for name in ("single/f0.txt", "synced/f4.txt", "synced/nested/deep.bin"):
            assert name in listing
        # a second sync has nothing to do
        again = aws_cli(alice, "s3", "sync", str(src), f"s3://{bucket_name}/synced").stdout
        assert "upload:" not in again
        back = tmp_path / "back"
        aws_cli(alice, "s3", "sync", f"s3://{bucket_name}/synced", str(back))
        assert (back / "nested" / "deep.bin").read_bytes() == (src / "nested" / "deep.bin").read_bytes()
        # presign: curl downloads it without any credentials
        url = aws_cli(alice, "s3", "presign", f"s3://{bucket_name}/single/f0.txt", "--expires-in", "300").stdout.strip()
        got = curl("-f", url)
        assert got.returncode == 0 and got.stdout == (src / "f0.txt").read_bytes()
        aws_cli(alice, "s3", "rm", f"s3://{bucket_name}/single/f0.txt")
        assert "single/f0.txt" not in aws_cli(alice, "s3", "ls", "--recursive", f"s3://{bucket_name}").stdout
        refused = aws_cli(alice, "s3", "rb", f"s3://{bucket_name}", check=False)
        assert refused.returncode != 0 and "BucketNotEmpty" in refused.stderr
        aws_cli(alice, "s3", "rm", "--recursive", f"s3://{bucket_name}")
        aws_cli(alice, "s3", "rb", f"s3://{bucket_name}")
        assert alice.gone(bucket_name)
    finally:
        alice.force_delete(bucket_name)


def test_256_mib_multipart_round_trip_is_byte_identical(aws_cli, alice, bucket_name, tmp_path):
    big = tmp_path / "big.bin"
    block = os.urandom(MiB)
    with open(big, "wb") as f:
        for i in range(256):
            f.write(hashlib.sha256(block + i.to_bytes(2, "big")).digest() * (MiB // 32))
    want = sha256_file(big)
    try:
        aws_cli(alice, "s3", "mb", f"s3://{bucket_name}")
        aws_cli(alice, "s3", "cp", str(big), f"s3://{bucket_name}/big.bin")  # multipart: 8 MiB parts
        assert alice.usage(bucket_name) == {"objects": 1, "bytes": 256 * MiB}
        head = aws_cli(alice, "s3api", "head-object", "--bucket", bucket_name, "--key", "big.bin").stdout
        assert '"ContentLength": 268435456' in head
        out = tmp_path / "out.bin"
        aws_cli(alice, "s3", "cp", f"s3://{bucket_name}/big.bin", str(out))
        assert sha256_file(out) == want
    finally:
        alice.force_delete(bucket_name)
