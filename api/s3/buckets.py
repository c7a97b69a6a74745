"""The S3 gateway's bucket-level handlers: buckets, their listings, policy, ACL and settings
(tagging, CORS, lifecycle, public access block, ownership controls, versioning). Each parses
the request, makes one `Storage` call and renders the answer."""
from __future__ import annotations

from werkzeug.wrappers import Response

from emulator.errors import InvalidParameter
from emulator.storage import PERMISSIONS, Reply
from emulator.storage.policy import acl_grants

from . import documents as doc
from . import listings
from .request import (LIST_PARAMS, LIST_UPLOADS_PARAMS, LIST_VERSIONS_PARAMS, MAX_POLICY, MAX_XML_BODY, S3Request,
                      acl_request, bucket_configuration, delete_request)
from .responses import S3Response, empty, relay, xml

XSI = "http://www.w3.org/2001/XMLSchema-instance"


def acl_document(owner, canned: str, shares: dict[str, str], bucket_owner: str | None = None) -> dict:
    """AccessControlPolicy: the owner's FULL_CONTROL, the ACL's grants (an object's
    bucket-owner-* ones to `bucket_owner`), and the bucket's shares as grants to those accounts."""
    def grant(grantee: dict, permission: str) -> dict:
        return {"Grantee": {"@xmlns:xsi": XSI, **grantee}, "Permission": permission}

    who = {"ID": owner.id, "DisplayName": owner.name}
    grants = [grant({"@xsi:type": "CanonicalUser", **who}, "FULL_CONTROL")]
    grants += [grant({"@xsi:type": "Group", "URI": g} if g.startswith("http") else
                     {"@xsi:type": "CanonicalUser", "ID": g}, perm) for g, perm in acl_grants(canned, bucket_owner)
               if (g, perm) != (owner.id, "FULL_CONTROL")]
    for account_id, level in sorted(shares.items()):
        grants += [grant({"@xsi:type": "CanonicalUser", "ID": account_id}, p) for p in PERMISSIONS[level]]
    return {"Owner": who, "AccessControlList": {"Grant": grants}}


def _unkept_setting(kind: str, root: str, name: str):
    """The handler reading a setting pocketcloud does not keep (configuration.UNKEPT_*): the
    empty `root` document, or S3's not-found error raised by the facade."""
    def handler(self, req: S3Request) -> Response:
        self.storage.read_unkept_setting(req.account, req.bucket, kind)
        return xml(root, None)
    handler.__name__ = handler.__qualname__ = name
    return handler


