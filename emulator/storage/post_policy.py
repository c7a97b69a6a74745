"""Browser form uploads (S3's POST Object): the signed POST policy and its conditions.

A form carries a base64 JSON policy ({"expiration", "conditions"}) signed with the uploader's
key: SigV4 (x-amz-algorithm AWS4-HMAC-SHA256, x-amz-credential, x-amz-date, x-amz-signature:
the hex HMAC of the base64 policy with the SigV4 signing key) or SigV2 (AWSAccessKeyId,
signature: base64 HMAC-SHA1 of the base64 policy). Conditions: {"field": value} and
["eq", "$field", value] (exact), ["starts-with", "$field", prefix] (a comma-separated field
like Content-Type: each part), ["content-length-range", min, max]. Every form field but the
policy, the signature, the file and x-ignore-* ones must be covered by a condition, as S3
requires. A form without a policy is an anonymous upload (allowed where the bucket's ACL or
policy lets anyone write).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from typing import Callable

from ..errors import Forbidden, InvalidParameter, Unauthorized
from ..sigv4.signing import signing_key

UNCHECKED = {"policy", "x-amz-signature", "signature", "file", "awsaccesskeyid"}


def _denied(why: str) -> Forbidden:
    return Forbidden(f"Invalid according to Policy: {why}", code="AccessDenied")


def account_of(fields: dict[str, str], secret_lookup: Callable[[str], tuple], region: str):
    """The account whose key signed the form's policy (Unauthorized / Forbidden otherwise)."""
    policy = fields.get("policy", "")
    if "x-amz-signature" in fields or "x-amz-credential" in fields:
        if fields.get("x-amz-algorithm") != "AWS4-HMAC-SHA256":
            raise InvalidParameter("x-amz-algorithm must be AWS4-HMAC-SHA256", code="InvalidArgument")
        parts = fields.get("x-amz-credential", "").split("/")
        if len(parts) != 5 or parts[4] != "aws4_request" or parts[3] != "s3":
            raise InvalidParameter("x-amz-credential must be KEY/DATE/REGION/s3/aws4_request",
                                   code="InvalidArgument")
        key_id, date, cred_region = parts[0], parts[1], parts[2]
        if cred_region != region:
            raise InvalidParameter(f"the credential's region must be {region!r}", code="AuthorizationHeaderMalformed")
        account, secret = secret_lookup(key_id)
        expected = hmac.new(signing_key(secret, date, region, "s3"), policy.encode(), hashlib.sha256).hexdigest()
        given = fields.get("x-amz-signature", "")
    else:
        account, secret = secret_lookup(fields.get("awsaccesskeyid", ""))
        expected = base64.b64encode(hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()).decode()
        given = fields.get("signature", "")
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise Unauthorized("The request signature we calculated does not match the signature you provided.",
                           code="SignatureDoesNotMatch")
    return account


def check(policy_b64: str, fields: dict[str, str], bucket: str, size: int, now: dt.datetime | None = None) -> None:
    """The policy holds for these form fields (lower-case names, with 'bucket' and 'key' as
    uploaded) and a file of `size` bytes; else AccessDenied, or EntityTooLarge/Small."""
    try:
        doc = json.loads(base64.b64decode(policy_b64, validate=True))
        expiration = dt.datetime.fromisoformat(str(doc["expiration"]).replace("Z", "+00:00"))
        conditions = doc["conditions"]
        assert isinstance(conditions, list)
    except Exception:  # noqa: BLE001 - any malformed policy is one answer
        raise InvalidParameter("Invalid Policy: the policy must be base64 JSON with expiration and conditions",
                               code="InvalidPolicyDocument") from None
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=dt.timezone.utc)
    if (now or dt.datetime.now(dt.timezone.utc)) > expiration:
        raise _denied("Policy expired.")
    values = {**fields, "bucket": bucket}
    covered: set[str] = set()
    for cond in conditions:
        if isinstance(cond, dict) and len(cond) == 1:
            (name, want), = cond.items()
            op, name = "eq", str(name).lower()
        elif isinstance(cond, list) and len(cond) == 3:
            op, name, want = str(cond[0]).lower(), cond[1], cond[2]
            if op == "content-length-range":
                low, high = int(name), int(want)
                if size > high:
                    raise InvalidParameter("Your proposed upload exceeds the maximum allowed size",
                                           code="EntityTooLarge")
                if size < low:
                    raise InvalidParameter("Your proposed upload is smaller than the minimum allowed size",
                                           code="EntityTooSmall")
                continue
            name = str(name).lower().removeprefix("$")
        else:
            raise InvalidParameter(f"Invalid Policy: unknown condition {str(cond)[:80]}",
                                   code="InvalidPolicyDocument")
        covered.add(name)
        have = values.get(name, "")
        if op == "eq":
            ok = have == str(want)
        elif op == "starts-with":
            parts = have.split(",") if name == "content-type" else [have]
            ok = all(p.strip().startswith(str(want)) for p in parts)
        else:
            raise InvalidParameter(f"Invalid Policy: unknown operator {op[:40]!r}", code="InvalidPolicyDocument")
        if not ok:
            raise _denied(f"Policy Condition failed: [\"{op}\", \"${name}\", \"{str(want)[:80]}\"]")
    extra = sorted(k for k in fields if k not in covered and k not in UNCHECKED and not k.startswith("x-ignore-")
                   and k != "bucket")
    if extra:
        raise _denied(f"Extra input fields: {', '.join(extra)}")
