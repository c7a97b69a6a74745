"""The pure parts of S3 settings: tag rules, CORS matching, lifecycle checks and due dates,
the settings' XML documents read and written back, null-version listings over a fake
engine, and virtual-hosted bucket names from the Host header."""
from __future__ import annotations

import datetime as dt

import pytest

from api.routing import protocol_of, virtual_host_bucket
from api.s3 import documents as doc
from emulator.errors import Forbidden, InvalidParameter
from emulator.storage import cors, lifecycle, tagging
from emulator.storage.listing import versions_page
from emulator.xmldoc import render


def xml_of(root: str, body) -> bytes:
    return render(root, body, list_item=None).encode()


# -- tags ------------------------------------------------------------------------------------------
def test_tag_rules():
    assert tagging.check([("a", ""), ("ünï code", "x:y/z=+-@_.")], limit=10) == [("a", ""), ("ünï code", "x:y/z=+-@_.")]
    for tags, code in (([("aws:x", "1")], "InvalidTag"), ([("a", "1"), ("a", "2")], "InvalidTag"),
                       ([("", "v")], "InvalidTag"), ([("k" * 129, "v")], "InvalidTag"), ([("k", "v" * 257)], "InvalidTag"),
                       ([("a;b", "v")], "InvalidTag"), ([(f"k{i}", "") for i in range(11)], "BadRequest")):
        with pytest.raises(InvalidParameter) as e:
            tagging.check(tags, limit=10)
        assert e.value.code == code, tags
    assert tagging.from_header("a=1&b=two%20words&c=") == [("a", "1"), ("b", "two words"), ("c", "")]
    assert tagging.from_header(None) == []
    assert tagging.matches([("a", "1"), ("b", "2")], [("b", "2")]) and not tagging.matches([("a", "1")], [("a", "2")])


# -- CORS -------------------------------------------------------------------------------------------
RULES = [{"id": "app", "allowed_origins": ["https://*.example"], "allowed_methods": ["GET", "PUT"],
          "allowed_headers": ["content-type", "x-amz-*"], "expose_headers": ["ETag"], "max_age": 60},
         {"id": None, "allowed_origins": ["*"], "allowed_methods": ["GET"], "allowed_headers": [],
          "expose_headers": [], "max_age": None}]


def test_cors_matching_first_rule_wins():
    assert cors.match(RULES, "https://app.example", "PUT", "Content-Type, X-Amz-Meta-A")["id"] == "app"
    assert cors.match(RULES, "https://app.example", "GET")["id"] == "app"
    assert cors.match(RULES, "http://other.org", "GET")["id"] is None
    assert cors.match(RULES, "http://other.org", "PUT") is None
    assert cors.match(RULES, "https://app.example", "PUT", "authorization") is None
    assert cors.match(RULES, "https://example", "PUT") is None  # the wildcard needs its dot


def test_cors_answers():
    h = dict(cors.preflight(RULES, "https://app.example", "PUT", "content-type"))
    assert h["Access-Control-Allow-Origin"] == "https://app.example" and h["Access-Control-Allow-Credentials"] == "true"
    assert h["Access-Control-Allow-Methods"] == "GET, PUT" and h["Access-Control-Max-Age"] == "60"
    assert dict(cors.preflight(RULES, "http://x.org", "GET", None))["Access-Control-Allow-Origin"] == "*"
    with pytest.raises(Forbidden):
        cors.preflight(RULES, "http://x.org", "DELETE", None)
    with pytest.raises(Forbidden):
        cors.preflight(None, "http://x.org", "GET", None)
    with pytest.raises(InvalidParameter):
        cors.preflight(RULES, None, "GET", None)
    assert cors.actual(RULES, None, "GET") == [] and cors.actual(None, "http://x.org", "GET") == []
    assert dict(cors.actual(RULES, "http://x.org", "PUT")) == {"Vary": cors.VARY}


def test_cors_configurations_refused():
    good = RULES[0]
    for change, code in (({"allowed_methods": ["PATCH"]}, "InvalidRequest"),
                         ({"allowed_origins": ["*.*"]}, "InvalidRequest"),
                         ({"allowed_headers": ["*-*"]}, "InvalidRequest"),
                         ({"allowed_origins": []}, "MalformedXML"), ({"max_age": -1}, "InvalidRequest")):
        with pytest.raises(InvalidParameter) as e:
            cors.check([{**good, **change}])
        assert e.value.code == code, change
    with pytest.raises(InvalidParameter):
        cors.check([])


