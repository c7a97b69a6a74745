"""Budget actions: what a budget does when crossed. pocketcloud offers the one that matters on
a personal cloud, RUN_SSM_DOCUMENTS with STOP_EC2_INSTANCES: the listed instances (or, with no
list, every running instance of the account) are stopped through the services, as their
owner, exactly as `pocketcloud instances stop` would. MANUAL actions wait in PENDING until
ExecuteBudgetAction approves them."""
from __future__ import annotations

import json
import uuid

from ..errors import CloudError, NotFound, QuotaExceeded
from .budget_shapes import bad, notification, subscribers

MAX_ACTIONS = 10


class BudgetActions:
    """Mixed into Budgets (which provides store, cloud, account(), _get())."""

    # -- actions: stop EC2 instances ---------------------------------------------------------------------------
    def create_action(self, caller, account_id, name, req: dict) -> str:
        account = self.account(caller, account_id)
        self._get(account, name)
        if req.get("ActionType") != "RUN_SSM_DOCUMENTS":
            raise bad("pocketcloud budget actions are RUN_SSM_DOCUMENTS with STOP_EC2_INSTANCES")
        ssm = (req.get("Definition") or {}).get("SsmActionDefinition") or {}
        if ssm.get("ActionSubType") != "STOP_EC2_INSTANCES":
            raise bad("the action's SsmActionDefinition.ActionSubType must be STOP_EC2_INSTANCES")
        ids = ssm.get("InstanceIds") or []
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > 100:
            raise bad("InstanceIds must be a list of up to 100 instance ids (empty: every running instance, "
                      "a pocketcloud extension)")
        thr = req.get("ActionThreshold") or {}
        n = notification({"NotificationType": req.get("NotificationType"), "ComparisonOperator": "GREATER_THAN",
                          "Threshold": thr.get("ActionThresholdValue"), "ThresholdType": thr.get("ActionThresholdType")})
        if req.get("ApprovalModel", "AUTOMATIC") not in ("AUTOMATIC", "MANUAL"):
            raise bad("ApprovalModel must be AUTOMATIC or MANUAL")
        action_id = str(uuid.uuid4())
        body = {"ActionId": action_id, "BudgetName": name, "NotificationType": n["NotificationType"],
                "ActionType": "RUN_SSM_DOCUMENTS",
                "ActionThreshold": {"ActionThresholdValue": n["Threshold"], "ActionThresholdType": n["ThresholdType"]},
                "Definition": {"SsmActionDefinition": {"ActionSubType": "STOP_EC2_INSTANCES",
                                                       "Region": ssm.get("Region") or self.cloud.config.region,
                                                       "InstanceIds": ids}},
                "ExecutionRoleArn": req.get("ExecutionRoleArn") or f"arn:aws:iam::{account}:role/pocketcloud-budgets",
                "ApprovalModel": req.get("ApprovalModel", "AUTOMATIC"),
                "Subscribers": subscribers(req.get("Subscribers"), required=False)}
        with self.store.tx() as c:
            if c.execute("SELECT COUNT(*) FROM budget_actions WHERE account=? AND budget=?",
                         (account, name)).fetchone()[0] >= MAX_ACTIONS:
                raise QuotaExceeded(f"a budget has at most {MAX_ACTIONS} actions",
                                    code="CreationLimitExceededException")
            c.execute("INSERT INTO budget_actions (id, account, budget, body) VALUES (?,?,?,?)",
                      (action_id, account, name, json.dumps(body)))
        return action_id

    def _action_row(self, account: str, name, action_id):
        row = self.store.one("SELECT * FROM budget_actions WHERE id=? AND account=? AND budget=?",
                             (action_id if isinstance(action_id, str) else "", account, name))
        if row is None:
            raise NotFound(f"action {str(action_id)[:40]} does not exist", code="NotFoundException")
        return row

    def actions(self, caller, account_id, name) -> list[dict]:
        account = self.account(caller, account_id)
        self._get(account, name)
        return [{**json.loads(r["body"]), "Status": r["status"]} for r in self.store.query(
            "SELECT * FROM budget_actions WHERE account=? AND budget=? ORDER BY id", (account, name))]

    def action(self, caller, account_id, name, action_id) -> dict:
        account = self.account(caller, account_id)
        r = self._action_row(account, name, action_id)
        return {**json.loads(r["body"]), "Status": r["status"]}

    def delete_action(self, caller, account_id, name, action_id) -> dict:
        account = self.account(caller, account_id)
        r = self._action_row(account, name, action_id)
        with self.store.tx() as c:
            c.execute("DELETE FROM budget_actions WHERE id=?", (r["id"],))
        return {**json.loads(r["body"]), "Status": r["status"]}

    def execute_action(self, caller, account_id, name, action_id, execution_type: str) -> None:
        """MANUAL actions wait in PENDING until approved (ExecuteBudgetAction APPROVE_BUDGET_ACTION)."""
        account = self.account(caller, account_id)
        r = self._action_row(account, name, action_id)
        if execution_type not in ("APPROVE_BUDGET_ACTION", "RESET_BUDGET_ACTION"):
            raise bad("pocketcloud executes APPROVE_BUDGET_ACTION and RESET_BUDGET_ACTION")
        if execution_type == "RESET_BUDGET_ACTION":
            self._set_status(r["id"], "STANDBY")
            return
        if r["status"] != "PENDING":
            raise bad(f"the action is {r['status']}, not PENDING approval")
        self._run_action(account, json.loads(r["body"]))

    def _set_status(self, action_id: str, status: str) -> None:
        with self.store.tx() as c:
            c.execute("UPDATE budget_actions SET status=? WHERE id=?", (status, action_id))

    def _run_action(self, account: str, body: dict) -> dict:
        """Stop the instances, as their owner, through the services (what any stop does)."""
        self._set_status(body["ActionId"], "EXECUTION_IN_PROGRESS")
        owner = self.cloud.accounts.get(account)
        wanted = body["Definition"]["SsmActionDefinition"]["InstanceIds"]
        targets = wanted or [i.id for i in self.cloud.describe_instances(owner, state="running")]
        stopped, failed = [], {}
        for iid in targets:
            try:
                self.cloud.stop_instance(owner, iid)
                stopped.append(iid)
            except CloudError as e:
                failed[iid] = f"{e.code}: {e}"
        self._set_status(body["ActionId"], "EXECUTION_FAILURE" if failed else "EXECUTION_SUCCESS")
        return {"action_id": body["ActionId"], "stopped": stopped, "failed": failed}