class BucketHandlers:
    storage: object

    get_bucket_logging = _unkept_setting("logging", "BucketLoggingStatus", "get_bucket_logging")
    get_bucket_accelerate = _unkept_setting("accelerate", "AccelerateConfiguration", "get_bucket_accelerate")
    get_bucket_notification = _unkept_setting("notification", "NotificationConfiguration", "get_bucket_notification")
    get_bucket_website = _unkept_setting("website", "WebsiteConfiguration", "get_bucket_website")
    get_bucket_replication = _unkept_setting("replication", "ReplicationConfiguration", "get_bucket_replication")
    get_bucket_encryption = _unkept_setting("encryption", "ServerSideEncryptionConfiguration",
                                            "get_bucket_encryption")
    get_object_lock_configuration = _unkept_setting("object-lock", "ObjectLockConfiguration",
                                                    "get_object_lock_configuration")

    # -- buckets ------------------------------------------------------------------------------------
    def list_buckets(self, req: S3Request) -> Response:
        prefix = req.q.get("prefix") or ""
        limit, after = listings.bucket_page(req.q.get("max-buckets"), req.q.get("continuation-token"))
        buckets = sorted((b for b in self.storage.list_buckets(req.account)
                          if b.name.startswith(prefix) and b.name > after), key=lambda b: b.name)
        owner = req.account
        return xml("ListAllMyBucketsResult", {
            "Owner": {"ID": owner.id, "DisplayName": owner.name},
            "Buckets": {"Bucket": [{"Name": b.name, "CreationDate": listings.iso(b.created_at),
                                    "BucketRegion": self.storage.region} for b in buckets[:limit]]},
            "ContinuationToken": listings.bucket_token(buckets[limit - 1].name) if len(buckets) > limit else None,
            "Prefix": prefix or None})

    def create_bucket(self, req: S3Request) -> Response:
        if (req.header("x-amz-bucket-object-lock-enabled") or "").lower() == "true":
            raise InvalidParameter("object lock depends on the storage engine, and pocketcloud does not relay it "
                                   "(yet)", code="NotImplemented")
        self.storage.create_bucket(req.account, req.bucket, acl=req.canned_acl(),
                                   ownership=req.header("x-amz-object-ownership"),
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

    # -- listings -----------------------------------------------------------------------------------
    def list_objects(self, req: S3Request) -> Response:
        root, body = listings.objects(self.storage.list_objects_s3(req.account, req.bucket, req.params(LIST_PARAMS)))
        return xml(root, body)

    def get_bucket_policy_status(self, req: S3Request) -> Response:
        public = self.storage.get_policy_status(req.account, req.bucket)
        return xml("PolicyStatus", {"IsPublic": public})

    def get_bucket_request_payment(self, req: S3Request) -> Response:
        self.storage.head_bucket(req.account, req.bucket)
        return xml("RequestPaymentConfiguration", {"Payer": "BucketOwner"})

    def put_bucket_request_payment(self, req: S3Request) -> Response:
        self.storage.put_request_payment(req.account, req.bucket,
                                         lambda: doc.read_request_payment(req.read_body(MAX_XML_BODY)))
        return empty(200)

    def list_object_versions(self, req: S3Request) -> Response:
        result = self.storage.list_versions(req.account, req.bucket, req.params(LIST_VERSIONS_PARAMS))
        if isinstance(result, Reply):
            return relay(result)
        return xml("ListVersionsResult", listings.versions(result, result["owner"]))

    def list_multipart_uploads(self, req: S3Request) -> Response:
        page = self.storage.list_uploads(req.account, req.bucket, req.params(LIST_UPLOADS_PARAMS))
        return xml("ListMultipartUploadsResult", listings.uploads(page))

    def delete_objects(self, req: S3Request) -> Response:
        return relay(self.storage.delete_objects(req.account, req.bucket,
                                                 lambda: delete_request(req.read_body(MAX_XML_BODY))))

    # -- policy and ACL -------------------------------------------------------------------------------
    def get_bucket_policy(self, req: S3Request) -> Response:
        document = self.storage.get_policy(req.account, req.bucket)
        return S3Response(document.encode(), content_type="application/json")

    def put_bucket_policy(self, req: S3Request) -> Response:
        self.storage.put_policy(req.account, req.bucket,
                                lambda: req.read_body(MAX_POLICY).decode("utf-8", "replace"))
        return empty(204)

    def delete_bucket_policy(self, req: S3Request) -> Response:
        self.storage.delete_policy(req.account, req.bucket)
        return empty(204)

    def get_bucket_acl(self, req: S3Request) -> Response:
        acl = self.storage.get_acl(req.account, req.bucket)
        return xml("AccessControlPolicy", acl_document(acl.owner, acl.canned, acl.grants))

    def put_bucket_acl(self, req: S3Request) -> Response:
        self.storage.put_acl(req.account, req.bucket,
                             lambda owner: acl_request(req.canned_acl(), req.read_body(MAX_XML_BODY), owner))
        return empty(200)

    # -- settings: tagging, CORS, lifecycle, public access block, ownership, versioning -------------------
    def get_bucket_tagging(self, req: S3Request) -> Response:
        return xml("Tagging", doc.tagging(self.storage.get_bucket_tagging(req.account, req.bucket)))

    def put_bucket_tagging(self, req: S3Request) -> Response:
        self.storage.put_bucket_tagging(req.account, req.bucket, lambda: doc.read_tagging(req.read_body(MAX_XML_BODY)))
        return empty(204)

    def delete_bucket_tagging(self, req: S3Request) -> Response:
        self.storage.delete_bucket_tagging(req.account, req.bucket)
        return empty(204)

    def get_bucket_cors(self, req: S3Request) -> Response:
        return xml("CORSConfiguration", doc.cors(self.storage.get_cors(req.account, req.bucket)))

    def put_bucket_cors(self, req: S3Request) -> Response:
        self.storage.put_cors(req.account, req.bucket, lambda: doc.read_cors(req.read_body(MAX_XML_BODY)))
        return empty(200)

    def delete_bucket_cors(self, req: S3Request) -> Response:
        self.storage.delete_cors(req.account, req.bucket)
        return empty(204)

    def get_bucket_lifecycle(self, req: S3Request) -> Response:
        rules = self.storage.get_lifecycle(req.account, req.bucket)
        return xml("LifecycleConfiguration", doc.lifecycle(rules),
                   headers=[("x-amz-transition-default-minimum-object-size", "all_storage_classes_128K")])

    def put_bucket_lifecycle(self, req: S3Request) -> Response:
        self.storage.put_lifecycle(req.account, req.bucket, lambda: doc.read_lifecycle(req.read_body(MAX_XML_BODY)))
        return empty(200, [("x-amz-transition-default-minimum-object-size", "all_storage_classes_128K")])

    def delete_bucket_lifecycle(self, req: S3Request) -> Response:
        self.storage.delete_lifecycle(req.account, req.bucket)
        return empty(204)

    def get_public_access_block(self, req: S3Request) -> Response:
        flags = self.storage.get_public_access_block(req.account, req.bucket)
        return xml("PublicAccessBlockConfiguration", doc.public_access_block(flags))

    def put_public_access_block(self, req: S3Request) -> Response:
        self.storage.put_public_access_block(req.account, req.bucket,
                                             lambda: doc.read_public_access_block(req.read_body(MAX_XML_BODY)))
        return empty(200)

    def delete_public_access_block(self, req: S3Request) -> Response:
        self.storage.delete_public_access_block(req.account, req.bucket)
        return empty(204)

    def get_ownership_controls(self, req: S3Request) -> Response:
        return xml("OwnershipControls", doc.ownership(self.storage.get_ownership_controls(req.account, req.bucket)))

    def put_ownership_controls(self, req: S3Request) -> Response:
        self.storage.put_ownership_controls(req.account, req.bucket,
                                            lambda: doc.read_ownership(req.read_body(MAX_XML_BODY)))
        return empty(200)

    def delete_ownership_controls(self, req: S3Request) -> Response:
        self.storage.delete_ownership_controls(req.account, req.bucket)
        return empty(204)

    def get_bucket_versioning(self, req: S3Request) -> Response:
        return xml("VersioningConfiguration", self.storage.get_versioning(req.account, req.bucket) or None)

    def put_bucket_versioning(self, req: S3Request) -> Response:
        self.storage.put_versioning(req.account, req.bucket, lambda: doc.read_versioning(req.read_body(MAX_XML_BODY)))
        return empty(200)
