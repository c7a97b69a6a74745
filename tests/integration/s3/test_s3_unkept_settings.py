"""Bucket settings pocketcloud does not keep (logging, acceleration, notifications, website,
replication, encryption, object lock): reading one answers what S3 answers for a bucket that
has none (Terraform's aws_s3_bucket reads every one of them on each refresh), writing one is
refused clearly; checked with boto3 and the aws CLI, for the owner, another account and anonymous."""
from __future__ import annotations

import json

import pytest
import requests
from botocore.exceptions import ClientError

from .conftest import code_of

pytestmark = pytest.mark.integration

MISSING = {
    "get_bucket_website": "NoSuchWebsiteConfiguration",
    "get_bucket_replication": "ReplicationConfigurationNotFoundError",
    "get_bucket_encryption": "ServerSideEncryptionConfigurationNotFoundError",
    "get_object_lock_configuration": "ObjectLockConfigurationNotFoundError",
}
EMPTY = ("get_bucket_logging", "get_bucket_accelerate_configuration", "get_bucket_notification_configuration")
SUBRESOURCES = ("logging", "accelerate", "notification", "website", "replication", "encryption", "object-lock")


def test_reads_answer_what_s3_answers_for_an_unset_setting(s3_of, alice, bob, bucket, s3_endpoint, aws_cli):
    a, b = s3_of(alice), s3_of(bob)
    assert "LoggingEnabled" not in a.get_bucket_logging(Bucket=bucket)
    assert "Status" not in a.get_bucket_accelerate_configuration(Bucket=bucket)
    notification = a.get_bucket_notification_configuration(Bucket=bucket)
    assert not {"TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations"} & set(notification)
    for call, code in MISSING.items():
        with pytest.raises(ClientError) as e:
            getattr(a, call)(Bucket=bucket)
        assert code_of(e) == (code, 404), call
    # the message Terraform's provider (v4) matches on
    with pytest.raises(ClientError) as e:
        a.get_bucket_encryption(Bucket=bucket)
    assert "encryption configuration was not found" in e.value.response["Error"]["Message"]
    # the owner's to read, as every bucket setting: not another account's, not anyone's
    for call in (*EMPTY, *MISSING):
        with pytest.raises(ClientError) as e:
            getattr(b, call)(Bucket=bucket)
        assert code_of(e) == ("AccessDenied", 403), call
        with pytest.raises(ClientError) as e:
            getattr(a, call)(Bucket=bucket + "-none")
        assert code_of(e) == ("NoSuchBucket", 404), call
    for sub in SUBRESOURCES:
        assert requests.get(f"{s3_endpoint}/{bucket}?{sub}", timeout=30).status_code == 403, sub
    # the aws CLI as a user runs it
    assert aws_cli(alice, "s3api", "get-bucket-logging", "--bucket", bucket).stdout.strip() == ""
    proc = aws_cli(alice, "s3api", "get-bucket-website", "--bucket", bucket, check=False)
    assert proc.returncode != 0 and "NoSuchWebsiteConfiguration" in proc.stderr


def test_writes_stay_refused_clearly(s3_of, alice, bucket, bob):
    a = s3_of(alice)
    for call, kw, what in (
            (a.put_bucket_logging, {"BucketLoggingStatus": {"LoggingEnabled": {
                "TargetBucket": bucket, "TargetPrefix": "logs/"}}}, "(PUT logging)"),
            (a.put_bucket_accelerate_configuration, {"AccelerateConfiguration": {"Status": "Enabled"}},
             "(PUT accelerate)"),
            (a.put_bucket_website, {"WebsiteConfiguration": {"IndexDocument": {"Suffix": "index.html"}}},
             "(PUT website)"),
            (a.put_bucket_encryption, {"ServerSideEncryptionConfiguration": {"Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}}, "(PUT encryption)"),
            (a.delete_bucket_website, {}, "(DELETE website)")):
        with pytest.raises(ClientError) as e:
            call(Bucket=bucket, **kw)
        assert code_of(e) == ("NotImplemented", 501), what
        assert what in e.value.response["Error"]["Message"]
    # nothing changed: still unset
    assert "LoggingEnabled" not in a.get_bucket_logging(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        a.get_bucket_website(Bucket=bucket)
    assert code_of(e)[0] == "NoSuchWebsiteConfiguration"


def test_a_policy_may_open_the_reads_to_another_account(s3_of, alice, bob, bucket):
    a, b = s3_of(alice), s3_of(bob)
    a.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": [{
        "Effect": "Allow", "Principal": {"AWS": bob.id},
        "Action": ["s3:GetBucketLogging", "s3:GetEncryptionConfiguration"], "Resource": f"arn:aws:s3:::{bucket}"}]}))
    assert "LoggingEnabled" not in b.get_bucket_logging(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        b.get_bucket_encryption(Bucket=bucket)
    assert code_of(e)[0] == "ServerSideEncryptionConfigurationNotFoundError"
    with pytest.raises(ClientError) as e:
        b.get_bucket_accelerate_configuration(Bucket=bucket)          # not named: still the owner's
    assert code_of(e) == ("AccessDenied", 403)
