"""EC2 actions pocketcloud does not serve yet, IAM, and other AWS services: refused by name
with a reason, never a DryRunOperation, never listed as implemented; a served handler wins
over a refusal; another service's Query or JSON request is answered in its own shape."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from api import ec2, unserved as services
from api.ec2 import unserved
from api.sts import iam
from emulator import errors as e


@pytest.mark.parametrize("action", ["CreateSnapshots", "AllocateAddress", "CopyImage", "RequestSpotInstances"])
def test_unserved_ec2_actions_say_why_even_on_a_dry_run(action):
    handler = ec2._dry_run(ec2.ACTIONS[action])
    for p in ({"Action": action}, {"Action": action, "DryRun": "true"}):
        with pytest.raises(e.InvalidParameter) as exc:
            handler(None, None, p)
        assert exc.value.code == "UnsupportedOperation" and str(exc.value).startswith(action + " is not")


def test_a_served_action_is_never_refused():
    served = {a for a, h in ec2.ACTIONS.items() if not getattr(h, "refuses", False)}
    assert {"RunInstances", "DescribeVolumes", "CreateVolume", "CreateTags"} <= served
    assert not served & set(unserved.ACTIONS)
    assert {"CreateVpc", "DeleteVpc", "CreateSubnet", "DeleteSubnet"} <= served


def test_iam_refuses_every_well_formed_action_by_name():
    table = iam.EveryAction()
    for action in ("CreateRole", "ListRoles", "GetUser"):
        with pytest.raises(e.InvalidParameter) as exc:
            table.get(action)(None, None, {"Action": action})
        assert exc.value.code == "NotImplemented" and f"IAM ({action})" in str(exc.value)
    assert table.get("not an action") is None and table.get("") is None and list(table.items()) == []


def _call(app, environ):
    seen = {}
    body = b"".join(app(environ, lambda status, headers: seen.update(status=status, headers=dict(headers))))
    return seen["status"], seen["headers"], body


def test_another_services_requests_are_refused_in_their_own_shape():
    query = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8"}
    status, headers, body = _call(services.app_for("sns"), query)
    error = ET.fromstring(body).find("Error")
    assert status.startswith("400") and error.find("Code").text == "NotImplemented"
    assert "the AWS service sns:" in error.find("Message").text
    target = {"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "Logs_20140328.CreateLogGroup",
              "CONTENT_TYPE": "application/x-amz-json-1.1"}
    status, headers, body = _call(services.app_for("logs"), target)
    doc = json.loads(body)
    assert doc["__type"] == headers["x-amzn-ErrorType"] == "NotImplemented"
    assert "service logs (CreateLogGroup)" in doc["message"]
    # a name that is not one is not echoed
    _, _, body = _call(services.app_for("<script>"), {**target, "HTTP_X_AMZ_TARGET": "x.<b>"})
    assert "<" not in json.loads(body)["message"].split(":")[0]
    # shapes: Query (form body or Action= in the query), JSON (target or content type), else S3's
    assert services.shape_of(query) == "query" and services.shape_of({"QUERY_STRING": "Action=ListTopics"}) == "query"
    assert services.shape_of(target) == "json" == services.shape_of({"CONTENT_TYPE": "application/x-amz-json-1.0"})
    assert services.shape_of({"REQUEST_METHOD": "GET", "QUERY_STRING": "list-type=2"}) is None
    assert services.shape_of({"REQUEST_METHOD": "PUT", "CONTENT_TYPE": "application/json"}) is None
