"""The Budgets service's shapes that budgets and their actions share: a notification, its key,
subscribers; validation errors carry the service's InvalidParameterException."""
from __future__ import annotations

from ..errors import InvalidParameter

OPERATORS = ("GREATER_THAN", "LESS_THAN", "EQUAL_TO")
MAX_SUBSCRIBERS = 11


def bad(message: str) -> InvalidParameter:
    return InvalidParameter(message, code="InvalidParameterException")


def notification(n) -> dict:
    if not isinstance(n, dict):
        raise bad("Notification must have NotificationType, ComparisonOperator and Threshold")
    ntype, op, thr = n.get("NotificationType"), n.get("ComparisonOperator"), n.get("Threshold")
    ttype = n.get("ThresholdType") or "PERCENTAGE"
    if ntype not in ("ACTUAL", "FORECASTED"):
        raise bad("NotificationType must be ACTUAL or FORECASTED")
    if op not in OPERATORS:
        raise bad(f"ComparisonOperator must be one of {', '.join(OPERATORS)}")
    if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0 <= thr <= 15e12 or thr != thr:
        raise bad("Threshold must be a number between 0 and 15000000000000")
    if ttype not in ("PERCENTAGE", "ABSOLUTE_VALUE"):
        raise bad("ThresholdType must be PERCENTAGE or ABSOLUTE_VALUE")
    return {"NotificationType": ntype, "ComparisonOperator": op, "Threshold": float(thr), "ThresholdType": ttype}


def note_key(n: dict) -> str:
    return f"{n['NotificationType']}:{n['ComparisonOperator']}:{n['Threshold']:g}:{n['ThresholdType']}"


def subscribers(subs, required: bool = True) -> list[dict]:
    if subs is None and not required:
        return []
    if not isinstance(subs, list) or not subs and required or len(subs) > MAX_SUBSCRIBERS:
        raise bad(f"a notification needs 1 to {MAX_SUBSCRIBERS} Subscribers")
    out = []
    for s in subs:
        if not isinstance(s, dict) or s.get("SubscriptionType") not in ("EMAIL", "SNS") or not isinstance(
                s.get("Address"), str) or not 0 < len(s["Address"]) <= 2048:
            raise bad("each Subscriber needs SubscriptionType EMAIL or SNS and an Address")
        out.append({"SubscriptionType": s["SubscriptionType"], "Address": s["Address"]})
    return out
