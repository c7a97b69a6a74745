"""IAM on the one port: refused, in IAM's own error document.

pocketcloud has no IAM: each account is one user whose access keys can do everything the
account can (see the STS module), with no roles, policies or instance profiles. Tools still
call IAM — a Terraform stack with an `aws_iam_role`, `aws iam list-roles` — and without a
front of its own such a request landed on the S3 gateway, whose error document IAM clients
cannot read (the Terraform provider printed `UnknownError`). Every well-formed action now
answers `NotImplemented` with a sentence saying why, in the Query error shape IAM clients parse.
"""
from __future__ import annotations

import re

from emulator.errors import Forbidden, InvalidParameter

from ..errors import query_error
from ..query import Handler, QueryService, create_query_app
from . import response

NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"
_ACTION = re.compile(r"[A-Z][A-Za-z0-9]{1,63}")


def refuse(cloud, caller, p) -> dict:
    raise InvalidParameter(
        f"pocketcloud does not implement IAM ({p.get('Action', '')[:64]}): an account is one user whose access "
        "keys can do everything the account can; there are no roles, policies or instance profiles "
        "(aws sts get-caller-identity shows who you are)", code="NotImplemented")


class EveryAction(dict):
    """The action table: every well-formed IAM action name is refused by name; anything else
    is the Query front's InvalidAction."""

    def get(self, action: str, default: Handler | None = None) -> Handler | None:
        return refuse if _ACTION.fullmatch(action or "") else default


def create_iam_app(cloud):
    return create_query_app(cloud, QueryService(
        name="iam", actions=EveryAction(), render=response,  # never reached: every action is refused
        error=lambda exc, rid: query_error(exc, NAMESPACE, rid),
        unsigned=lambda: Forbidden("Request is missing Authentication Token: sign it with AWS Signature "
                                   "Version 4 using a pocketcloud access key (eval \"$(pocketcloud env)\")",
                                   code="MissingAuthenticationToken"),
        unknown_key_code="InvalidClientTokenId"))
