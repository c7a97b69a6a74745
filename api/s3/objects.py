"""The S3 gateway's object-level handlers: objects, their tags and ACLs, and multipart
uploads. Each parses the request, makes one `Storage` call and renders (or relays) the answer;
bodies stream both ways."""
from __future__ import annotations

from urllib.parse import quote

from werkzeug.wrappers import Response

from emulator.errors import InvalidParameter
from emulator.storage.tagging import from_header as tags_from_header

from . import documents as doc
from . import listings
from .buckets import acl_document
from .request import EMPTY_BODY, LIST_PARTS_PARAMS, MAX_XML_BODY, S3Request, acl_request, completion_parts
from .responses import empty, relay, xml


class ObjectHandlers:
    storage: object

    def get_object(self, req: S3Request) -> Response:
        return relay(self.storage.get_object(req.account, req.bucket, req.key, req.forward_headers(),
                                             method=req.method, query=req.response_overrides(),
                                             version_id=req.version_id,
                                             checksum_mode=(req.header("x-amz-checksum-mode") or "").upper()
                                             == "ENABLED"))

    def get_object_attributes(self, req: S3Request) -> Response:
        a = self.storage.get_object_attributes(req.account, req.bucket, req.key, req.object_attributes(),
                                               version_id=req.version_id)
        wanted = a["wanted"]
        checksum = a["checksum"] if "Checksum" in wanted else None
        body = {"ETag": a["etag"] if "ETag" in wanted else None,
                "Checksum": {f"Checksum{checksum[0].upper()}": checksum[1], "ChecksumType": "FULL_OBJECT"}
                if checksum else None,
                "ObjectParts": {"PartsCount": a["parts"]} if "ObjectParts" in wanted and a["parts"] else None,
                "StorageClass": "STANDARD" if "StorageClass" in wanted else None,
                "ObjectSize": a["size"] if "ObjectSize" in wanted else None}
        headers = [("Last-Modified", a["last_modified"])] if a["last_modified"] else []
        if a["version_id"]:
            headers.append(("x-amz-version-id", a["version_id"]))
        return xml("GetObjectAttributesResponse", body, headers=headers)

    def put_object(self, req: S3Request) -> Response:
        attrs = req.object_attrs()
        body = req.object_body()
        reply = self.storage.put_object(req.account, req.bucket, req.key, body, body.length, req.forward_headers(),
                                        attrs)
        if reply.ok and body.checksum:
            reply.add_header(*body.checksum)
        return relay(reply)

    def copy_object(self, req: S3Request) -> Response:
        src_bucket, src_key = req.copy_source()
        directive = (req.header("x-amz-tagging-directive") or "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise InvalidParameter("Unknown tagging directive.", code="InvalidArgument")
        tags = tags_from_header(req.header("x-amz-tagging")) if directive == "REPLACE" else None
        return relay(self.storage.copy_object(req.account, req.bucket, req.key, src_bucket, src_key,
                                              req.forward_headers(), lambda: req.read_body(EMPTY_BODY),
                                              acl=req.canned_acl(), tags=tags))

    def post_object(self, req: S3Request) -> Response:
        """A browser form upload: answered as success_action_redirect / _status ask."""
        fields, upload, filename = req.form_upload()
        size = upload.seek(0, 2)
        upload.seek(0)
        reply, key = self.storage.post_object(req.bucket, fields, iter(lambda: upload.read(1 << 20), b""), size,
                                              filename)
        etag = reply.header("etag") or ""
        location = f"/{req.bucket}/{quote(key)}"
        if reply.ok and fields.get("success_action_redirect"):
            target = fields["success_action_redirect"]
            sep = "&" if "?" in target else "?"
            target += f"{sep}bucket={quote(req.bucket)}&key={quote(key)}&etag={quote(etag)}"
            return empty(303, [("Location", target), ("ETag", etag)])
        if not reply.ok:
            return relay(reply)
        status = fields.get("success_action_status", "204")
        if status == "201":
            return xml("PostResponse", {"Location": location, "Bucket": req.bucket, "Key": key, "ETag": etag},
                       status=201, headers=[("ETag", etag), ("Location", location)])
        return empty(200 if status == "200" else 204, [("ETag", etag), ("Location", location)])

    def delete_object(self, req: S3Request) -> Response:
        return relay(self.storage.delete_object(req.account, req.bucket, req.key, version_id=req.version_id))

    # -- tags and ACL ----------------------------------------------------------------------------------
    def get_object_tagging(self, req: S3Request) -> Response:
        return xml("Tagging", doc.tagging(self.storage.get_object_tagging(req.account, req.bucket, req.key)))

    def put_object_tagging(self, req: S3Request) -> Response:
        self.storage.put_object_tagging(req.account, req.bucket, req.key,
                                        lambda: doc.read_tagging(req.read_body(MAX_XML_BODY)))
        return empty(200)

    def delete_object_tagging(self, req: S3Request) -> Response:
        self.storage.delete_object_tagging(req.account, req.bucket, req.key)
        return empty(204)

    def get_object_acl(self, req: S3Request) -> Response:
        acl = self.storage.get_object_acl(req.account, req.bucket, req.key)
        return xml("AccessControlPolicy", acl_document(acl.owner, acl.canned, {}, acl.bucket_owner))

    def put_object_acl(self, req: S3Request) -> Response:
        self.storage.put_object_acl(req.account, req.bucket, req.key,
                                    lambda owner: acl_request(req.canned_acl(), req.read_body(MAX_XML_BODY), owner))
        return empty(200)

    # -- multipart ---------------------------------------------------------------------------------------
    def create_multipart_upload(self, req: S3Request) -> Response:
        return relay(self.storage.create_upload(req.account, req.bucket, req.key, req.forward_headers(),
                                                lambda: req.read_body(EMPTY_BODY), attrs=req.object_attrs()))

    def upload_part(self, req: S3Request) -> Response:
        number = req.part_number()
        body = req.object_body()
        reply = self.storage.upload_part(req.account, req.bucket, req.key, req.q["uploadId"], number, body,
                                         body.length, req.forward_headers())
        if reply.ok and body.checksum:
            reply.add_header(*body.checksum)
        return relay(reply)

    def upload_part_copy(self, req: S3Request) -> Response:
        number = req.part_number()
        src_bucket, src_key = req.copy_source()
        req.read_body(EMPTY_BODY)  # normally empty; read (and verified) all the same
        reply, etag, when = self.storage.upload_part_copy(
            req.account, req.bucket, req.key, req.q["uploadId"], number, src_bucket, src_key,
            req.header("x-amz-copy-source-range"), req.forward_headers())
        if etag is None:
            return relay(reply)
        return xml("CopyPartResult", {"ETag": etag, "LastModified": listings.iso(when)})

    def complete_multipart_upload(self, req: S3Request) -> Response:
        return relay(self.storage.complete_upload(req.account, req.bucket, req.key, req.q["uploadId"],
                                                  lambda: completion_parts(req.read_body(MAX_XML_BODY)),
                                                  req.forward_headers()))

    def abort_multipart_upload(self, req: S3Request) -> Response:
        return relay(self.storage.abort_upload(req.account, req.bucket, req.key, req.q["uploadId"]))

    def list_parts(self, req: S3Request) -> Response:
        page = self.storage.list_parts(req.account, req.bucket, req.key, req.q["uploadId"],
                                       req.params(LIST_PARTS_PARAMS))
        return xml("ListPartsResult", listings.parts(page))
