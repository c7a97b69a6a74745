"""EC2 XML rendering: dicts become elements, lists become <item>s, as the EC2 wire format has it."""
from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"


def _fill(parent: ET.Element, value) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if v is None:
                continue
            _fill(ET.SubElement(parent, k), v)
    elif isinstance(value, list):
        for item in value:
            _fill(ET.SubElement(parent, "item"), item)
    elif isinstance(value, bool):
        parent.text = "true" if value else "false"
    else:
        parent.text = str(value)


def response(action: str, body: dict, request_id: str | None = None) -> str:
    root = ET.Element(f"{action}Response", xmlns=NAMESPACE)
    ET.SubElement(root, "requestId").text = request_id or str(uuid.uuid4())
    _fill(root, body)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
