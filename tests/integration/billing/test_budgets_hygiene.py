"""Budgets that fire once per threshold per period and stop instances; the hygiene report,
which must find exactly the waste a test planted, with commands that really clean it up."""
from __future__ import annotations

import secrets
import shlex
import time

import pytest

from tests.integration.test_cli import Cli

from .conftest import account_id, aws, client

pytestmark = pytest.mark.integration


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_budget_alerts_fire_once_and_the_action_stops_the_instance(bserver, buser, tmp_path):
    me = account_id(buser)
    budgets = client(bserver, buser, "budgets")
    subs = [{"SubscriptionType": "EMAIL", "Address": "student@example.com"}]
    budgets.create_budget(AccountId=me, Budget={"BudgetName": "class", "BudgetLimit": {"Amount": "0.05", "Unit": "USD"},
                                                "TimeUnit": "MONTHLY", "BudgetType": "COST"},
                          NotificationsWithSubscribers=[
                              {"Notification": {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN",
                                                "Threshold": 50, "ThresholdType": "PERCENTAGE"}, "Subscribers": subs},
                              {"Notification": {"NotificationType": "FORECASTED", "ComparisonOperator": "GREATER_THAN",
                                                "Threshold": 100, "ThresholdType": "PERCENTAGE"}, "Subscribers": subs}])
    inst = buser.ok("POST", "/instances", 201, json={"image": "tiny", "type": "m5.large"})
    keep = buser.ok("POST", "/instances", 201, json={"image": "tiny", "type": "t2.nano"})
    try:
        action = budgets.create_budget_action(
            AccountId=me, BudgetName="class", NotificationType="ACTUAL", ActionType="RUN_SSM_DOCUMENTS",
            ActionThreshold={"ActionThresholdValue": 100, "ActionThresholdType": "PERCENTAGE"},
            Definition={"SsmActionDefinition": {"ActionSubType": "STOP_EC2_INSTANCES", "Region": "us-east-1",
                                                "InstanceIds": [inst["id"]]}},
            ExecutionRoleArn=f"arn:aws:iam::{me}:role/budgets-stop", ApprovalModel="AUTOMATIC",
            Subscribers=subs)["ActionId"]
        # $0.05 at $0.096 per billed hour and 10 real seconds per billed hour: about 5 s.
        wait_for(lambda: buser.ok("GET", f"/instances/{inst['id']}")["state"] == "stopped", 60,
                 "the budget action to stop the instance")
        assert buser.ok("GET", f"/instances/{keep['id']}")["state"] == "running", "only the listed instance"
        # The action records its outcome after its last stop: a client polls, as on AWS (read at once,
        # a loaded machine answered EXECUTION_IN_PROGRESS)
        status = lambda: budgets.describe_budget_action(AccountId=me, BudgetName="class", ActionId=action)[  # noqa: E731
            "Action"]["Status"]
        wait_for(lambda: status() != "EXECUTION_IN_PROGRESS", 30, "the action to record its outcome")
        assert status() == "EXECUTION_SUCCESS"
        time.sleep(3)  # more passes: nothing may fire twice
        alerts = buser.ok("GET", "/billing/alerts")["alerts"]
        per = {}
        for a in alerts:
            per.setdefault((a["trigger"], a["period"]["start"]), []).append(a["id"])
        assert all(len(ids) == 1 for ids in per.values()), per
        triggers = {t for t, _ in per}
        assert {"ACTUAL:GREATER_THAN:50:PERCENTAGE", "FORECASTED:GREATER_THAN:100:PERCENTAGE",
                f"action:{action}"} <= triggers
        stop = next(a for a in alerts if a["trigger"] == f"action:{action}")
        assert stop["action"]["stopped"] == [inst["id"]] and "stopped 1 instance" in stop["message"]
        notes = budgets.describe_notifications_for_budget(AccountId=me, BudgetName="class")["Notifications"]
        assert {n["NotificationState"] for n in notes} == {"ALARM"}
        spend = budgets.describe_budget(AccountId=me, BudgetName="class")["Budget"]["CalculatedSpend"]
        assert float(spend["ActualSpend"]["Amount"]) > 0.025
        cli = Cli(bserver, buser, tmp_path / "cli")
        assert "stopped 1 instance(s)" in cli("bill", "alerts").stdout
        table = cli("bill", "budgets").stdout
        assert "class" in table and "actual 50%!" in table
        assert cli.json("bill", "alerts")["alerts"][0]["id"] == max(a["id"] for a in alerts)
    finally:
        for i in (inst, keep):
            buser("DELETE", f"/instances/{i['id']}")


