"""The S3 gateway: a plain WSGI app, thin over the `Storage` facade.

Each request: verify the SigV4 signature with pocketcloud's keys (or accept it unsigned,
which only a public-read bucket's object GET/HEAD survives) -> parse it -> one `Storage`
call, which authorizes, holds quota, talks to the engine and keeps the size index -> render
the answer: our own XML for what the cloud owns (buckets, policies, ACLs), the engine's
answer relayed for objects and listings. Bodies stream both ways; an object never sits
whole in memory.
"""
from __future__ import annotations

import secrets
import time

from werkzeug.wrappers import Response

from emulator.billing import s3_request as bill_s3_request
from emulator.errors import InvalidParameter
from emulator.storage import PERMISSIONS, S3_NS, Reply, canned_access
from emulator.xmldoc import render

from .. import sigv4
from .errors import error_response
from .request import (EMPTY_BODY, LIST_PARAMS, LIST_PARTS_PARAMS, LIST_UPLOADS_PARAMS, MAX_POLICY, MAX_XML_BODY,
                      S3Request, bucket_configuration, completion_parts, delete_request)

XSI = "http://www.w3.org/2001/XMLSchema-instance"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


class S3Response(Response):
    default_mimetype = None     # an S3 answer has a Content-Type only when it has a body that says what it is


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def xml(root: str, body, status: int = 200) -> S3Response:
    return S3Response(render(root, body, namespace=S3_NS, list_item=None), status=status,
                      content_type="application/xml")


def empty(status: int = 200, headers: list[tuple[str, str]] | None = None) -> S3Response:
    return S3Response(b"", status=status, headers=headers)


def relay(reply: Reply) -> S3Response:
    """The engine's answer as the client's, streamed; the engine connection is released
    (or dropped) when the client's response is closed."""
    resp = S3Response(reply.iter(), status=reply.status, headers=reply.headers)
    resp.call_on_close(reply.close)
    return resp


def _one(sub: set[str]) -> str | None:
    if not sub:
        return ""
    return next(iter(sub)) if len(sub) == 1 else None