def test_cors_document_round_trip():
    body = xml_of("CORSConfiguration", doc.cors(RULES))
    assert doc.read_cors(body) == RULES


# -- lifecycle ----------------------------------------------------------------------------------------
def rule(**kw):
    return {"ID": "r", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}, **kw}


def test_lifecycle_checks():
    assert lifecycle.check([rule()])[0]["ID"] == "r"
    assert lifecycle.check([{k: v for k, v in rule().items() if k != "ID"}])[0]["ID"]  # S3 gives one
    bad = [
        (rule(Expiration={"Days": 0}), "InvalidArgument"),
        (rule(Expiration={"Date": "2030-01-01T01:00:00Z"}), "InvalidArgument"),
        (rule(Expiration={"Days": 1, "Date": "2030-01-01T00:00:00Z"}), "MalformedXML"),
        (rule(Status="On"), "MalformedXML"),
        ({"ID": "r", "Status": "Enabled", "Expiration": {"Days": 1}}, "MalformedXML"),
        (rule(Prefix="a"), "MalformedXML"),
        (rule(Transition=True), "NotImplemented"),
        ({"ID": "r", "Status": "Enabled", "Filter": {}}, "InvalidRequest"),
        (rule(Filter={"Tag": {"Key": "k", "Value": "v"}}, AbortIncompleteMultipartUpload={"DaysAfterInitiation": 1}),
         "InvalidRequest"),
        (rule(Filter={"ObjectSizeGreaterThan": 10, "ObjectSizeLessThan": 5}), "MalformedXML"),
        (rule(Filter={"And": {"ObjectSizeGreaterThan": 10, "ObjectSizeLessThan": 5}}), "InvalidArgument"),
    ]
    for r, code in bad:
        with pytest.raises(InvalidParameter) as e:
            lifecycle.check([r])
        assert e.value.code == code, r
    with pytest.raises(InvalidParameter) as e:
        lifecycle.check([rule(), rule()])
    assert e.value.code == "InvalidArgument"


def test_lifecycle_filters_and_due_dates():
    r = rule(Filter={"And": {"Prefix": "logs/", "Tags": [{"Key": "t", "Value": "1"}], "ObjectSizeGreaterThan": 5}})
    assert lifecycle.applies(r, "logs/a", 10, [("t", "1")])
    assert not lifecycle.applies(r, "logs/a", 5, [("t", "1")])
    assert not lifecycle.applies(r, "logs/a", 10, [])
    assert not lifecycle.applies(r, "other/a", 10, [("t", "1")])
    assert not lifecycle.applies({**r, "Status": "Disabled"}, "logs/a", 10, [("t", "1")])
    assert lifecycle.applies({"ID": "p", "Status": "Enabled", "Prefix": "x"}, "xy")
    # real days round up to the next midnight UTC; shortened days are exact
    written = dt.datetime(2026, 3, 1, 15, 30, tzinfo=dt.timezone.utc).timestamp()
    due = lifecycle.expires_at(rule(Expiration={"Days": 2}), written)
    assert dt.datetime.fromtimestamp(due, dt.timezone.utc) == dt.datetime(2026, 3, 4, tzinfo=dt.timezone.utc)
    assert lifecycle.expires_at(rule(Expiration={"Days": 2}), 100.0, day=3.0) == 106.0
    assert lifecycle.expires_at(rule(Expiration={"Date": "2030-01-01T00:00:00Z"}), 0) == \
        dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc).timestamp()
    header = lifecycle.expiry_header([rule(ID="soon", Expiration={"Days": 1})], "k", 1, [], written)
    assert header == 'expiry-date="Tue, 03 Mar 2026 00:00:00 GMT", rule-id="soon"'


def test_lifecycle_document_keeps_the_shape_it_was_given():
    rules = [rule(), {"ID": "legacy", "Prefix": "old/", "Status": "Disabled", "Expiration": {"Days": 3}},
             rule(ID="and", Filter={"And": {"Prefix": "a/", "Tags": [{"Key": "k", "Value": "v"}],
                                            "ObjectSizeLessThan": 100}},
                  NoncurrentVersionExpiration={"NoncurrentDays": 4},
                  AbortIncompleteMultipartUpload={"DaysAfterInitiation": 2})]
    body = xml_of("LifecycleConfiguration", doc.lifecycle(rules))
    assert doc.read_lifecycle(body) == rules
    with pytest.raises(InvalidParameter) as e:
        doc.read_lifecycle(b"<LifecycleConfiguration><Rule><Expiration><Days>soon</Days></Expiration></Rule>"
                           b"</LifecycleConfiguration>")
    assert e.value.code == "MalformedXML"


