"""The one XML reader/writer (emulator/xmldoc.py) for EC2, S3 and the engine client."""
from __future__ import annotations

import pytest

from api.ec2.xml import response
from emulator.errors import InvalidParameter
from emulator.xmldoc import children, parse, render, text


def test_ec2_lists_are_items():
    xml = response("DescribeThings", {"thingSet": [{"id": "a", "on": True, "gone": None}, {"id": "b"}], "none": []},
                   "req-1")
    assert xml == ('<?xml version="1.0" encoding="UTF-8"?>\n<DescribeThingsResponse '
                   'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req-1</requestId><thingSet><item>'
                   '<id>a</id><on>true</on></item><item><id>b</id></item></thingSet><none /></DescribeThingsResponse>')


def test_s3_lists_repeat_their_element_and_attributes_and_escaping_work():
    xml = render("R", {"Buckets": {"Bucket": [{"Name": "a&b"}, {"Name": "<c>"}]},
                       "Grantee": {"@xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance", "@xsi:type": "Group",
                                   "URI": "u"}}, namespace="http://s3.amazonaws.com/doc/2006-03-01/", list_item=None)
    root = parse(xml.encode(), "R")
    assert [text(b, "Name") for b in children(children(root, "Buckets")[0], "Bucket")] == ["a&b", "<c>"]
    assert 'xsi:type="Group"' in xml and "<Name>a&amp;b</Name>" in xml
    with pytest.raises(TypeError):
        render("R", [1, 2], list_item=None)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_entities_and_dtds_are_refused_in_any_encoding(encoding):
    doc = f'<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE d [<!ENTITY k "x">]><d>&k;</d>'.encode(encoding)
    with pytest.raises(InvalidParameter) as e:
        parse(doc, "Delete")
    assert e.value.code == "MalformedXML"
    assert text(parse(f'<?xml version="1.0" encoding="{encoding}"?><d><k>é</k></d>'.encode(encoding), "d"),
                "k") == "é"


@pytest.mark.parametrize("doc", [b"", b"<a>", b"not xml", b'<?xml version="1.0" encoding="nope"?><a/>',
                                 b'<!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>'])
def test_malformed(doc):
    with pytest.raises(InvalidParameter) as e:
        parse(doc, "X")
    assert e.value.code == "MalformedXML"
