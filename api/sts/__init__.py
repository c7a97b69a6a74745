"""STS (AWS Security Token Service) on the one port: the Query protocol, SigV4 service `sts`.

Every tool asks STS who it is before anything else (the Terraform AWS provider, `aws sts
get-caller-identity`, boto3 scripts that build ARNs). pocketcloud answers `GetCallerIdentity`
from the signing key. Identity model: each pocketcloud account is one AWS-shaped account (its
12-digit id) holding one IAM user named after the account, and every access key of the account
belongs to that user, so the caller is always `arn:aws:iam::ACCOUNT:user/NAME` (admins
included: pocketcloud has no root-credential concept, and an ARN ending in `:root` would
suggest keys that can do more than the account's own). The user id is `AIDA` + 17 characters
derived from the account id: stable, and shaped like an IAM user's unique id.

pocketcloud issues no temporary credentials and has no IAM roles: the token-issuing actions
answer `NotImplemented` with a sentence saying so; any other action is `InvalidAction`.
"""
from __future__ import annotations

import base64
import hashlib
import uuid

from emulator.errors import Forbidden, InvalidParameter
from emulator.xmldoc import render

from ..errors import query_error
from ..query import QueryService, create_query_app

NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"

# Real STS actions pocketcloud refuses: named, so the answer says why instead of "unknown action".
NOT_IMPLEMENTED = ("AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "AssumeRoot",
                   "DecodeAuthorizationMessage", "GetAccessKeyInfo", "GetFederationToken", "GetSessionToken",
                   "GetDelegatedAccessToken", "GetWebIdentityToken")


def user_id(account) -> str:
    digest = base64.b32encode(hashlib.sha256(f"pocketcloud-user:{account.id}".encode()).digest()).decode()
    return "AIDA" + digest[:17]


def caller_arn(account) -> str:
    return f"arn:aws:iam::{account.id}:user/{account.name}"


def get_caller_identity(cloud, caller, p) -> dict:
    return {"Arn": caller_arn(caller), "UserId": user_id(caller), "Account": caller.id}


def _not_implemented(action: str):
    def refuse(cloud, caller, p) -> dict:
        raise InvalidParameter(
            f"pocketcloud does not implement {action}: it issues no temporary credentials and has no IAM "
            "roles; every call is made with your account's own access key (eval \"$(pocketcloud env)\")",
            code="NotImplemented")

    refuse.refuses = True  # not listed among the actions pocketcloud implements
    return refuse


ACTIONS = {"GetCallerIdentity": get_caller_identity, **{a: _not_implemented(a) for a in NOT_IMPLEMENTED}}


def response(action: str, result: dict, request_id: str | None = None) -> str:
    """The Query protocol's answer: the result, then the request id; lists as <member>s."""
    return render(f"{action}Response", {f"{action}Result": result,
                                        "ResponseMetadata": {"RequestId": request_id or str(uuid.uuid4())}},
                  namespace=NAMESPACE, list_item="member")


def create_sts_app(cloud):
    return create_query_app(cloud, QueryService(
        name="sts", actions=ACTIONS, render=response,
        error=lambda exc, rid: query_error(exc, NAMESPACE, rid),
        unsigned=lambda: Forbidden("Request is missing Authentication Token: sign it with AWS Signature "
                                   "Version 4 using a pocketcloud access key (eval \"$(pocketcloud env)\")",
                                   code="MissingAuthenticationToken"),
        unknown_key_code="InvalidClientTokenId"))
