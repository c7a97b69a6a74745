"""AWS Budgets on the billing clock: cost budgets per account, notifications at ACTUAL or
FORECASTED thresholds, and the one action pocketcloud can take (stop EC2 instances).

A crossed threshold fires once per period: the alert row is unique on (account, budget,
trigger, period start), so a restart, a second pass or a second server thread cannot fire it
twice. Alerts go to a feed (REST, CLI, console) instead of e-mail or SNS; subscribers are kept
as given. Errors carry the Budgets service's codes.
"""
from __future__ import annotations

import json
import logging
import re
import time
from datetime import datetime, timezone

from ..errors import AlreadyExists, Forbidden, InvalidParameter, NotFound, QuotaExceeded
from . import clock as clk
from .budget_actions import BudgetActions
from .budget_shapes import MAX_SUBSCRIBERS, bad, note_key, notification, subscribers
from .reports import DIMENSIONS, Reports, compile_filter

log = logging.getLogger("pocketcloud.billing")
TIME_UNITS = ("DAILY", "MONTHLY", "QUARTERLY", "ANNUALLY", "CUSTOM")
OPERATORS = ("GREATER_THAN", "LESS_THAN", "EQUAL_TO")
DEFAULT_END = 3706473600.0  # 2087-06-15, the end AWS gives budgets without one
MAX_BUDGETS, MAX_NOTIFICATIONS = 100, 10
NAME = re.compile(r"^[^:\\]{1,100}$")
ACCOUNT_ID = re.compile(r"^\d{12}$")
AMOUNT = re.compile(r"^([0-9]*\.)?[0-9]+$")
LEGACY_FILTERS = {"Service": "SERVICE", "UsageType": "USAGE_TYPE", "LinkedAccount": "LINKED_ACCOUNT",
                  "Region": "REGION", "InstanceType": "INSTANCE_TYPE", "Operation": "OPERATION",
                  "UsageTypeGroup": "USAGE_TYPE_GROUP"}


def _ts(value, what: str) -> float:
    if isinstance(value, bool):
        raise bad(f"{what} must be a timestamp")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(
                tzinfo=timezone.utc).timestamp() if "T" in value else clk.parse_date(value, what)
        except (ValueError, InvalidParameter):
            pass
    raise bad(f"{what} must be a timestamp")


def cost_predicate(budget: dict):
    """A budget's CostFilters (the legacy map) or FilterExpression, as a row predicate."""
    if budget.get("FilterExpression"):
        return compile_filter(budget["FilterExpression"])
    parts = []
    for k, values in (budget.get("CostFilters") or {}).items():
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise bad(f"CostFilters {k} must list values")
        if k == "TagKeyValue":
            pairs = [v.removeprefix("user:").split("$", 1) for v in values]
            parts.append(lambda r, pairs=pairs: any(r["tags"].get(p[0]) == (p[1] if len(p) > 1 else "")
                                                    for p in pairs))
        elif k in LEGACY_FILTERS:
            get = DIMENSIONS[LEGACY_FILTERS[k]]
            parts.append(lambda r, get=get, values=set(values): get(r) in values)
        else:
            raise bad(f"unsupported CostFilters key {str(k)[:40]!r}; pocketcloud filters on "
                      f"{', '.join(sorted(LEGACY_FILTERS))} and TagKeyValue")
    return (lambda r: all(p(r) for p in parts)) if parts else None


