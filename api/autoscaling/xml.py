"""Auto Scaling's Query XML: `<ActionResponse><ActionResult>…</ActionResult><ResponseMetadata>`,
lists as `<member>` elements, booleans in lower case, times in UTC."""
from __future__ import annotations

import base64
import time
import uuid
import xml.etree.ElementTree as ET

from emulator.errors import InvalidParameter

NAMESPACE = "http://autoscaling.amazonaws.com/doc/2011-01-01/"


class Timestamp(float):
    """A time to render as ISO 8601 (plain floats stay numbers)."""


def _fill(parent: ET.Element, value) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if v is not None:
                _fill(ET.SubElement(parent, k), v)
    elif isinstance(value, list):
        for item in value:
            _fill(ET.SubElement(parent, "member"), item)
    elif isinstance(value, bool):
        parent.text = "true" if value else "false"
    elif isinstance(value, Timestamp):
        parent.text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(value)) + f".{int(value % 1 * 1000):03d}Z"
    else:
        parent.text = str(value)


def response(action: str, result: dict | None, request_id: str | None = None) -> str:
    root = ET.Element(f"{action}Response", xmlns=NAMESPACE)
    if result is not None:
        _fill(ET.SubElement(root, f"{action}Result"), result)
    meta = ET.SubElement(root, "ResponseMetadata")
    ET.SubElement(meta, "RequestId").text = request_id or str(uuid.uuid4())
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


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
