"""Auto Scaling's Query XML: `<ActionResponse><ActionResult>…</ActionResult><ResponseMetadata>`,
lists as `<member>` elements, booleans in lower case, times in UTC."""
from __future__ import annotations

import base64
import time
import uuid
import xml.etree.ElementTree as ET

from emulator.errors import InvalidParameter
from emulator.xmldoc import DECLARATION, fill

NAMESPACE = "http://autoscaling.amazonaws.com/doc/2011-01-01/"


def stamp(ts: float | None) -> str | None:
    """A time as Auto Scaling writes it: UTC with milliseconds (activities are ordered by them)."""
    if not ts:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def response(action: str, result: dict | None, request_id: str | None = None) -> str:
    root = ET.Element(f"{action}Response", xmlns=NAMESPACE)
    if result is not None:
        fill(ET.SubElement(root, f"{action}Result"), result, list_item="member")
    meta = ET.SubElement(root, "ResponseMetadata")
    ET.SubElement(meta, "RequestId").text = request_id or str(uuid.uuid4())
    return DECLARATION + ET.tostring(root, encoding="unicode")


def page(p: dict, items: list, default: int, high: int) -> tuple[list, str | None]:
    """MaxRecords/NextToken paging (the token is an opaque offset)."""
    raw = p.get("MaxRecords")
    try:
        size = default if raw in (None, "") else int(raw)
    except ValueError:
        raise InvalidParameter("MaxRecords must be an integer", code="ValidationError") from None
    if not 1 <= size <= high:
        raise InvalidParameter(f"MaxRecords must be between 1 and {high}", code="ValidationError")
    start = 0
    if p.get("NextToken"):
        try:
            start = int(base64.b64decode(p["NextToken"], validate=True).decode())
        except ValueError:
            raise InvalidParameter("The NextToken is invalid", code="InvalidNextToken") from None
    end = start + size
    return items[start:end], (base64.b64encode(str(end).encode()).decode() if end < len(items) else None)
