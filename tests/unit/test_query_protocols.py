"""The Query-protocol pieces shared by EC2 and STS: STS documents, the error shape, filters
and paging, pinned without a server."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest

from api import sts
from api.ec2 import filtering
from api.errors import DryRunOperation, ec2_error, query_error
from emulator import errors as e

NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


@dataclass
class Account:
    id: str
    name: str


def test_sts_get_caller_identity_document():
    me = Account("123456789012", "alice")
    result = sts.get_caller_identity(None, me, {})
    assert result == {"Arn": "arn:aws:iam::123456789012:user/alice", "UserId": sts.user_id(me),
                      "Account": "123456789012"}
    assert sts.user_id(me).startswith("AIDA") and len(sts.user_id(me)) == 21
    assert sts.user_id(me) == sts.user_id(Account("123456789012", "renamed"))  # stable: from the id
    root = ET.fromstring(sts.response("GetCallerIdentity", result, "rid-1"))
    assert root.tag == f"{NS}GetCallerIdentityResponse"
    assert root.find(f"{NS}GetCallerIdentityResult/{NS}Account").text == "123456789012"
    assert root.find(f"{NS}ResponseMetadata/{NS}RequestId").text == "rid-1"


def test_sts_refuses_token_actions_by_name():
    for action in ("AssumeRole", "GetSessionToken", "GetFederationToken"):
        with pytest.raises(e.InvalidParameter) as exc:
            sts.ACTIONS[action](None, Account("1", "a"), {})
        assert exc.value.code == "NotImplemented" and action in str(exc.value)


def test_query_error_shape_and_status():
    body, status = query_error(e.InvalidParameter("no <such> action", code="InvalidAction"), sts.NAMESPACE, "r-9")
    assert status == 400
    root = ET.fromstring(body)
    assert root.tag == f"{NS}ErrorResponse"
    assert [el.tag.replace(NS, "") for el in root.find(f"{NS}Error")] == ["Type", "Code", "Message"]
    assert root.find(f"{NS}Error/{NS}Type").text == "Sender"
    assert root.find(f"{NS}Error/{NS}Code").text == "InvalidAction"
    assert root.find(f"{NS}Error/{NS}Message").text == "no <such> action"
    assert root.find(f"{NS}RequestId").text == "r-9"
    assert query_error(e.Unauthorized("x", code="InvalidClientTokenId"), sts.NAMESPACE)[1] == 403
    body, status = query_error(e.BackendUnavailable("down"), sts.NAMESPACE)
    assert status == 503 and "<Type>Receiver</Type>" in body
    assert ec2_error(DryRunOperation("Request would have succeeded"))[1] == 412


ITEMS = [{"id": "a-1", "name": "web-1", "n": 1, "tags": {"env": "prod", "team": "x"}},
         {"id": "a-2", "name": "web-2", "n": 2, "tags": {"env": "dev"}},
         {"id": "b-3", "name": "db", "n": 3, "tags": {}}]
TABLE = {"id": lambda i: i["id"], "name": lambda i: i["name"], "n": lambda i: i["n"]}


def _filters(*pairs):
    p = {}
    for n, (name, values) in enumerate(pairs, 1):
        p[f"Filter.{n}.Name"] = name
        for m, v in enumerate(values, 1):
            p[f"Filter.{n}.Value.{m}"] = v
    return p


def ids(items):
    return [i["id"] for i in items]


def test_filters_match_like_ec2():
    tags = lambda i: i["tags"]  # noqa: E731
    run = lambda *f: ids(filtering.apply(_filters(*f), ITEMS, TABLE, tags))  # noqa: E731
    assert run(("name", ["web-*"])) == ["a-1", "a-2"]
    assert run(("name", ["web-?", "db"]), ("n", ["1", "3"])) == ["a-1", "b-3"]
    assert run(("tag:env", ["prod"])) == ["a-1"]
    assert run(("tag-key", ["team"])) == ["a-1"]
    assert run(("tag-value", ["d*"])) == ["a-2"]
    assert run(("name", ["web-1.*"])) == []  # the dot is a dot, not a regex
    with pytest.raises(e.InvalidParameter) as exc:
        run(("bogus", ["x"]))
    assert exc.value.code == "InvalidParameterValue" and "tag:KEY" in str(exc.value)


def test_paging_bounds_tokens_and_combinations():
    items = list(range(12))
    first, token = filtering.page({"MaxResults": "5"}, items)
    second, token2 = filtering.page({"MaxResults": "5", "NextToken": token}, items)
    third, token3 = filtering.page({"MaxResults": "5", "NextToken": token2}, items)
    assert first + second + third == items and token3 is None
    assert filtering.page({}, items) == (items, None)
    for bad in ({"MaxResults": "4"}, {"MaxResults": "1001"}, {"MaxResults": "x"}):
        with pytest.raises(e.InvalidParameter) as exc:
            filtering.page(bad, items)
        assert exc.value.code == "InvalidParameterValue"
    for token in ("garbage", "cGMxOi01", "b3RoZXI6NQ=="):  # not base64 / negative offset / foreign token
        with pytest.raises(e.InvalidParameter) as exc:
            filtering.page({"NextToken": token}, items)
        assert exc.value.code == "InvalidPaginationToken"
    with pytest.raises(e.InvalidParameter) as exc:
        filtering.page({"MaxResults": "5", "InstanceId.1": "i-1"}, items, ids_param="InstanceId")
    assert exc.value.code == "InvalidParameterCombination"
    assert filtering.page({"MaxResults": "1"}, items, low=1, high=1000)[0] == [0]
