"""The S3 gateway: a plain WSGI app, thin over the `Storage` facade.

Each request: verify the SigV4 signature with pocketcloud's keys (or accept it unsigned,
which only what ACLs and policies open to anyone survives) -> parse it (bucket from the
Host for virtual-hosted style, else from the path) -> one `Storage` call, which authorizes,
holds quota, talks to the engine and keeps the index -> render the answer: our own XML for
what the cloud owns (buckets, policies, ACLs, settings, listings it keeps), the engine's
answer relayed for objects and object listings. Bodies stream both ways; an object never
sits whole in memory.

Browsers: an OPTIONS preflight is answered from the bucket's CORS rules, and a request that
carries an Origin gets the CORS headers of the rule that allows it. Every answer says
`X-Content-Type-Options: nosniff`: user content is served as the type it was stored with,
never sniffed into something else.
"""
from __future__ import annotations

import secrets

from werkzeug.wrappers import Response

from emulator.billing import s3_request as bill_s3_request
from emulator.errors import InvalidParameter
from emulator.storage import cors, policy_eval

from .. import sigv4
from .buckets import BucketHandlers
from .errors import error_response
from .objects import ObjectHandlers
from .request import S3Request
from .responses import empty


def _one(sub: set[str]) -> str | None:
    if not sub:
        return ""
    return next(iter(sub)) if len(sub) == 1 else None


class S3Gateway(BucketHandlers, ObjectHandlers):
    def __init__(self, cloud):
        self.cloud = cloud
        self.storage = cloud.storage
        self.accounts = cloud.accounts
        self.domains = tuple(getattr(cloud.config, "s3_domains", ()) or ())
        b = self
        self.bucket_routes = {
            "PUT": {"": b.create_bucket, "policy": b.put_bucket_policy, "acl": b.put_bucket_acl,
                    "tagging": b.put_bucket_tagging, "cors": b.put_bucket_cors, "lifecycle": b.put_bucket_lifecycle,
                    "publicAccessBlock": b.put_public_access_block, "ownershipControls": b.put_ownership_controls,
                    "versioning": b.put_bucket_versioning, "requestPayment": b.put_bucket_request_payment},
            "GET": {"": b.list_objects, "location": b.get_bucket_location, "policy": b.get_bucket_policy,
                    "acl": b.get_bucket_acl, "tagging": b.get_bucket_tagging, "cors": b.get_bucket_cors,
                    "lifecycle": b.get_bucket_lifecycle, "publicAccessBlock": b.get_public_access_block,
                    "ownershipControls": b.get_ownership_controls, "versioning": b.get_bucket_versioning,
                    "versions": b.list_object_versions, "uploads": b.list_multipart_uploads,
                    "requestPayment": b.get_bucket_request_payment, "policyStatus": b.get_bucket_policy_status,
                    "logging": b.get_bucket_logging, "accelerate": b.get_bucket_accelerate,
                    "notification": b.get_bucket_notification, "website": b.get_bucket_website,
                    "replication": b.get_bucket_replication, "encryption": b.get_bucket_encryption,
                    "object-lock": b.get_object_lock_configuration},
            "DELETE": {"": b.delete_bucket, "policy": b.delete_bucket_policy, "tagging": b.delete_bucket_tagging,
                       "cors": b.delete_bucket_cors, "lifecycle": b.delete_bucket_lifecycle,
                       "publicAccessBlock": b.delete_public_access_block,
                       "ownershipControls": b.delete_ownership_controls},
            "HEAD": {"": b.head_bucket},
            "POST": {"delete": b.delete_objects, "": b.post_object},
        }
        self.object_routes = {
            "GET": {"": b.get_object, "partNumber": b.get_object, "tagging": b.get_object_tagging,
                    "acl": b.get_object_acl, "uploadId": b.list_parts, "attributes": b.get_object_attributes},
            "HEAD": {"": b.get_object, "partNumber": b.get_object},
            "PUT": {"tagging": b.put_object_tagging, "acl": b.put_object_acl},
            "DELETE": {"": b.delete_object, "tagging": b.delete_object_tagging, "uploadId": b.abort_multipart_upload},
            "POST": {"uploads": b.create_multipart_upload, "uploadId": b.complete_multipart_upload},
        }

    # -- WSGI ---------------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request_id = secrets.token_hex(8).upper()
        resource = ""
        req = None
        try:
            req = S3Request(environ, self.domains)
            resource = req.resource
            if req.method == "OPTIONS":
                resp = self.preflight(req)
            else:
                self.authenticate(req)
                bill_s3_request(self.cloud, req.method, req.bucket, req.key, req.sub)  # billing hook
                resp = self.dispatch(req)
        except Exception as exc:  # noqa: BLE001 - every failure is an S3 error document
            resp = error_response(exc, resource, request_id)
        resp.headers["x-amz-request-id"] = request_id
        resp.headers["X-Content-Type-Options"] = "nosniff"
        if req is not None and req.method != "OPTIONS":
            self.add_cors(req, resp)
        return resp(environ, start_response)

    def authenticate(self, req: S3Request) -> None:
        """Signed requests must be signed for this endpoint's region and for s3."""
        if sigv4.is_signed(req.environ):
            req.auth = sigv4.verify(req.environ, self.accounts.secret_for, region=self.storage.region,
                                    service="s3")
            req.account = req.auth.account

    # -- CORS ---------------------------------------------------------------------------------------
    def preflight(self, req: S3Request) -> Response:
        """A browser asking whether it may send the real request (never signed)."""
        rules = self.storage.cors_rules(req.bucket)
        return empty(200, cors.preflight(rules, req.header("origin"), req.header("access-control-request-method"),
                                         req.header("access-control-request-headers")))

    def add_cors(self, req: S3Request, resp: Response) -> None:
        origin = req.header("origin")
        if origin and req.bucket:
            try:
                rules = self.storage.cors_rules(req.bucket)
            except Exception:  # noqa: BLE001 - CORS headers never turn an answer into a failure
                return
            for name, value in cors.actual(rules, origin, req.method):
                resp.headers[name] = value

    # -- routing ------------------------------------------------------------------------------------
    def dispatch(self, req: S3Request) -> Response:
        m, sub = req.method, req.sub
        self.storage.expect_owner(req.bucket, req.header("x-amz-expected-bucket-owner"))
        if req.header("x-amz-copy-source"):
            self.storage.expect_owner(req.copy_source()[0], req.header("x-amz-source-expected-bucket-owner"))
        if not req.bucket:
            if m == "GET":
                return self.list_buckets(req)
            raise InvalidParameter("The specified method is not allowed against this resource.",
                                   code="MethodNotAllowed")
        if req.key is None:
            handler = self.bucket_routes.get(m, {}).get(_one(sub))
        else:
            copy = req.header("x-amz-copy-source")
            if m == "PUT" and sub == {"partNumber", "uploadId"}:
                handler = self.upload_part_copy if copy else self.upload_part
            elif m == "PUT" and not sub:
                handler = self.copy_object if copy else self.put_object
            else:
                handler = self.object_routes.get(m, {}).get(_one(sub))
        if handler is None:
            what = ", ".join(sorted(sub)) or m
            raise InvalidParameter(f"pocketcloud's S3 gateway does not implement this operation ({m} {what})",
                                   code="NotImplemented")
        token = policy_eval.current.set(policy_context(req, handler.__name__))
        try:
            return handler(req)
        finally:
            policy_eval.current.reset(token)