class S3Gateway:
    def __init__(self, cloud):
        self.cloud = cloud
        self.storage = cloud.storage
        self.accounts = cloud.accounts

    # -- WSGI ---------------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request_id = secrets.token_hex(8).upper()
        resource = ""
        try:
            req = S3Request(environ)
            resource = req.resource
            self.authenticate(req)
            bill_s3_request(self.cloud, req.method, req.bucket, req.key, req.sub)  # billing hook: count the request
            resp = self.dispatch(req)
        except Exception as exc:  # noqa: BLE001 - every failure is an S3 error document
            resp = error_response(exc, resource, request_id)
        resp.headers["x-amz-request-id"] = request_id
        return resp(environ, start_response)

    def authenticate(self, req: S3Request) -> None:
        """Signed requests must be signed for this endpoint's region and for s3."""
        if sigv4.is_signed(req.environ):
            req.auth = sigv4.verify(req.environ, self.accounts.secret_for, region=self.storage.region,
                                    service="s3")
            req.account = req.auth.account

    # -- routing ------------------------------------------------------------------------------------
    def dispatch(self, req: S3Request) -> Response:
        m, sub = req.method, req.sub
        if not req.bucket:
            if m == "GET":
                return self.list_buckets(req)
            raise InvalidParameter("The specified method is not allowed against this resource.",
                                   code="MethodNotAllowed")
        if req.key is None:
            handler = {
                ("PUT", ""): self.create_bucket, ("PUT", "policy"): self.put_bucket_policy,
                ("PUT", "acl"): self.put_bucket_acl,
                ("DELETE", ""): self.delete_bucket, ("DELETE", "policy"): self.delete_bucket_policy,
                ("HEAD", ""): self.head_bucket,
                ("GET", ""): self.list_objects, ("GET", "location"): self.get_bucket_location,
                ("GET", "policy"): self.get_bucket_policy, ("GET", "acl"): self.get_bucket_acl,
                ("GET", "uploads"): self.list_multipart_uploads, ("GET", "versioning"): self.get_bucket_versioning,
                ("POST", "delete"): self.delete_objects,
            }.get((m, _one(sub)))
        else:
            copy = req.header("x-amz-copy-source")
            if m == "PUT" and sub == {"partNumber", "uploadId"}:
                handler = None if copy else self.upload_part
            elif m == "PUT" and not sub:
                handler = self.copy_object if copy else self.put_object
            else:
                handler = {
                    ("GET", ""): self.get_object, ("HEAD", ""): self.get_object,
                    ("GET", "partNumber"): self.get_object, ("HEAD", "partNumber"): self.get_object,
                    ("DELETE", ""): self.delete_object,
                    ("POST", "uploads"): self.create_multipart_upload,
                    ("POST", "uploadId"): self.complete_multipart_upload,
                    ("DELETE", "uploadId"): self.abort_multipart_upload, ("GET", "uploadId"): self.list_parts,
                }.get((m, _one(sub)))
        if handler is None:
            what = ", ".join(sorted(sub)) or m
            raise InvalidParameter(f"pocketcloud's S3 gateway does not implement this operation ({m} {what})",
                                   code="NotImplemented")
        return handler(req)

    # -- buckets --------------------------------------------------------------------------------------
    def list_buckets(self, req: S3Request) -> Response:
        buckets = self.storage.list_buckets(req.account)
        prefix = req.q.get("prefix")
        owner = req.account
        return xml("ListAllMyBucketsResult", {
            "Owner": {"ID": owner.id, "DisplayName": owner.name},
            "Buckets": {"Bucket": [{"Name": b.name, "CreationDate": _iso(b.created_at),
                                    "BucketRegion": self.storage.region}
                                   for b in buckets if not prefix or b.name.startswith(prefix)]}})

    def create_bucket(self, req: S3Request) -> Response:
        acl = (req.header("x-amz-acl") or "private").lower()
        if acl not in ("private", "public-read"):
            raise InvalidParameter(f"canned ACL {acl[:40]!r} is not supported (private or public-read)",
                                   code="NotImplemented")
        self.storage.create_bucket(req.account, req.bucket, access=acl,
                                   configuration=lambda: bucket_configuration(req.read_body(MAX_XML_BODY)))
        return empty(200, [("Location", "/" + req.bucket)])

    def delete_bucket(self, req: S3Request) -> Response:
        self.storage.delete_bucket(req.account, req.bucket)
        return empty(204)

    def head_bucket(self, req: S3Request) -> Response:
        self.storage.head_bucket(req.account, req.bucket)
        return empty(200, [("x-amz-bucket-region", self.storage.region)])

    def get_bucket_location(self, req: S3Request) -> Response:
        self.storage.head_bucket(req.account, req.bucket)
        return xml("LocationConstraint", "" if self.storage.region == "us-east-1" else self.storage.region)

    def get_bucket_versioning(self, req: S3Request) -> Response:
        self.storage.head_bucket(req.account, req.bucket)
        return xml("VersioningConfiguration", None)

    def get_bucket_policy(self, req: S3Request) -> Response:
        doc = self.storage.get_policy(req.account, req.bucket)
        return S3Response(doc.encode(), content_type="application/json")

    def put_bucket_policy(self, req: S3Request) -> Response:
        self.storage.put_policy(req.account, req.bucket,
                                lambda: req.read_body(MAX_POLICY).decode("utf-8", "replace"))
        return empty(204)

    def delete_bucket_policy(self, req: S3Request) -> Response:
        self.storage.delete_policy(req.account, req.bucket)
        return empty(204)

    def get_bucket_acl(self, req: S3Request) -> Response:
        acl = self.storage.get_acl(req.account, req.bucket)

        def grant(grantee: dict, permission: str) -> dict:
            return {"Grantee": {"@xmlns:xsi": XSI, **grantee}, "Permission": permission}

        owner = {"ID": acl.owner.id, "DisplayName": acl.owner.name}
        grants = [grant({"@xsi:type": "CanonicalUser", **owner}, "FULL_CONTROL")]
        if acl.public_read:
            grants.append(grant({"@xsi:type": "Group", "URI": ALL_USERS}, "READ"))
        for account_id, level in sorted(acl.grants.items()):
            grants += [grant({"@xsi:type": "CanonicalUser", "ID": account_id}, p) for p in PERMISSIONS[level]]
        return xml("AccessControlPolicy", {"Owner": owner, "AccessControlList": {"Grant": grants}})

    def put_bucket_acl(self, req: S3Request) -> Response:
        self.storage.put_acl(req.account, req.bucket, lambda: canned_access(
            req.header("x-amz-acl") or "", bool(req.read_body(MAX_XML_BODY).strip())))
        return empty(200)

    # -- listings --------------------------------------------------------------------------------------
    def list_objects(self, req: S3Request) -> Response:
        return relay(self.storage.list_objects_s3(req.account, req.bucket, req.pick(LIST_PARAMS)))

    def list_multipart_uploads(self, req: S3Request) -> Response:
        return relay(self.storage.list_uploads(req.account, req.bucket, req.pick(LIST_UPLOADS_PARAMS)))

    def list_parts(self, req: S3Request) -> Response:
        return relay(self.storage.list_parts(req.account, req.bucket, req.key, req.q["uploadId"],
                                             req.pick(LIST_PARTS_PARAMS)))

    # -- objects ---------------------------------------------------------------------------------------
    def get_object(self, req: S3Request) -> Response:
        return relay(self.storage.get_object(req.account, req.bucket, req.key, req.forward_headers(),
                                             method=req.method, query=req.response_params()))

    def put_object(self, req: S3Request) -> Response:
        body = req.object_body()
        reply = self.storage.put_object(req.account, req.bucket, req.key, body, body.length, req.forward_headers())
        if reply.ok and body.checksum:
            reply.add_header(*body.checksum)
        return relay(reply)

    def copy_object(self, req: S3Request) -> Response:
        src_bucket, src_key = req.copy_source()
        return relay(self.storage.copy_object(req.account, req.bucket, req.key, src_bucket, src_key,
                                              req.forward_headers(), lambda: req.read_body(EMPTY_BODY)))

    def delete_object(self, req: S3Request) -> Response:
        return relay(self.storage.delete_object(req.account, req.bucket, req.key))

    def delete_objects(self, req: S3Request) -> Response:
        return relay(self.storage.delete_objects(req.account, req.bucket,
                                                 lambda: delete_request(req.read_body(MAX_XML_BODY))))

    # -- multipart ---------------------------------------------------------------------------------------
    def create_multipart_upload(self, req: S3Request) -> Response:
        return relay(self.storage.create_upload(req.account, req.bucket, req.key, req.forward_headers(),
                                                lambda: req.read_body(EMPTY_BODY)))

    def upload_part(self, req: S3Request) -> Response:
        number = req.part_number()
        body = req.object_body()
        reply = self.storage.upload_part(req.account, req.bucket, req.key, req.q["uploadId"], number, body,
                                         body.length, req.forward_headers())
        if reply.ok and body.checksum:
            reply.add_header(*body.checksum)
        return relay(reply)

    def complete_multipart_upload(self, req: S3Request) -> Response:
        return relay(self.storage.complete_upload(req.account, req.bucket, req.key, req.q["uploadId"],
                                                  lambda: completion_parts(req.read_body(MAX_XML_BODY))))

    def abort_multipart_upload(self, req: S3Request) -> Response:
        return relay(self.storage.abort_upload(req.account, req.bucket, req.key, req.q["uploadId"]))


def create_s3_app(cloud) -> S3Gateway:
    """The S3 gateway as a WSGI callable; needs cloud.storage, cloud.accounts."""
    return S3Gateway(cloud)
