"""Hypothesis against the EC2 Query API and the S3 gateway of the real server, with requests
signed correctly (so they reach the handlers) and parameters, headers and keys generated:
never a 5xx (S3's 501 NotImplemented is a documented answer), every error in the
protocol's own XML shape, and a refused request changes nothing on the engines. Bounded
(EXAMPLES each); the fuzzing account may hold 2 instances, so a generated launch stays small."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from base64 import b64encode
from collections import Counter
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from api.ec2 import ACTIONS
from tests.conftest import ARTIFACTS

from ..signed import send, sign
from .engines import Engines

pytestmark = pytest.mark.integration

EXAMPLES = 200
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=40)


@pytest.fixture(scope="module")
def wire(server, docker_client):
    api = server.new_user(f"wirefuzz-{server.port}", max_instances=2)
    bucket = f"wirefuzz-{server.port}"
    api.ok("POST", "/buckets", 201, json={"name": bucket})
    engines = Engines(server, docker_client)
    seen: Counter = Counter()
    yield {"api": api, "url": server.url, "bucket": bucket, "engines": engines, "seen": seen,
           "ami": _tiny_ami(server, api)}
    engines.close()
    for inst in api.ok("GET", "/instances")["instances"]:
        if inst["state"] != "terminated":
            api("DELETE", f"/instances/{inst['id']}")
    api.ok("DELETE", f"/buckets/{bucket}", 204, params={"force": "true"})
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "wire-fuzz.json").write_text(json.dumps({f"{k[0]} {k[1]}": v for k, v in sorted(seen.items())},
                                                         indent=1))


def _tiny_ami(server, api) -> str:
    status, body = send("POST", server.url + "/", sign("POST", server.url + "/", api,
                        b"Action=DescribeImages&Version=2016-11-15", {"Content-Type": "application/x-www-form-urlencoded"},
                        service="ec2"), b"Action=DescribeImages&Version=2016-11-15")
    root = ET.fromstring(body)
    ns = {"e": root.tag.split("}")[0].strip("{")}
    for item in root.iter(f"{{{ns['e']}}}item"):
        if item.findtext("e:name", namespaces=ns) == "tiny-container":
            return item.findtext("e:imageId", namespaces=ns)
    raise AssertionError(f"no tiny-container AMI: {body[:300]!r}")


def example_each(name: str, values: list):
    """@example for each of `values` (the argument called `name`)."""
    def decorate(fn):
        for value in reversed(values):
            fn = example(**{name: value})(fn)
        return fn
    return decorate


def _error_code(body: bytes) -> str:
    root = ET.fromstring(body)
    return next((el.text for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Code"), "") or ""


# -- EC2 Query ------------------------------------------------------------------------------------
EC2_NAMES = ["ImageId", "InstanceType", "MinCount", "MaxCount", "InstanceId.1", "InstanceId.2", "Filter.1.Name",
             "Filter.1.Value.1", "MaxResults", "NextToken", "KeyName", "KeyPairId", "UserData", "ClientToken",
             "GroupName", "GroupId", "GroupDescription", "SecurityGroup.1", "SecurityGroupId.1",
             "IpPermissions.1.IpProtocol", "IpPermissions.1.FromPort", "IpPermissions.1.ToPort",
             "IpPermissions.1.IpRanges.1.CidrIp", "TagSpecification.1.ResourceType", "TagSpecification.1.Tag.1.Key",
             "TagSpecification.1.Tag.1.Value", "Tag.1.Key", "Tag.1.Value", "ResourceId.1", "PublicKeyMaterial",
             "IncludeAllInstances", "Output", "DryRun"]


def _ec2_value(ami: str):
    return st.one_of(TEXT, st.integers(-3, 70000).map(str), st.sampled_from([
        "", ami, "ami-00000000000000000", "i-0123456789abcdef0", "t2.nano", "t2.micro", "tcp", "-1", "0", "1", "2",
        "21", "99999999999999999999", "true", "0.0.0.0/0", "default", "instance", "Name", "tiny",
        b64encode(b"#!/bin/sh\necho hi\n").decode(), "x" * 300]))


@st.composite
def ec2_requests(draw, ami: str):
    # mostly real actions (their parameters are what is fuzzed), sometimes not
    action = draw(st.sampled_from(sorted(ACTIONS) * 8 + ["", "DeleteVpc", "runinstances", "\x1f", "Run Instances"]))
    params = draw(st.dictionaries(st.one_of(st.sampled_from(EC2_NAMES), TEXT), _ec2_value(ami), max_size=8))
    return {"Action": action, "Version": "2016-11-15", **params}


# what the fuzzer found once, replayed on every run (each was a 500 or a document that was not XML)
EC2_FOUND = [{"Action": "\x1f"}, {"Action": "DeleteTags", "Tag.1.Value": ""},
             {"Action": "ImportKeyPair", "KeyName": "k", "PublicKeyMaterial": "\x80"}]


def test_ec2_query_under_fuzzing(wire):
    @FUZZ
    @given(params=ec2_requests(wire["ami"]))
    @example(params={"Action": "RunInstances", "Version": "2016-11-15", "ImageId": wire["ami"], "UserData": "\x80"})
    @example_each("params", [{**p, "Version": "2016-11-15"} for p in EC2_FOUND])
    def run(params):
        body = urlencode(params).encode()
        url = wire["url"] + "/"
        headers = sign("POST", url, wire["api"], body, {"Content-Type": "application/x-www-form-urlencoded"},
                       service="ec2")
        before = wire["engines"].snapshot()
        status, answer = send("POST", url, headers, body)
        wire["seen"][(f"EC2 {params['Action'] if params['Action'] in ACTIONS else '(other)'}", status)] += 1
        assert status < 500, (params, status, answer[:500])
        try:
            root = ET.fromstring(answer)  # always EC2's XML
        except ET.ParseError as e:
            raise AssertionError(f"not XML ({e}) for {params!r}: {answer[:500]!r}") from None
        if status >= 400:
            assert root.tag == "Response" and _error_code(answer), answer[:500]
            assert wire["engines"].snapshot() == before, f"refused ({status}) but an engine changed: {params}"
    run()


# -- S3 ---------------------------------------------------------------------------------------------
S3_HEADERS = ["content-type", "range", "if-match", "if-none-match", "if-modified-since", "x-amz-copy-source",
              "x-amz-metadata-directive", "x-amz-meta-colour", "x-amz-acl", "content-md5", "x-amz-checksum-crc32",
              "x-amz-checksum-sha256", "x-amz-checksum-algorithm", "cache-control", "content-disposition",
              "x-amz-tagging", "x-amz-storage-class", "content-encoding", "x-amz-server-side-encryption"]
S3_QUERY = ["acl", "tagging", "uploads", "uploadId", "partNumber", "versionId", "list-type", "prefix", "delimiter",
            "max-keys", "continuation-token", "start-after", "policy", "cors", "versioning", "location", "delete",
            "response-content-type", "encoding-type", "marker"]


def _header_value():
    return st.one_of(HEADER_TEXT, st.sampled_from(["bytes=0-3", "bytes=5-2", "bytes=-1", "bytes=0-", "*", '"x"',
                                                    "text/html", "/elsewhere/key", "REPLACE", "COPY", "public-read",
                                                    "AAAAAA==", "", "Mon, 01 Jan 2001 00:00:00 GMT", "a=b&c=d"]))


@st.composite
def s3_requests(draw, bucket: str):
    method = draw(st.sampled_from(["GET", "HEAD", "PUT", "DELETE", "POST"]))
    key = draw(st.one_of(TEXT, st.sampled_from(["", "a", "a/b", "../x", "a/../../x", "./a", "a//b", ".", "..",
                                                 "%2e%2e/x", "k" * 1100])))
    target = draw(st.sampled_from([bucket, bucket, "nobody-else-bucket", "", "UPPER", "a"]))
    query = draw(st.dictionaries(st.sampled_from(S3_QUERY), st.one_of(st.just(""), HEADER_TEXT), max_size=3))
    headers = draw(st.dictionaries(st.sampled_from(S3_HEADERS), _header_value(), max_size=4))
    body = draw(st.binary(max_size=64)) if method in ("PUT", "POST") else b""
    return method, target, key, query, headers, body


def test_s3_headers_and_keys_under_fuzzing(wire):
    b = wire["bucket"]

    @FUZZ
    @given(request=s3_requests(b))
    @example_each("request", [("GET", b, "\x07", {}, {}, b""), ("DELETE", b, "a//b", {}, {}, b""),
                              ("PUT", b, "/a", {}, {}, b"x"), ("PUT", b, "a", {}, {}, b"x"), ("PUT", b, "a/0", {}, {}, b"x")])
    def run(request):
        method, target, key, query, headers, body = request
        path = "/" + quote(target, safe="") + ("/" + quote(key, safe="/") if key or target else "")
        qs = urlencode(query, quote_via=quote)
        url = wire["url"] + path + (f"?{qs}" if qs else "")
        signed = sign(method, url, wire["api"], body, headers)
        before = wire["engines"].snapshot()
        status, answer = send(method, url, signed, body)
        wire["seen"][(f"S3 {method}", status)] += 1
        assert status < 500 or status == 501, (request, status, answer[:500])
        if status >= 400 and method != "HEAD":
            try:
                root = ET.fromstring(answer)
            except ET.ParseError as e:
                raise AssertionError(f"not XML ({e}) for {request!r}: {answer[:500]!r}") from None
            assert root.tag == "Error" and _error_code(answer), answer[:500]
        if status >= 400:
            assert wire["engines"].snapshot() == before, f"refused ({status}) but the engine changed: {request}"
        elif method == "DELETE" and wire["api"]("GET", f"/buckets/{wire['bucket']}")[0] == 404:
            wire["api"].ok("POST", "/buckets", 201, json={"name": wire["bucket"]})  # the fuzzer deleted it: again
    run()