def test_hygiene_finds_exactly_the_planted_waste_and_its_commands_clean_it(bserver, buser, tmp_path):
    s3 = client(bserver, buser, "s3")
    ec2 = client(bserver, buser, "ec2")
    tag = secrets.token_hex(3)
    ami = ec2.describe_images(Filters=[{"Name": "name", "Values": ["tiny-container"]}])["Images"][0]["ImageId"]
    # What is in use: a busy instance with a key pair and a security group, a bucket being read.
    buser.ok("POST", "/keys", 201, json={"name": f"used-{tag}"})
    used_sg = ec2.create_security_group(GroupName=f"used-{tag}", Description="in use")["GroupId"]
    busy = ec2.run_instances(ImageId=ami, InstanceType="t2.micro", MinCount=1, MaxCount=1, KeyName=f"used-{tag}",
                             SecurityGroupIds=[used_sg])["Instances"][0]["InstanceId"]
    buser.ok("POST", f"/instances/{busy}/exec", json={
        "command": ["sh", "-c", "(timeout 120 sh -c 'while :; do :; done' &) ; echo burning"]})
    s3.create_bucket(Bucket=f"used-{tag}")
    s3.put_object(Bucket=f"used-{tag}", Key="k", Body=b"x" * 1000)
    # The planted waste.
    idle = buser.ok("POST", "/instances", 201, json={"image": "tiny", "type": "t2.small", "name": f"idle-{tag}"})["id"]
    stopped = buser.ok("POST", "/instances", 201, json={"image": "tiny", "type": "t2.nano"})["id"]
    buser.ok("POST", f"/instances/{stopped}/stop")
    s3.create_bucket(Bucket=f"empty-{tag}")
    s3.create_bucket(Bucket=f"parts-{tag}")
    upload = s3.create_multipart_upload(Bucket=f"parts-{tag}", Key="big.bin")["UploadId"]
    s3.upload_part(Bucket=f"parts-{tag}", Key="big.bin", UploadId=upload, PartNumber=1, Body=b"p" * (5 << 20))
    key = buser.ok("POST", "/keys", 201, json={"name": f"spare-{tag}"})
    spare_sg = ec2.create_security_group(GroupName=f"spare-{tag}", Description="unused")["GroupId"]
    planted = {("idle-instance", idle), ("stopped-instance", stopped), ("empty-bucket", f"empty-{tag}"),
               ("incomplete-multipart-upload", upload), ("unused-key-pair", key["id"]),
               ("unused-security-group", spare_sg)}
    cli = Cli(bserver, buser, tmp_path / "cli")
    try:
        time.sleep(28)  # the idle window below, watched by the meter's engine samples
        s3.get_object(Bucket=f"used-{tag}", Key="k")["Body"].read()
        report = buser.ok("GET", "/billing/hygiene", params={"idle_minutes": 0.4, "cpu_percent": 5})
        found = {(i["kind"], i["resource"]) for i in report["items"]}
        assert found == planted, report["items"]
        by_kind = {i["kind"]: i for i in report["items"]}
        assert by_kind["idle-instance"]["monthly_cost"] == pytest.approx(0.023 * 730)
        assert by_kind["incomplete-multipart-upload"]["monthly_cost"] == pytest.approx(5 / 1024 * 0.023, rel=1e-3)
        assert report["monthly_total"] == pytest.approx(sum(i["monthly_cost"] for i in report["items"]))
        # The CLI shows each one with its command; run them (idle -> stop leaves a stopped one -> rm).
        text = cli("hygiene", "--idle-minutes", "0.4").stdout
        for item in report["items"]:
            assert item["cleanup"] in text
            run_cleanup(bserver, buser, cli, item["cleanup"])
        # Stopping the idle one leaves a stopped one; aborting the upload leaves an empty bucket.
        after = cli.json("hygiene", "--idle-minutes", "0.4")["items"]
        assert {(i["kind"], i["resource"]) for i in after} == {("stopped-instance", idle),
                                                               ("empty-bucket", f"parts-{tag}")}
        for item in after:
            run_cleanup(bserver, buser, cli, item["cleanup"])
        assert cli.json("hygiene", "--idle-minutes", "0.4")["items"] == []
    finally:
        for iid in (busy, idle, stopped):
            buser("DELETE", f"/instances/{iid}")
        for b in (f"used-{tag}", f"empty-{tag}", f"parts-{tag}"):
            buser("DELETE", f"/buckets/{b}", params={"force": "true"})


def run_cleanup(server, api, cli: Cli, command: str) -> None:
    argv = shlex.split(command)
    if argv[0] == "pocketcloud":
        cli(*argv[1:])
    else:
        proc = aws(server, api, *argv[1:])
        assert proc.returncode == 0, (command, proc.stderr)
