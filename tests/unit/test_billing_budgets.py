"""Budgets: validation with the Budgets service's codes, another account's budgets, alerts that
fire once per threshold per period, and the stop-instances action through the services."""
from __future__ import annotations

import pytest

from emulator.billing import clock as clk
from emulator.errors import AlreadyExists, Forbidden, InvalidParameter, NotFound

from .billing_fakes import make_cloud

SUBS = [{"SubscriptionType": "EMAIL", "Address": "me@example.com"}]


def budget(name="b", amount="1", unit="MONTHLY", **kw):
    return {"BudgetName": name, "BudgetLimit": {"Amount": amount, "Unit": "USD"}, "TimeUnit": unit,
            "BudgetType": "COST", **kw}


def note(kind="ACTUAL", threshold=50.0, ttype="PERCENTAGE"):
    return {"Notification": {"NotificationType": kind, "ComparisonOperator": "GREATER_THAN", "Threshold": threshold,
                             "ThresholdType": ttype}, "Subscribers": SUBS}


@pytest.fixture
def cloud(tmp_path, wall):
    c = make_cloud(tmp_path, scale="3600")
    c.alice = c.accounts.create("alice")[0]
    c.bob = c.accounts.create("bob")[0]
    c.admin = c.accounts.by_name("admin")
    c.billing.meter_now()
    return c


@pytest.mark.parametrize("b, words", [
    (budget(amount="-5"), "positive number"),
    (budget(amount="0"), "positive number"),
    (budget(amount="ten"), "positive number"),
    (budget(unit="WEEKLY"), "TimeUnit"),
    (budget(unit="CUSTOM"), "CUSTOM budget needs"),
    (budget(BudgetType="USAGE"), "track COST"),
    (budget(name="a:b"), "BudgetName"),
    (budget(CostFilters={"Bogus": ["x"]}), "CostFilters"),
    ({**budget(), "BudgetLimit": {"Amount": "5", "Unit": "EUR"}}, "USD"),
])
def test_bad_budgets_are_refused_and_nothing_is_created(cloud, b, words):
    with pytest.raises(InvalidParameter) as e:
        cloud.billing.budgets.create(cloud.alice, cloud.alice.id, b)
    assert e.value.code == "InvalidParameterException" and words in str(e.value)
    assert cloud.billing.budgets.list(cloud.alice, cloud.alice.id) == []


def test_another_accounts_budgets_answer_as_missing(cloud):
    budgets = cloud.billing.budgets
    budgets.create(cloud.bob, cloud.bob.id, budget("bobs"))
    with pytest.raises(NotFound) as e:
        budgets.describe(cloud.alice, cloud.bob.id, "bobs")
    assert e.value.code == "NotFoundException"
    with pytest.raises(NotFound):
        budgets.delete(cloud.alice, cloud.bob.id, "bobs")
    with pytest.raises(Forbidden) as e:
        budgets.create(cloud.alice, cloud.bob.id, budget("mine-on-bob"))
    assert e.value.code == "AccessDeniedException"
    with pytest.raises(NotFound):
        budgets.describe(cloud.alice, cloud.alice.id, "bobs")
    assert budgets.describe(cloud.admin, cloud.bob.id, "bobs")["BudgetName"] == "bobs"  # an admin manages any
    assert [b["BudgetName"] for b in budgets.list(cloud.bob, cloud.bob.id)] == ["bobs"]


def test_duplicates_and_limits(cloud):
    budgets = cloud.billing.budgets
    budgets.create(cloud.alice, cloud.alice.id, budget(), [note()])
    with pytest.raises(AlreadyExists) as e:
        budgets.create(cloud.alice, cloud.alice.id, budget())
    assert e.value.code == "DuplicateRecordException"
    with pytest.raises(AlreadyExists):
        budgets.create_notification(cloud.alice, cloud.alice.id, "b", note()["Notification"], SUBS)
    budgets.update(cloud.alice, cloud.alice.id, budget(amount="2"))
    assert budgets.describe(cloud.alice, cloud.alice.id, "b")["BudgetLimit"]["Amount"] == "2"


