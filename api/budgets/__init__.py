"""AWS Budgets (SigV4 service `budgets`, AWS JSON 1.1, target AWSBudgetServiceGateway) over
emulator.billing.budgets. Every request names an AccountId: one's own, or any account for an
admin; another account's budgets answer NotFoundException (AccessDeniedException on create)."""
from __future__ import annotations

from ..json11 import create_json11_app, required


def _b(cloud):
    return cloud.billing.budgets


def create_budget(cloud, caller, d: dict) -> dict:
    required(d, "AccountId", "Budget")
    _b(cloud).create(caller, d["AccountId"], d["Budget"], d.get("NotificationsWithSubscribers"))
    return {}


def describe_budgets(cloud, caller, d: dict) -> dict:
    required(d, "AccountId")
    return {"Budgets": _b(cloud).list(caller, d["AccountId"])}


def describe_budget(cloud, caller, d: dict) -> dict:
    required(d, "AccountId", "BudgetName")
    return {"Budget": _b(cloud).describe(caller, d["AccountId"], d["BudgetName"])}


def update_budget(cloud, caller, d: dict) -> dict:
    required(d, "AccountId", "NewBudget")
    _b(cloud).update(caller, d["AccountId"], d["NewBudget"])
    return {}


def delete_budget(cloud, caller, d: dict) -> dict:
    required(d, "AccountId", "BudgetName")
    _b(cloud).delete(caller, d["AccountId"], d["BudgetName"])
    return {}


def create_notification(cloud, caller, d: dict) -> dict:
    required(d, "AccountId", "BudgetName", "Notification", "Subscribers")
    _b(cloud).create_notification(caller, d["AccountId"], d["BudgetName"], d["Notification"], d["Subscribers"])
    return {}


def describe_notifications_for_budget(cloud, caller, d: dict) -> dict:
    required(d, "AccountId", "BudgetName")
    return {"Notifications": _b(cloud).notifications(caller, d["AccountId"], d["BudgetName"])}


def update_notification(cloud, caller, d: dict) -> dict:
    required(d, "AccountId", "BudgetName", "OldNotification", "NewNotification")
    _b(cloud).update_notification(caller, d["AccountId"], d["BudgetName"], d["OldNotification"],
                                  d["NewNotification"])
    return {}


def delete_notification(cloud, caller, d: dict) -> dict:
    required(d, "AccountId", "BudgetName", "Notification")
    _b(cloud).delete_notification(caller, d["AccountId"], d["BudgetName"], d["Notification"])
    return {}


def create_subscriber(cloud, caller, d: dict) -> dict:
    required(d, "AccountId", "BudgetName", "Notification", "Subscriber")
    _b(cloud).change_subscriber(caller, d["AccountId"], d["BudgetName"], d["Notification"], d["Subscriber"], True)
    return {}


def delete_subscriber(cloud, caller, d: dict) -> dict:
    required(d, "AccountId", "BudgetName", "Notification", "Subscriber")
    _b(cloud).change_subscriber(caller, d["AccountId"], d["BudgetName"], d["Notification"], d["Subscriber"], False)
    return {}


def describe_subscribers_for_notification(cloud, caller, d: dict) -> dict:
    required(d, "AccountId", "BudgetName", "Notification")
    return {"Subscribers": _b(cloud).subscribers_of(caller, d["AccountId"], d["BudgetName"], d["Notification"])}


def create_budget_action(cloud, caller, d: dict) -> dict:
    required(d, "AccountId", "BudgetName", "NotificationType", "ActionType", "ActionThreshold", "Definition")
    action_id = _b(cloud).create_action(caller, d["AccountId"], d["BudgetName"], d)
    return {"AccountId": d["AccountId"], "BudgetName": d["BudgetName"], "ActionId": action_id}


def describe_budget_actions_for_budget(cloud, caller, d: dict) -> dict:
    required(d, "AccountId", "BudgetName")
    return {"Actions": _b(cloud).actions(caller, d["AccountId"], d["BudgetName"])}


def describe_budget_action(cloud, caller, d: dict) -> dict:
    required(d, "AccountId", "BudgetName", "ActionId")
    return {"AccountId": d["AccountId"], "BudgetName": d["BudgetName"],
            "Action": _b(cloud).action(caller, d["AccountId"], d["BudgetName"], d["ActionId"])}


def delete_budget_action(cloud, caller, d: dict) -> dict:
    required(d, "AccountId", "BudgetName", "ActionId")
    return {"AccountId": d["AccountId"], "BudgetName": d["BudgetName"],
            "Action": _b(cloud).delete_action(caller, d["AccountId"], d["BudgetName"], d["ActionId"])}


def execute_budget_action(cloud, caller, d: dict) -> dict:
    required(d, "AccountId", "BudgetName", "ActionId", "ExecutionType")
    _b(cloud).execute_action(caller, d["AccountId"], d["BudgetName"], d["ActionId"], d["ExecutionType"])
    return {k: d[k] for k in ("AccountId", "BudgetName", "ActionId", "ExecutionType")}


ACTIONS = {
    "CreateBudget": create_budget,
    "DescribeBudgets": describe_budgets,
    "DescribeBudget": describe_budget,
    "UpdateBudget": update_budget,
    "DeleteBudget": delete_budget,
    "CreateNotification": create_notification,
    "DescribeNotificationsForBudget": describe_notifications_for_budget,
    "UpdateNotification": update_notification,
    "DeleteNotification": delete_notification,
    "CreateSubscriber": create_subscriber,
    "DeleteSubscriber": delete_subscriber,
    "DescribeSubscribersForNotification": describe_subscribers_for_notification,
    "CreateBudgetAction": create_budget_action,
    "DescribeBudgetActionsForBudget": describe_budget_actions_for_budget,
    "DescribeBudgetAction": describe_budget_action,
    "DeleteBudgetAction": delete_budget_action,
    "ExecuteBudgetAction": execute_budget_action,
}


def create_budgets_app(cloud):
    return create_json11_app(cloud, service="budgets", target_prefix="AWSBudgetServiceGateway", actions=ACTIONS)