def test_small_documents():
    assert doc.read_tagging(xml_of("Tagging", doc.tagging([("a", "1"), ("b", "")]))) == [("a", "1"), ("b", "")]
    flags = {"BlockPublicAcls": True, "IgnorePublicAcls": False, "BlockPublicPolicy": True,
             "RestrictPublicBuckets": False}
    assert doc.read_public_access_block(xml_of("PublicAccessBlockConfiguration",
                                               doc.public_access_block(flags))) == flags
    assert doc.read_ownership(xml_of("OwnershipControls", doc.ownership("ObjectWriter"))) == "ObjectWriter"
    assert doc.read_versioning(b"<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>") == \
        {"Status": "Suspended"}
    assert doc.read_versioning(b"<VersioningConfiguration><MfaDelete>Enabled</MfaDelete><Status>Enabled</Status>"
                               b"</VersioningConfiguration>") == {"Status": "Enabled", "MFADelete": "Enabled"}
    for bad in (b"<Tagging/>", b"<OwnershipControls/>", b"<PublicAccessBlockConfiguration><X>true</X>"
                b"</PublicAccessBlockConfiguration>"):
        with pytest.raises(InvalidParameter):
            (doc.read_tagging if bad.startswith(b"<Tag") else
             doc.read_ownership if bad.startswith(b"<Own") else doc.read_public_access_block)(bad)


# -- null versions ----------------------------------------------------------------------------------------
def rows_of(keys):
    """listing.py's rows(after, prefix) over a sorted key list, as the index gives them."""
    return lambda after, prefix: ({"key": k} for k in sorted(keys) if k > after and k.startswith(prefix))


def test_null_versions_page_like_s3():
    rows = rows_of(["a", "b/1", "b/2", "c", "d/x/y"])
    page = versions_page(rows, {"max-keys": "2"})
    assert [v["key"] for v in page["versions"]] == ["a", "b/1"] and page["truncated"]
    assert page["next_key_marker"] == "b/1" and page["next_version_id_marker"] == "null"
    page = versions_page(rows, {"key-marker": "b/1", "version-id-marker": "null"})
    assert [v["key"] for v in page["versions"]] == ["b/2", "c", "d/x/y"] and not page["truncated"]
    page = versions_page(rows, {"delimiter": "/", "max-keys": "2"})
    assert [v["key"] for v in page["versions"]] == ["a"] and page["prefixes"] == ["b/"]
    assert page["next_key_marker"] == "b/" and page["next_version_id_marker"] == ""
    page = versions_page(rows, {"delimiter": "/", "key-marker": page["next_key_marker"]})
    assert [v["key"] for v in page["versions"]] == ["c"] and page["prefixes"] == ["d/"]   # b/ is not repeated
    for params in ({"version-id-marker": "null"}, {"key-marker": "a", "version-id-marker": "abc"},
                   {"max-keys": "x"}, {"encoding-type": "base64"}):
        with pytest.raises(InvalidParameter):
            versions_page(rows, params)


# -- virtual-hosted style ----------------------------------------------------------------------------------
@pytest.mark.parametrize("host, bucket", [
    ("my-bucket.localhost:4566", "my-bucket"), ("a.b.c.localhost", "a.b.c"), ("localhost:4566", None),
    ("127.0.0.1:4566", None), ("[::1]:4566", None), ("x.localhost.evil.org", None), (".localhost", None),
    ("MY-BUCKET.LOCALHOST", "my-bucket"),
])
def test_bucket_from_host(host, bucket):
    assert virtual_host_bucket({"HTTP_HOST": host}, ("localhost",)) == bucket


def test_a_bucket_host_routes_every_path_to_s3():
    env = {"HTTP_HOST": "bkt.localhost:4566", "PATH_INFO": "/api/v1/health"}
    assert protocol_of(env, ("localhost",)) == "s3"
    assert protocol_of(env) == "web" and protocol_of({**env, "HTTP_HOST": "localhost"}, ("localhost",)) == "web"
