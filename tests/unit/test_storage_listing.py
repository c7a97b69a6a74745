"""Listings answered from the index (listing.py over index.py's rows) against the model of
S3's documented listing rules (tests/s3model.py), on keys and parameters Hypothesis makes:
max-keys counts keys and prefixes; paging (v1 NextMarker, v2 continuation tokens) lists
everything exactly once, in order."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.errors import InvalidParameter
from emulator.state import Store
from emulator.storage import listing
from emulator.storage.index import ObjectIndex
from tests.s3model import listing as model


def shown(page: dict) -> list[tuple[str, str]]:
    """A page's keys and prefixes merged back into listing order."""
    return sorted([("key", o["key"]) for o in page["objects"]] + [("prefix", p) for p in page["prefixes"]],
                  key=lambda i: i[1].encode("utf-8"))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store(tmp_path_factory.mktemp("idx") / "s.db")
    with s.tx() as c:
        c.execute("INSERT INTO accounts (id, name, role, created_at) VALUES ('111111111111', 'o', 'user', 0)")
    return s


_bucket_seq = iter(range(10**9))


def indexed(store, keys) -> ObjectIndex:
    """A fresh bucket holding `keys`, in a real index (SQLite orders the rows)."""
    name = f"b{next(_bucket_seq)}"
    with store.tx() as c:
        c.execute("INSERT INTO buckets (name, owner, created_at) VALUES (?, '111111111111', 0)", (name,))
    index = ObjectIndex(store)
    for k in keys:
        index.record_object(name, k, len(k), etag="e")
    index.bucket_name = name
    return index


CHARS = st.sampled_from(["a", "b", "/", "-", "%", "+", " ", "\u00e9", "\U0001F600", "\u00ff", "0"])
KEY = st.text(CHARS, min_size=1, max_size=6)
SMALL = st.text(CHARS, max_size=3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=st.lists(KEY, max_size=25, unique=True), prefix=SMALL, delimiter=st.sampled_from(["", "/", "a", "/a", "-"]),
       after=SMALL, limit=st.integers(0, 6), v2=st.booleans())
def test_listing_pages_match_the_model(store, keys, prefix, delimiter, after, limit, v2):
    index = indexed(store, keys)
    rows = index.lister(index.bucket_name)
    expected = model(keys, prefix, delimiter, after)
    params = {"prefix": prefix, "delimiter": delimiter, "max-keys": str(limit)}
    params.update({"list-type": "2", "start-after": after} if v2 else {"marker": after})
    page = listing.objects_page(rows, params)
    assert shown(page) == expected[:limit]
    assert page["truncated"] == (len(expected) > limit and limit > 0)
    if limit == 0:
        return
    # page through the rest: every item exactly once, in order
    seen = shown(page)
    while page["truncated"]:
        if v2:
            assert "next_token" in page
            params = {**params, "continuation-token": page["next_token"]}
        else:
            marker = page.get("next_marker") or page["objects"][-1]["key"]  # S3's rule for clients
            if delimiter:
                assert page["next_marker"] == seen[-1][1]
            params = {**params, "marker": marker}
        page = listing.objects_page(rows, params)
        seen += shown(page)
    assert seen == expected


def test_index_rows_are_in_utf8_byte_order_and_batched(store):
    keys = ["\U0001F600", "\uffff", "z", "a/b", "a", "a0", "a/", "\u00e9", "A"]
    index = indexed(store, keys)
    got = [r["key"] for r in index.rows(index.bucket_name, "", "", batch=2)]
    assert got == sorted(keys, key=lambda s: s.encode("utf-8"))
    assert [r["key"] for r in index.rows(index.bucket_name, "a/", "a", batch=2)] == ["a/b", "a0"]
    assert [r["key"] for r in index.rows(index.bucket_name, "", "a/", batch=1)] == ["a/", "a/b"]


def test_v2_echoes_and_tokens():
    rows = lambda after, prefix: ({"key": k} for k in ["a", "b", "c"] if k > after and k.startswith(prefix))  # noqa: E731
    page = listing.objects_page(rows, {"list-type": "2", "max-keys": "1", "start-after": "a", "fetch-owner": "true"})
    assert [o["key"] for o in page["objects"]] == ["b"] and page["start_after"] == "a" and page["fetch_owner"]
    token = page["next_token"]
    page = listing.objects_page(rows, {"list-type": "2", "continuation-token": token, "start-after": "z"})
    assert page["continuation_token"] == token and [o["key"] for o in page["objects"]] == ["c"]  # token wins
    for bad in ({"list-type": "2", "continuation-token": "garbage"}, {"max-keys": "-1"}, {"max-keys": "ten"},
                {"encoding-type": "base64"}, {"list-type": "3"}):
        with pytest.raises(InvalidParameter) as e:
            listing.objects_page(rows, bad)
        assert e.value.code == "InvalidArgument"
    assert listing.objects_page(rows, {"max-keys": "5000"})["max_keys"] == 1000