def test_alerts_fire_once_per_threshold_per_period(cloud, wall):
    budgets = cloud.billing.budgets
    budgets.create(cloud.alice, cloud.alice.id, budget(amount="0.5", unit="DAILY"),
                   [note("ACTUAL", 50), note("FORECASTED", 100)])
    cloud.run_instance(cloud.alice, image="tiny", type="m5.large")
    wall.advance(2)                      # 2 billed hours: $0.192 < $0.25
    cloud.billing.meter_now()
    assert [a["trigger"] for a in budgets.evaluate()] == ["FORECASTED:GREATER_THAN:100:PERCENTAGE"]
    wall.advance(1)                      # $0.288 > 50% of $0.50
    cloud.billing.meter_now()
    assert [a["trigger"] for a in budgets.evaluate()] == ["ACTUAL:GREATER_THAN:50:PERCENTAGE"]
    for _ in range(3):
        wall.advance(1)
        cloud.billing.meter_now()
        assert budgets.evaluate() == []  # crossed already in this period
    states = {n["NotificationType"]: n["NotificationState"] for n in budgets.notifications(
        cloud.alice, cloud.alice.id, "b")}
    assert states == {"ACTUAL": "ALARM", "FORECASTED": "ALARM"}
    now = cloud.billing.clock.now()
    wall.advance((clk.day_start(now) + 86400 - now) + 4)  # into the next billed day, still running
    cloud.billing.meter_now()
    fired = budgets.evaluate()
    assert {a["trigger"] for a in fired} == {"ACTUAL:GREATER_THAN:50:PERCENTAGE", "FORECASTED:GREATER_THAN:100:PERCENTAGE"}
    assert len(budgets.alerts([cloud.alice.id])) == 4 and budgets.alerts([cloud.bob.id]) == []


def test_the_stop_action_stops_the_accounts_running_instances_as_their_owner(cloud, wall):
    budgets = cloud.billing.budgets
    budgets.create(cloud.alice, cloud.alice.id, budget(amount="0.1"))
    action = budgets.create_action(cloud.alice, cloud.alice.id, "b", {
        "ActionType": "RUN_SSM_DOCUMENTS", "NotificationType": "ACTUAL",
        "ActionThreshold": {"ActionThresholdValue": 100, "ActionThresholdType": "PERCENTAGE"},
        "Definition": {"SsmActionDefinition": {"ActionSubType": "STOP_EC2_INSTANCES", "Region": "us-east-1",
                                               "InstanceIds": []}}})
    mine = [cloud.run_instance(cloud.alice, image="tiny", type="m5.large") for _ in range(2)]
    bobs = cloud.run_instance(cloud.bob, image="tiny", type="m5.large")
    wall.advance(2)
    cloud.billing.meter_now()
    fired = budgets.evaluate()
    assert len(fired) == 1 and sorted(fired[0]["action"]["stopped"]) == sorted(i.id for i in mine)
    assert all(cloud.get_instance(cloud.alice, i.id).state == "stopped" for i in mine)
    assert cloud.get_instance(cloud.bob, bobs.id).state == "running", "only the budget's account"
    assert budgets.action(cloud.alice, cloud.alice.id, "b", action)["Status"] == "EXECUTION_SUCCESS"
    with pytest.raises(InvalidParameter):
        budgets.create_action(cloud.alice, cloud.alice.id, "b", {"ActionType": "APPLY_IAM_POLICY"})


def test_a_manual_action_waits_for_approval(cloud, wall):
    budgets = cloud.billing.budgets
    budgets.create(cloud.alice, cloud.alice.id, budget(amount="0.1"))
    action = budgets.create_action(cloud.alice, cloud.alice.id, "b", {
        "ActionType": "RUN_SSM_DOCUMENTS", "NotificationType": "ACTUAL", "ApprovalModel": "MANUAL",
        "ActionThreshold": {"ActionThresholdValue": 100, "ActionThresholdType": "PERCENTAGE"},
        "Definition": {"SsmActionDefinition": {"ActionSubType": "STOP_EC2_INSTANCES", "InstanceIds": []}}})
    inst = cloud.run_instance(cloud.alice, image="tiny", type="m5.large")
    wall.advance(2)
    cloud.billing.meter_now()
    budgets.evaluate()
    assert budgets.action(cloud.alice, cloud.alice.id, "b", action)["Status"] == "PENDING"
    assert cloud.get_instance(cloud.alice, inst.id).state == "running"
    budgets.execute_action(cloud.alice, cloud.alice.id, "b", action, "APPROVE_BUDGET_ACTION")
    assert cloud.get_instance(cloud.alice, inst.id).state == "stopped"


def test_budget_filters_count_only_matching_costs(cloud, wall):
    budgets = cloud.billing.budgets
    budgets.create(cloud.alice, cloud.alice.id, budget("s3-only", amount="5",
                                                       CostFilters={"Service": ["Amazon Simple Storage Service"]}))
    cloud.run_instance(cloud.alice, image="tiny", type="m5.large")
    wall.advance(5)
    cloud.billing.meter_now()
    assert float(budgets.describe(cloud.alice, cloud.alice.id, "s3-only")["CalculatedSpend"]["ActualSpend"]
                 ["Amount"]) == 0
    assert budgets.evaluate() == []