class Budgets(BudgetActions):
    def __init__(self, cloud, clock: clk.BillingClock, reports: Reports):
        self.cloud = cloud
        self.store = cloud.store
        self.clock = clock
        self.reports = reports

    # -- whose budgets --------------------------------------------------------------------------
    def account(self, caller, account_id, creating: bool = False) -> str:
        """The account a request names: one's own, or any (existing) account for an admin. Another
        account's budgets answer as missing (create answers AccessDenied)."""
        if not isinstance(account_id, str) or not ACCOUNT_ID.match(account_id):
            raise bad("AccountId must be a 12-digit account id (`pocketcloud accounts ls` or GET /api/v1/accounts/me)")
        if account_id == caller.id:
            return account_id
        if not caller.is_admin:
            if creating:
                raise Forbidden(f"you cannot create budgets for account {account_id}", code="AccessDeniedException")
            raise NotFound(f"account {account_id} has no budget visible to you", code="NotFoundException")
        try:
            self.cloud.accounts.get(account_id)
        except NotFound:
            raise NotFound(f"account {account_id} does not exist", code="NotFoundException") from None
        return account_id

    # -- budgets ------------------------------------------------------------------------------------
    def _clean(self, b, existing: dict | None = None) -> dict:
        if not isinstance(b, dict):
            raise bad("Budget must be an object with BudgetName, BudgetLimit, TimeUnit and BudgetType")
        name = b.get("BudgetName")
        if not isinstance(name, str) or not NAME.match(name) or "/action/" in name:
            raise bad("BudgetName must be 1-100 characters without ':' or '\\'")
        if b.get("BudgetType", "COST") != "COST":
            raise bad(f"pocketcloud budgets track COST, not {str(b.get('BudgetType'))[:30]}")
        unit = b.get("TimeUnit")
        if unit not in TIME_UNITS:
            raise bad(f"TimeUnit must be one of {', '.join(TIME_UNITS)}")
        for unsupported in ("PlannedBudgetLimits", "AutoAdjustData", "BillingViewArn"):
            if b.get(unsupported):
                raise bad(f"pocketcloud budgets do not support {unsupported}")
        limit = b.get("BudgetLimit")
        if not isinstance(limit, dict) or not isinstance(limit.get("Amount"), str):
            raise bad("a COST budget needs BudgetLimit {Amount, Unit}")
        if not AMOUNT.match(limit["Amount"].strip()) or float(limit["Amount"]) <= 0:
            raise bad(f"BudgetLimit.Amount must be a positive number, not {limit['Amount'][:30]!r}")
        if limit.get("Unit", "USD") != "USD":
            raise bad("BudgetLimit.Unit must be USD")
        now = self.clock.now()
        period = b.get("TimePeriod") or {}
        if not isinstance(period, dict):
            raise bad("TimePeriod must have Start and End")
        if unit == "CUSTOM" and not (period.get("Start") and period.get("End")):
            raise bad("a CUSTOM budget needs TimePeriod Start and End")
        start = _ts(period["Start"], "TimePeriod.Start") if period.get("Start") else (
            (existing or {}).get("TimePeriod", {}).get("Start")
            or clk.period_start(now, unit if unit != "CUSTOM" else "DAILY"))
        end = _ts(period["End"], "TimePeriod.End") if period.get("End") else DEFAULT_END
        if end <= start:
            raise bad("TimePeriod.End must be after TimePeriod.Start")
        out = {"BudgetName": name, "BudgetLimit": {"Amount": limit["Amount"].strip(), "Unit": "USD"},
               "TimeUnit": unit, "TimePeriod": {"Start": start, "End": end}, "BudgetType": "COST"}
        for k in ("CostFilters", "FilterExpression", "CostTypes"):
            if b.get(k):
                out[k] = b[k]
        cost_predicate(out)  # validates the filters
        return out

    def _get(self, account: str, name) -> dict:
        if not isinstance(name, str):
            raise bad("BudgetName is required")
        row = self.store.one("SELECT body FROM budgets WHERE account=? AND name=?", (account, name))
        if row is None:
            raise NotFound(f"budget {name[:100]!r} does not exist", code="NotFoundException")
        return json.loads(row["body"])

    def create(self, caller, account_id, budget, notes=None) -> None:
        account = self.account(caller, account_id, creating=True)
        b = self._clean(budget)
        notes = notes or []
        if not isinstance(notes, list) or len(notes) > MAX_NOTIFICATIONS:
            raise bad(f"a budget has at most {MAX_NOTIFICATIONS} notifications")
        cleaned = []
        for nws in notes:
            if not isinstance(nws, dict):
                raise bad("NotificationsWithSubscribers entries need Notification and Subscribers")
            n = notification(nws.get("Notification"))
            cleaned.append((n, subscribers(nws.get("Subscribers"))))
        if len({note_key(n) for n, _ in cleaned}) != len(cleaned):
            raise AlreadyExists("the same notification is given twice", code="DuplicateRecordException")
        now = time.time()
        with self.store.tx() as c:
            if c.execute("SELECT COUNT(*) FROM budgets WHERE account=?", (account,)).fetchone()[0] >= MAX_BUDGETS:
                raise QuotaExceeded(f"an account has at most {MAX_BUDGETS} budgets",
                                    code="CreationLimitExceededException")
            if c.execute("SELECT 1 FROM budgets WHERE account=? AND name=?", (account, b["BudgetName"])).fetchone():
                raise AlreadyExists(f"the budget {b['BudgetName']!r} already exists", code="DuplicateRecordException")
            c.execute("INSERT INTO budgets (account, name, body, created_at, updated_at) VALUES (?,?,?,?,?)",
                      (account, b["BudgetName"], json.dumps(b), now, now))
            for n, subs in cleaned:
                c.execute("INSERT INTO budget_notifications (account, budget, key, body, subscribers) VALUES (?,?,?,?,?)",
                          (account, b["BudgetName"], note_key(n), json.dumps(n), json.dumps(subs)))

    def update(self, caller, account_id, budget) -> None:
        account = self.account(caller, account_id)
        name = budget.get("BudgetName") if isinstance(budget, dict) else None
        old = self._get(account, name)
        b = self._clean(budget, existing=old)
        with self.store.tx() as c:
            c.execute("UPDATE budgets SET body=?, updated_at=? WHERE account=? AND name=?",
                      (json.dumps(b), time.time(), account, name))

    def delete(self, caller, account_id, name) -> None:
        account = self.account(caller, account_id)
        self._get(account, name)
        with self.store.tx() as c:
            c.execute("DELETE FROM budgets WHERE account=? AND name=?", (account, name))
            c.execute("DELETE FROM billing_alerts WHERE account=? AND budget=?", (account, name))

    def describe(self, caller, account_id, name) -> dict:
        account = self.account(caller, account_id)
        return self._view(account, self._get(account, name))

    def list(self, caller, account_id) -> list[dict]:
        account = self.account(caller, account_id)
        return [self._view(account, json.loads(r["body"])) for r in self.store.query(
            "SELECT body FROM budgets WHERE account=? ORDER BY name", (account,))]

    def _view(self, account: str, b: dict) -> dict:
        actual, forecast, _, _ = self.spend(account, b)
        row = self.store.one("SELECT updated_at FROM budgets WHERE account=? AND name=?", (account, b["BudgetName"]))
        return {**b, "CalculatedSpend": {"ActualSpend": {"Amount": f"{actual:.10f}", "Unit": "USD"},
                                         "ForecastedSpend": {"Amount": f"{forecast:.10f}", "Unit": "USD"}},
                "LastUpdatedTime": row["updated_at"] if row else None}

    # -- spend on the billing clock ----------------------------------------------------------------------
    def period(self, b: dict, now: float) -> tuple[float, float] | None:
        start, end = b["TimePeriod"]["Start"], b["TimePeriod"]["End"]
        if not start <= now < end:
            return None
        if b["TimeUnit"] == "CUSTOM":
            return start, end
        ps = clk.period_start(now, b["TimeUnit"])
        return ps, clk.period_end(ps, b["TimeUnit"])

    def spend(self, account: str, b: dict) -> tuple[float, float, float, float]:
        """(actual, forecast, period start, period end) of the budget's current period."""
        now = self.clock.now()
        p = self.period(b, now)
        if p is None:
            return 0.0, 0.0, 0.0, 0.0
        pred = cost_predicate(b)
        actual = self.reports.cost_between([account], p[0], now, pred)
        rate = self.reports.rate([account], pred) or 0.0
        return actual, actual + rate * max(0.0, p[1] - now), p[0], p[1]

    # -- notifications and subscribers ---------------------------------------------------------------------
    def _note(self, account: str, name, n) -> tuple[dict, str]:
        self._get(account, name)
        n = notification(n)
        key = note_key(n)
        if not self.store.one("SELECT 1 FROM budget_notifications WHERE account=? AND budget=? AND key=?",
                              (account, name, key)):
            raise NotFound("no such notification on this budget", code="NotFoundException")
        return n, key

    def create_notification(self, caller, account_id, name, n, subs) -> None:
        account = self.account(caller, account_id)
        self._get(account, name)
        n, subs = notification(n), subscribers(subs)
        with self.store.tx() as c:
            if c.execute("SELECT COUNT(*) FROM budget_notifications WHERE account=? AND budget=?",
                         (account, name)).fetchone()[0] >= MAX_NOTIFICATIONS:
                raise QuotaExceeded(f"a budget has at most {MAX_NOTIFICATIONS} notifications",
                                    code="CreationLimitExceededException")
            if c.execute("SELECT 1 FROM budget_notifications WHERE account=? AND budget=? AND key=?",
                         (account, name, note_key(n))).fetchone():
                raise AlreadyExists("this notification already exists", code="DuplicateRecordException")
            c.execute("INSERT INTO budget_notifications (account, budget, key, body, subscribers) VALUES (?,?,?,?,?)",
                      (account, name, note_key(n), json.dumps(n), json.dumps(subs)))

    def update_notification(self, caller, account_id, name, old, new) -> None:
        account = self.account(caller, account_id)
        _, key = self._note(account, name, old)
        n = notification(new)
        with self.store.tx() as c:
            if note_key(n) != key and c.execute("SELECT 1 FROM budget_notifications WHERE account=? AND budget=? "
                                                "AND key=?", (account, name, note_key(n))).fetchone():
                raise AlreadyExists("this notification already exists", code="DuplicateRecordException")
            c.execute("UPDATE budget_notifications SET key=?, body=? WHERE account=? AND budget=? AND key=?",
                      (note_key(n), json.dumps(n), account, name, key))

    def delete_notification(self, caller, account_id, name, n) -> None:
        account = self.account(caller, account_id)
        _, key = self._note(account, name, n)
        with self.store.tx() as c:
            c.execute("DELETE FROM budget_notifications WHERE account=? AND budget=? AND key=?", (account, name, key))

    def notifications(self, caller, account_id, name) -> list[dict]:
        account = self.account(caller, account_id)
        b = self._get(account, name)
        p = self.period(b, self.clock.now())
        fired = {r["trig"] for r in self.store.query(
            "SELECT trig FROM billing_alerts WHERE account=? AND budget=? AND period_start=?",
            (account, name, p[0] if p else -1))}
        return [{**json.loads(r["body"]), "NotificationState": "ALARM" if r["key"] in fired else "OK"}
                for r in self.store.query("SELECT key, body FROM budget_notifications WHERE account=? AND budget=? "
                                          "ORDER BY key", (account, name))]

    def subscribers_of(self, caller, account_id, name, n) -> list[dict]:
        account = self.account(caller, account_id)
        _, key = self._note(account, name, n)
        row = self.store.one("SELECT subscribers FROM budget_notifications WHERE account=? AND budget=? AND key=?",
                             (account, name, key))
        return json.loads(row["subscribers"])

    def change_subscriber(self, caller, account_id, name, n, sub, add: bool) -> None:
        account = self.account(caller, account_id)
        _, key = self._note(account, name, n)
        sub = subscribers([sub])[0]
        with self.store.tx() as c:
            subs = json.loads(c.execute("SELECT subscribers FROM budget_notifications WHERE account=? AND budget=? "
                                        "AND key=?", (account, name, key)).fetchone()[0])
            if add and sub in subs:
                raise AlreadyExists("this subscriber already exists", code="DuplicateRecordException")
            if not add and sub not in subs:
                raise NotFound("no such subscriber", code="NotFoundException")
            subs = subs + [sub] if add else [s for s in subs if s != sub]
            if add and len(subs) > MAX_SUBSCRIBERS:
                raise QuotaExceeded(f"at most {MAX_SUBSCRIBERS} subscribers", code="CreationLimitExceededException")
            c.execute("UPDATE budget_notifications SET subscribers=? WHERE account=? AND budget=? AND key=?",
                      (json.dumps(subs), account, name, key))

    # -- the check after each metering pass -------------------------------------------------------------------
    def evaluate(self) -> list[dict]:
        fired = []
        now = self.clock.now()
        for r in self.store.query("SELECT account, body FROM budgets"):
            b = json.loads(r["body"])
            try:
                fired += self._evaluate(r["account"], b, now)
            except Exception:  # noqa: BLE001 - one bad budget must not stop the others
                log.exception("evaluating budget %s of %s failed", b.get("BudgetName"), r["account"])
        return fired

    def _evaluate(self, account: str, b: dict, now: float) -> list[dict]:
        p = self.period(b, now)
        if p is None:
            return []
        actual, forecast, ps, pe = self.spend(account, b)
        limit = float(b["BudgetLimit"]["Amount"])
        triggers = [(note_key(json.loads(n["body"])), json.loads(n["body"]), None) for n in self.store.query(
            "SELECT body FROM budget_notifications WHERE account=? AND budget=?", (account, b["BudgetName"]))]
        for a in self.store.query("SELECT * FROM budget_actions WHERE account=? AND budget=?",
                                  (account, b["BudgetName"])):
            body = json.loads(a["body"])
            t = body["ActionThreshold"]
            triggers.append((f"action:{a['id']}", {"NotificationType": body["NotificationType"],
                                                   "ComparisonOperator": "GREATER_THAN",
                                                   "Threshold": t["ActionThresholdValue"],
                                                   "ThresholdType": t["ActionThresholdType"]}, body))
        out = []
        for key, n, action in triggers:
            value = actual if n["NotificationType"] == "ACTUAL" else forecast
            thr = limit * n["Threshold"] / 100 if n["ThresholdType"] == "PERCENTAGE" else n["Threshold"]
            hit = {"GREATER_THAN": value > thr, "LESS_THAN": value < thr,
                   "EQUAL_TO": abs(value - thr) < 0.005}[n["ComparisonOperator"]]
            if not hit:
                continue
            alert = self._fire(account, b, key, n, action, actual, forecast, limit, thr, ps, pe, now)
            if alert is not None:
                out.append(alert)
        return out

    def _fire(self, account, b, key, n, action, actual, forecast, limit, thr, ps, pe, now) -> dict | None:
        what = "actual" if n["NotificationType"] == "ACTUAL" else "forecasted"
        word = {"GREATER_THAN": "above", "LESS_THAN": "below", "EQUAL_TO": "at"}[n["ComparisonOperator"]]
        shown = f"{n['Threshold']:g}% of ${limit:.2f}" if n["ThresholdType"] == "PERCENTAGE" else f"${thr:.2f}"
        value = actual if what == "actual" else forecast
        body = {"budget": b["BudgetName"], "trigger": key, "notification": n, "actual": round(actual, 6),
                "forecast": round(forecast, 6), "limit": limit, "threshold_amount": round(thr, 6),
                "period": {"start": clk.iso(ps), "end": clk.iso(pe)},
                "message": f"Budget {b['BudgetName']!r}: {what} spend ${value:.2f} is {word} {shown} "
                           f"for the period from {clk.day(ps)}",
                "action": None}
        with self.store.tx() as c:
            cur = c.execute("INSERT OR IGNORE INTO billing_alerts (account, budget, trig, period_start, fired_at, "
                            "fired_sim, body) VALUES (?,?,?,?,?,?,?)",
                            (account, b["BudgetName"], key, ps, time.time(), now, json.dumps(body)))
            if cur.rowcount == 0:
                return None  # fired already in this period
            alert_id = cur.lastrowid
        if action is not None:
            if action["ApprovalModel"] == "MANUAL":
                self._set_status(action["ActionId"], "PENDING")
                body["action"] = {"action_id": action["ActionId"], "status": "PENDING",
                                  "message": "approve it with ExecuteBudgetAction (APPROVE_BUDGET_ACTION)"}
            else:
                body["action"] = self._run_action(account, action)
                body["message"] += f"; stopped {len(body['action']['stopped'])} instance(s)"
            with self.store.tx() as c:
                c.execute("UPDATE billing_alerts SET body=? WHERE id=?", (json.dumps(body), alert_id))
        log.warning("budget alert for account %s: %s", account, body["message"])
        return {"id": alert_id, "account": account, **body}

    # -- the feed -----------------------------------------------------------------------------------------------
    def alerts(self, accounts: list[str] | None, since: int = 0, limit: int = 100,
               newer_than: float = 0.0) -> list[dict]:
        sql, params = "SELECT * FROM billing_alerts WHERE id > ? AND fired_at > ?", [since, newer_than]
        if accounts is not None:
            sql += f" AND account IN ({','.join('?' * len(accounts))})" if accounts else " AND 0"
            params += accounts
        rows = self.store.query(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
        return [{"id": r["id"], "account": r["account"], "fired_at": clk.iso(r["fired_at"]),
                 "fired_on_billing_clock": clk.iso(r["fired_sim"]), **json.loads(r["body"])} for r in rows]
