"""EC2 actions pocketcloud does not serve yet, and IAM: refused by name with a reason, never
a DryRunOperation, never listed as implemented; a served handler wins over a refusal."""
from __future__ import annotations

import pytest

from api import ec2
from api.ec2 import unserved
from api.sts import iam
from emulator import errors as e


@pytest.mark.parametrize("action", ["CreateVolume", "AllocateAddress", "CreateImage", "RequestSpotInstances"])
def test_unserved_ec2_actions_say_why_even_on_a_dry_run(action):
    handler = ec2._dry_run(ec2.ACTIONS[action])
    for p in ({"Action": action}, {"Action": action, "DryRun": "true"}):
        with pytest.raises(e.InvalidParameter) as exc:
            handler(None, None, p)
        assert exc.value.code == "UnsupportedOperation" and str(exc.value).startswith(action + " is not")


def test_a_served_action_is_never_refused():
    served = {a for a, h in ec2.ACTIONS.items() if not getattr(h, "refuses", False)}
    assert {"RunInstances", "DescribeVolumes", "CreateTags"} <= served
    assert not served & set(unserved.ACTIONS)
    assert getattr(ec2.ACTIONS["CreateVpc"], "refuses", False)  # not yet: refused, not served


def test_iam_refuses_every_well_formed_action_by_name():
    table = iam.EveryAction()
    for action in ("CreateRole", "ListRoles", "GetUser"):
        with pytest.raises(e.InvalidParameter) as exc:
            table.get(action)(None, None, {"Action": action})
        assert exc.value.code == "NotImplemented" and f"IAM ({action})" in str(exc.value)
    assert table.get("not an action") is None and table.get("") is None and list(table.items()) == []
