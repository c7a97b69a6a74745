"""The XML documents of S3's bucket and object settings, read into the data the `Storage`
facade takes and written back from the data it gives: tagging, CORS, lifecycle, public
access block, ownership controls, versioning. Bodies are parsed with entities refused
(emulator.xmldoc); what is missing or misshapen answers MalformedXML, as S3 does."""
from __future__ import annotations

from emulator.errors import InvalidParameter
from emulator.xmldoc import Element, children, local, parse, text

PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def _malformed(what: str) -> InvalidParameter:
    return InvalidParameter(f"The XML you provided was not well-formed or did not validate against our published "
                            f"schema ({what})", code="MalformedXML")


def _child(elem: Element, name: str) -> Element | None:
    found = children(elem, name)
    return found[0] if found else None


def _int(elem: Element, name: str) -> int | None:
    value = text(elem, name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        raise _malformed(f"{name} must be an integer") from None


def _bool(value: str | None, what: str) -> bool:
    v = (value or "").strip().lower()
    if v not in ("true", "false"):
        raise _malformed(f"{what} is true or false")
    return v == "true"


def _tag(elem: Element) -> tuple[str, str]:
    key, value = text(elem, "Key"), text(elem, "Value")
    if key is None:
        raise _malformed("each Tag needs a Key")
    return key, value or ""


# -- tagging -------------------------------------------------------------------------------------
def read_tagging(data: bytes) -> list[tuple[str, str]]:
    tag_set = _child(parse(data, "Tagging"), "TagSet")
    if tag_set is None:
        raise _malformed("Tagging needs a TagSet")
    return [_tag(t) for t in children(tag_set, "Tag")]


def tagging(tags) -> dict:
    return {"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in tags]}}


# -- CORS ----------------------------------------------------------------------------------------
def read_cors(data: bytes) -> list[dict]:
    rules = []
    for r in children(parse(data, "CORSConfiguration"), "CORSRule"):
        rules.append({
            "id": text(r, "ID"),
            "allowed_origins": [(e.text or "").strip() for e in children(r, "AllowedOrigin")],
            "allowed_methods": [(e.text or "").strip() for e in children(r, "AllowedMethod")],
            "allowed_headers": [(e.text or "").strip() for e in children(r, "AllowedHeader")],
            "expose_headers": [(e.text or "").strip() for e in children(r, "ExposeHeader")],
            "max_age": _int(r, "MaxAgeSeconds"),
        })
    return rules


def cors(rules: list[dict]) -> dict:
    return {"CORSRule": [{"ID": r.get("id"), "AllowedHeader": r["allowed_headers"] or None,
                          "AllowedMethod": r["allowed_methods"], "AllowedOrigin": r["allowed_origins"],
                          "ExposeHeader": r["expose_headers"] or None, "MaxAgeSeconds": r.get("max_age")}
                         for r in rules]}


# -- lifecycle -----------------------------------------------------------------------------------
def _sizes(elem: Element, out: dict) -> dict:
    for name in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        n = _int(elem, name)
        if n is not None:
            out[name] = n
    return out


def _filter(elem: Element) -> dict:
    out: dict = {}
    if text(elem, "Prefix") is not None:
        out["Prefix"] = text(elem, "Prefix")
    tag = _child(elem, "Tag")
    if tag is not None:
        k, v = _tag(tag)
        out["Tag"] = {"Key": k, "Value": v}
    both = _child(elem, "And")
    if both is not None:
        inner: dict = {}
        if text(both, "Prefix") is not None:
            inner["Prefix"] = text(both, "Prefix")
        tags = [_tag(t) for t in children(both, "Tag")]
        if tags:
            inner["Tags"] = [{"Key": k, "Value": v} for k, v in tags]
        out["And"] = _sizes(both, inner)
    return _sizes(elem, out)


def _action(elem: Element | None, ints: tuple[str, ...]) -> dict | None:
    if elem is None:
        return None
    out: dict = {}
    for name in ints:
        n = _int(elem, name)
        if n is not None:
            out[name] = n
    return out


def read_lifecycle(data: bytes) -> list[dict]:
    rules = []
    for r in children(parse(data, "LifecycleConfiguration"), "Rule"):
        rule: dict = {}
        if text(r, "ID") is not None:
            rule["ID"] = text(r, "ID")
        if text(r, "Prefix") is not None:
            rule["Prefix"] = text(r, "Prefix")
        f = _child(r, "Filter")
        if f is not None:
            rule["Filter"] = _filter(f)
        rule["Status"] = (text(r, "Status") or "").strip()
        exp = _child(r, "Expiration")
        if exp is not None:
            rule["Expiration"] = _action(exp, ("Days",))
            if text(exp, "Date") is not None:
                rule["Expiration"]["Date"] = text(exp, "Date").strip()
            if text(exp, "ExpiredObjectDeleteMarker") is not None:
                rule["Expiration"]["ExpiredObjectDeleteMarker"] = _bool(text(exp, "ExpiredObjectDeleteMarker"),
                                                                        "ExpiredObjectDeleteMarker")
        nve = _action(_child(r, "NoncurrentVersionExpiration"), ("NoncurrentDays", "NewerNoncurrentVersions"))
        if nve is not None:
            rule["NoncurrentVersionExpiration"] = nve
        abort = _action(_child(r, "AbortIncompleteMultipartUpload"), ("DaysAfterInitiation",))
        if abort is not None:
            rule["AbortIncompleteMultipartUpload"] = abort
        for refused in ("Transition", "NoncurrentVersionTransition"):
            if children(r, refused):
                rule[refused] = True
        rules.append(rule)
    return rules


def lifecycle(rules: list[dict]) -> dict:
    def one(rule: dict) -> dict:
        out: dict = {"ID": rule.get("ID")}
        if "Filter" in rule:
            f = dict(rule["Filter"])
            if "And" in f:
                inner = dict(f["And"])
                tags = inner.pop("Tags", None)
                f["And"] = {"Prefix": inner.get("Prefix"), "Tag": tags,
                            "ObjectSizeGreaterThan": inner.get("ObjectSizeGreaterThan"),
                            "ObjectSizeLessThan": inner.get("ObjectSizeLessThan")}
            out["Filter"] = f
        if "Prefix" in rule:
            out["Prefix"] = rule["Prefix"]
        out["Status"] = rule["Status"]
        for action in ("Expiration", "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload"):
            if rule.get(action) is not None:
                out[action] = rule[action]
        return out

    return {"Rule": [one(r) for r in rules]}


# -- public access block, ownership, versioning ----------------------------------------------------
def read_public_access_block(data: bytes) -> dict:
    root = parse(data, "PublicAccessBlockConfiguration")
    out = {}
    for child in root:
        name = local(child.tag)
        if name not in PAB_FLAGS:
            raise _malformed(f"unknown element {name[:40]}")
        out[name] = _bool(child.text, name)
    return out


def public_access_block(flags: dict) -> dict:
    return {name: bool(flags.get(name)) for name in PAB_FLAGS}


def read_ownership(data: bytes) -> str:
    rules = children(parse(data, "OwnershipControls"), "Rule")
    if len(rules) != 1 or text(rules[0], "ObjectOwnership") is None:
        raise _malformed("OwnershipControls holds one Rule with an ObjectOwnership")
    return text(rules[0], "ObjectOwnership").strip()


def ownership(value: str) -> dict:
    return {"Rule": {"ObjectOwnership": value}}


def read_versioning(data: bytes) -> dict:
    """{'Status', 'MFADelete'} as given (on the wire MFA delete is spelled MfaDelete)."""
    root = parse(data, "VersioningConfiguration")
    out = {"Status": text(root, "Status"), "MFADelete": text(root, "MfaDelete") or text(root, "MFADelete")}
    return {k: v.strip() for k, v in out.items() if v is not None}


def read_request_payment(data: bytes) -> str:
    """RequestPaymentConfiguration's Payer."""
    root = parse(data, "RequestPaymentConfiguration")
    payer = (text(root, "Payer") or "").strip()
    if payer not in ("BucketOwner", "Requester"):
        raise _malformed("Payer is BucketOwner or Requester")
    return payer
