"""Terraform's S3 resources with the official hashicorp/aws provider, unmodified and without
skip flags, against a real `pocketcloud serve` and its S3 engine: apply, plan without drift,
import of every resource, destroy leaving nothing on the engine. What
Terraform set is checked with boto3 and plain HTTP, as a user would. Times go to
artifacts/compat-terraform-s3.json."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from emulator.accounts import read_credentials

from .test_terraform import planned_changes
from .tf import Terraform, terraform_env

pytestmark = pytest.mark.integration

STACK = Path(__file__).parent / "terraform" / "s3"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def s3_client(server):
    creds = read_credentials(server.home / "credentials")
    return boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=creds.key_id,
                        aws_secret_access_key=creds.secret, config=BotoConfig(retries={"max_attempts": 1}))


def check_site(s3, s3_server, site: str, page: str, expire_days: int, versioning: str) -> None:
    """Everything the stack says about the site bucket, read back from the cloud."""
    assert s3.get_bucket_tagging(Bucket=site)["TagSet"] == [{"Key": "stack", "Value": "compat-s3"}]
    assert s3.get_bucket_ownership_controls(Bucket=site)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerPreferred"}]
    assert not any(s3.get_public_access_block(Bucket=site)["PublicAccessBlockConfiguration"].values())
    grants = {(g["Grantee"].get("URI"), g["Permission"]) for g in s3.get_bucket_acl(Bucket=site)["Grants"]}
    assert (ALL_USERS, "READ") in grants
    assert json.loads(s3.get_bucket_policy(Bucket=site)["Policy"])["Statement"][0]["Sid"] == "PublicRead"
    assert s3.get_bucket_versioning(Bucket=site)["Status"] == versioning
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=site)["Rules"]}
    assert rules["tmp"]["Expiration"] == {"Days": expire_days} and rules["old-drafts"]["Status"] == "Disabled"
    assert [r.get("ID") for r in s3.get_bucket_cors(Bucket=site)["CORSRules"]] == ["app", None]
    # what those settings do: the page is public (policy), the listing too (ACL), CORS answers
    r = requests.get(f"{s3_server.url}/{site}/index.html", timeout=30)
    assert r.status_code == 200 and r.text == page and r.headers["Content-Type"] == "text/html"
    assert requests.get(f"{s3_server.url}/{site}", timeout=30).status_code == 200
    pre = requests.options(f"{s3_server.url}/{site}/index.html", timeout=30, headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "PUT"})
    assert pre.status_code == 200 and pre.headers["Access-Control-Max-Age"] == "3000"
    assert s3.get_object_tagging(Bucket=site, Key="index.html")["TagSet"] == [{"Key": "kind", "Value": "page"}]
    assert s3.get_object(Bucket=site, Key="src/main.tf")["Body"].read() == (STACK / "main.tf").read_bytes()


def test_terraform_s3_resources(terraform_bin, provider_mirror, s3_server, tmp_path):
    work = tmp_path / "stack"
    shutil.copytree(STACK, work)
    prefix = f"tfs3-{s3_server.port}"
    site, logs = f"{prefix}-site", f"{prefix}-logs"
    engine = s3_server.admin.ok("GET", "/info")["storage"]["engine"]
    versioning = "Enabled" if engine in ("ceph", "minio", "minio-docker") else "Suspended"
    tfvars = {"prefix": prefix, "versioning": versioning}
    (work / "terraform.tfvars.json").write_text(json.dumps(tfvars))
    tf = Terraform(terraform_bin, work, terraform_env(s3_server.cli("env").stdout, work, provider_mirror))
    s3 = s3_client(s3_server)
    try:
        tf.run("init", "-input=false", label="init")
        tf.run("apply", "-auto-approve", "-input=false", label="apply")
        out = tf.outputs()
        assert out["site_bucket"] == site and out["site_arn"] == f"arn:aws:s3:::{site}"
        assert out["site_region"] == "us-east-1" and len(out["account_id"]) == 12
        check_site(s3, s3_server, site, "<h1>hello from terraform</h1>", 30, versioning)
        assert "Status" not in s3.get_bucket_versioning(Bucket=logs)  # Disabled: never versioned
        assert s3.get_object(Bucket=logs, Key="2026/11/30/app.log")["Body"].read() == b"started\n"

        tf.run("plan", "-detailed-exitcode", "-input=false", label="plan")  # exit 0: no drift

        # import every S3 resource back from the cloud: the bucket with `terraform import`, the
        # rest with import blocks (one plan/apply for all of them)
        imported = {
            "aws_s3_bucket_policy.site": site, "aws_s3_bucket_public_access_block.site": site,
            "aws_s3_bucket_ownership_controls.site": site, "aws_s3_bucket_acl.site": f"{site},public-read",
            "aws_s3_bucket_versioning.site": site, "aws_s3_bucket_cors_configuration.site": site,
            "aws_s3_bucket_lifecycle_configuration.site": site, "aws_s3_object.index": f"{site}/index.html",
            "aws_s3_object.source": f"s3://{site}/src/main.tf", "aws_s3_bucket_versioning.logs": logs,
        }
        tf.run("state", "rm", "aws_s3_bucket.site", *imported)
        tf.run("import", "-input=false", "aws_s3_bucket.site", site, label="import aws_s3_bucket.site")
        (work / "imports.tf").write_text("".join(f'import {{\n  to = {address}\n  id = "{rid}"\n}}\n'
                                                 for address, rid in imported.items()))
        # What S3 cannot give back either: force_destroy (a Terraform-only setting) and an
        # imported object's `content`/`source` (Terraform does not read bodies back).
        changes = planned_changes(tf)
        assert set(changes) <= {"aws_s3_bucket.site", "aws_s3_object.index", "aws_s3_object.source"}, changes
        assert all(c == ["update"] for c in changes.values()), changes
        tf.run("apply", "-auto-approve", "-input=false", label="apply_imports")
        (work / "imports.tf").unlink()
        tf.run("plan", "-detailed-exitcode", "-input=false", label="plan_after_import")
        check_site(s3, s3_server, site, "<h1>hello from terraform</h1>", 30, versioning)
    finally:
        destroyed = tf.run("destroy", "-auto-approve", "-input=false", label="destroy", ok=(0, 1))
        times = {"stack": "tests/compat/terraform/s3", "engine": engine, **tf.times}
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "compat-terraform-s3.json").write_text(json.dumps(times, indent=1))
        print("terraform S3 times (s):", json.dumps(times))

    assert destroyed.returncode == 0, destroyed.stdout[-4000:] + destroyed.stderr[-4000:]
    for bucket in (site, logs):
        with pytest.raises(ClientError) as e:
            s3.head_bucket(Bucket=bucket)
        assert e.value.response["Error"]["Code"] in ("404", "NoSuchBucket")
        assert s3_server.admin("GET", f"/buckets/{bucket}")[0] == 404
    assert not (s3_server.home / "storage" / "data" / site).exists()