# the S3 action a handler performs, where its name does not spell it (IAM's action names)
ACTIONS = {"list_objects": "s3:ListBucket", "head_bucket": "s3:ListBucket", "list_object_versions":
           "s3:ListBucketVersions", "get_object": "s3:GetObject", "get_object_attributes": "s3:GetObject",
           "copy_object": "s3:PutObject", "create_multipart_upload": "s3:PutObject", "upload_part": "s3:PutObject",
           "upload_part_copy": "s3:PutObject", "complete_multipart_upload": "s3:PutObject",
           "delete_objects": "s3:DeleteObject", "create_bucket": "s3:CreateBucket", "post_object": "s3:PutObject",
           "list_parts": "s3:ListMultipartUploadParts", "get_bucket_acl": "s3:GetBucketAcl",
           "get_public_access_block": "s3:GetBucketPublicAccessBlock",
           "put_public_access_block": "s3:PutBucketPublicAccessBlock",
           "delete_public_access_block": "s3:PutBucketPublicAccessBlock",
           "get_bucket_lifecycle": "s3:GetLifecycleConfiguration", "put_bucket_lifecycle": "s3:PutLifecycleConfiguration",
           "delete_bucket_lifecycle": "s3:PutLifecycleConfiguration", "get_bucket_cors": "s3:GetBucketCORS",
           "put_bucket_cors": "s3:PutBucketCORS", "delete_bucket_cors": "s3:PutBucketCORS",
           "get_ownership_controls": "s3:GetBucketOwnershipControls",
           "put_ownership_controls": "s3:PutBucketOwnershipControls",
           "delete_ownership_controls": "s3:PutBucketOwnershipControls",
           "delete_bucket_tagging": "s3:PutBucketTagging", "delete_object_tagging": "s3:DeleteObjectTagging",
           "get_bucket_policy_status": "s3:GetBucketPolicyStatus",
           "get_bucket_request_payment": "s3:GetBucketRequestPayment",
           "put_bucket_request_payment": "s3:PutBucketRequestPayment",
           "get_bucket_accelerate": "s3:GetAccelerateConfiguration",
           "get_bucket_replication": "s3:GetReplicationConfiguration",
           "get_bucket_encryption": "s3:GetEncryptionConfiguration",
           "get_object_lock_configuration": "s3:GetBucketObjectLockConfiguration"}


def policy_context(req: S3Request, handler: str) -> policy_eval.Context:
    """What a bucket policy's conditions may ask about this request (policy_eval.py)."""
    action = ACTIONS.get(handler) or "s3:" + "".join(w.title() for w in handler.split("_"))
    values = {"aws:sourceip": req.environ.get("REMOTE_ADDR", ""),
              "aws:securetransport": "true" if req.environ.get("wsgi.url_scheme") == "https" else "false",
              "s3:signatureversion": "AWS4-HMAC-SHA256" if req.account is not None else None,
              "s3:authtype": ("REST-QUERY-STRING" if "X-Amz-Signature" in req.q else "REST-HEADER")
              if req.account is not None else None}
    for header, key in (("user-agent", "aws:useragent"), ("referer", "aws:referer")):
        if req.header(header) is not None:
            values[key] = req.header(header)
    for name in ("prefix", "delimiter", "max-keys", "versionid"):
        param = "versionId" if name == "versionid" else name
        if param in req.q:
            values["s3:" + name] = req.q[param]
    for k, v in req.environ.items():
        if k.startswith("HTTP_X_AMZ_") and not k.startswith(("HTTP_X_AMZ_META_", "HTTP_X_AMZ_DATE",
                                                              "HTTP_X_AMZ_CONTENT_SHA256", "HTTP_X_AMZ_SECURITY")):
            values["s3:" + k[5:].replace("_", "-").lower()] = v
    return policy_eval.Context(action=action, key=req.key, values={k: v for k, v in values.items() if v is not None})


def create_s3_app(cloud) -> S3Gateway:
    """The S3 gateway as a WSGI callable; needs cloud.storage, cloud.accounts, cloud.config."""
    return S3Gateway(cloud)
