"""Reading XML documents that come from outside (S3 request bodies, an engine's answers).

Parsed by defusedxml with DTDs refused: no entity expansion (billion laughs), no external
entities, whatever encoding the document declares. Elements are matched by local name,
so documents with and without the S3 namespace read the same.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from .errors import InvalidParameter

Element = ET.Element


def parse(data: bytes, what: str) -> ET.Element:
    """The root element of `data`; InvalidParameter (MalformedXML) if it is not plain, well-formed XML."""
    try:
        return fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        raise InvalidParameter(f"{what}: DTDs and entities are not allowed", code="MalformedXML") from None
    except (ET.ParseError, ValueError, LookupError):  # LookupError: an unknown declared encoding
        raise InvalidParameter(f"{what}: the XML is not well-formed", code="MalformedXML") from None


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def children(elem: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in elem if local(c.tag) == name]


def text(elem: ET.Element | None, name: str) -> str | None:
    """The text of `elem`'s first child called `name` ('' when empty), None when there is none."""
    if elem is None:
        return None
    for child in elem:
        if local(child.tag) == name:
            return child.text or ""
    return None


# -- writing -----------------------------------------------------------------------------------
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def fill(parent: ET.Element, value, list_item: str | None = "item") -> None:
    """Data into elements: a dict's keys become child elements ('@name' keys attributes, None
    values are left out), bools true/false, anything else its str(). A list becomes one
    `list_item` element per entry (EC2's <item>s) or, with list_item None, repeats the
    element it is the value of (S3's <Bucket><Bucket>...)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if v is None:
                continue
            if k.startswith("@"):
                parent.set(k[1:], str(v))
            elif isinstance(v, list) and list_item is None:
                for item in v:
                    fill(ET.SubElement(parent, k), item, list_item)
            else:
                fill(ET.SubElement(parent, k), v, list_item)
    elif isinstance(value, list):
        if list_item is None:
            raise TypeError("with list_item None, a list must be the value of a key")
        for item in value:
            fill(ET.SubElement(parent, list_item), item, list_item)
    elif isinstance(value, bool):
        parent.text = "true" if value else "false"
    else:
        parent.text = str(value)


def render(root: str, body: dict | str | None, *, namespace: str | None = None,
           list_item: str | None = "item") -> str:
    """A whole document: the XML declaration and `root` holding `body` (see fill)."""
    elem = ET.Element(root, xmlns=namespace) if namespace else ET.Element(root)
    if body is not None:
        fill(elem, body, list_item)
    return DECLARATION + ET.tostring(elem, encoding="unicode")
