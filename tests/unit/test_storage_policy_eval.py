"""Bucket policies evaluated per request (policy_eval.py), against the semantics AWS documents:
explicit Deny wins, conditions with their IfExists forms, principals as account ids or ARNs."""
from __future__ import annotations

import json

import pytest

from emulator.storage import policy_eval as pe

ARN = "arn:aws:s3:::bkt"
ALICE, BOB = "111111111111", "222222222222"


def doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def st(effect="Allow", principal="*", action="s3:GetObject", resource=f"{ARN}/*", **cond):
    out = {"Effect": effect, "Principal": principal, "Action": action, "Resource": resource}
    if cond:
        out["Condition"] = cond
    return out


def test_principals_actions_resources():
    text = doc(st(principal={"AWS": [f"arn:aws:iam::{BOB}:root"]}, action=["s3:Get*", "s3:ListBucket"],
                  resource=[ARN, f"{ARN}/public/*"]))
    assert pe.evaluate(text, BOB, "s3:GetObject", f"{ARN}/public/a", {}) == "Allow"
    assert pe.evaluate(text, BOB, "s3:getobject", f"{ARN}/public/a", {}) == "Allow"   # actions: any case
    assert pe.evaluate(text, BOB, "s3:ListBucket", ARN, {}) == "Allow"
    assert pe.evaluate(text, BOB, "s3:GetObject", f"{ARN}/private/a", {}) is None
    assert pe.evaluate(text, BOB, "s3:PutObject", f"{ARN}/public/a", {}) is None
    assert pe.evaluate(text, ALICE, "s3:GetObject", f"{ARN}/public/a", {}) is None
    assert pe.evaluate(text, None, "s3:GetObject", f"{ARN}/public/a", {}) is None
    assert pe.evaluate(doc(st(principal=BOB)), BOB, "s3:GetObject", f"{ARN}/x", {}) == "Allow"


def test_explicit_deny_wins():
    text = doc(st(principal="*"), st("Deny", principal="*", resource=f"{ARN}/secret/*"))
    assert pe.evaluate(text, BOB, "s3:GetObject", f"{ARN}/a", {}) == "Allow"
    assert pe.evaluate(text, BOB, "s3:GetObject", f"{ARN}/secret/a", {}) == "Deny"
    na = doc({"Effect": "Deny", "Principal": "*", "NotAction": "s3:GetObject", "Resource": f"{ARN}/*"})
    assert pe.evaluate(na, BOB, "s3:PutObject", f"{ARN}/a", {}) == "Deny"
    assert pe.evaluate(na, BOB, "s3:GetObject", f"{ARN}/a", {}) is None


@pytest.mark.parametrize("cond, values, holds", [
    ({"StringEquals": {"s3:prefix": "home/"}}, {"s3:prefix": "home/"}, True),
    ({"StringEquals": {"s3:prefix": ["a/", "home/"]}}, {"s3:prefix": "home/"}, True),
    ({"StringEquals": {"s3:prefix": "home/"}}, {"s3:prefix": "other/"}, False),
    ({"StringEquals": {"s3:prefix": "home/"}}, {}, False),
    ({"StringEqualsIfExists": {"s3:prefix": "home/"}}, {}, True),
    ({"StringEqualsIfExists": {"s3:prefix": "home/"}}, {"s3:prefix": "x"}, False),
    ({"StringLike": {"aws:Referer": "https://*.example.com/*"}}, {"aws:referer": "https://www.example.com/p"}, True),
    ({"StringLike": {"aws:Referer": "https://*.example.com/*"}}, {"aws:referer": "https://evil.org/"}, False),
    ({"StringNotLike": {"aws:Referer": ["https://a/*", "https://b/*"]}}, {"aws:referer": "https://c/"}, True),
    ({"StringNotLike": {"aws:Referer": ["https://a/*", "https://b/*"]}}, {"aws:referer": "https://a/x"}, False),
    ({"StringLikeIfExists": {"s3:x-amz-acl": "bucket-owner-*"}}, {}, True),
    ({"StringNotEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}, {}, True),   # negated: a missing key holds
    ({"StringNotEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
     {"s3:x-amz-acl": "bucket-owner-full-control"}, False),
    ({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, {"aws:sourceip": "127.0.0.1"}, True),
    ({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.1.7/32"]}}, {"aws:sourceip": "127.0.0.1"}, False),
    ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:sourceip": "127.0.0.1"}, True),
    ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:securetransport": "false"}, True),
    ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:securetransport": "true"}, False),
    ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "5"}, True),
    ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "10"}, False),
    ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "ten"}, False),
    ({"NumericLessThanIfExists": {"s3:max-keys": "10"}}, {}, True),
    ({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, {"aws:currenttime": "2026-11-30T05:00:00Z"}, True),
    ({"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, {"aws:currenttime": "2026-11-30T05:00:00Z"},
     False),
    ({"Null": {"s3:x-amz-acl": "true"}}, {}, True),
    ({"Null": {"s3:x-amz-acl": "true"}}, {"s3:x-amz-acl": "private"}, False),
    ({"StringEquals": {"aws:PrincipalAccount": BOB}, "Bool": {"aws:SecureTransport": "false"}},
     {"aws:principalaccount": BOB, "aws:securetransport": "false"}, True),
    ({"StringEquals": {"aws:PrincipalAccount": BOB}, "Bool": {"aws:SecureTransport": "false"}},
     {"aws:principalaccount": BOB, "aws:securetransport": "true"}, False),   # all conditions must hold
])
def test_conditions(cond, values, holds):
    text = doc(st(**cond))
    assert pe.evaluate(text, BOB, "s3:GetObject", f"{ARN}/k", values) == ("Allow" if holds else None)


def test_policy_status():
    assert pe.is_public(doc(st()))
    assert not pe.is_public(doc(st(principal=BOB)))
    assert not pe.is_public(doc(st(IpAddress={"aws:SourceIp": "10.0.0.0/8"})))
    assert pe.is_public(doc(st(Bool={"aws:SecureTransport": "true"})))      # anyone still, over TLS
    assert not pe.is_public(doc(st("Deny")))
