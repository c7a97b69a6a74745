"""EC2 XML rendering: dicts become elements, lists become <item>s, as the EC2 wire format has it.
The renderer is the one S3 and the engine client use too (emulator.xmldoc)."""
from __future__ import annotations

import uuid

from emulator.xmldoc import render

NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"


def response(action: str, body: dict, request_id: str | None = None) -> str:
    return render(f"{action}Response", {"requestId": request_id or str(uuid.uuid4()), **body},
                  namespace=NAMESPACE, list_item="item")
