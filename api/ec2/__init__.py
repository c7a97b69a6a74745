"""The EC2 Query API: form-encoded Action=..., SigV4-signed with pocketcloud's keys,
answered in EC2 XML. Handlers are named after the wire actions and only parse, call
emulator.services and render."""
from __future__ import annotations

import logging
import uuid

from emulator.errors import CloudError, InvalidParameter, Unauthorized
from emulator.sigv4 import query_pairs

from .. import sigv4
from ..errors import ec2_error
from . import catalog, instances, resources
from .xml import response

log = logging.getLogger("pocketcloud.ec2")
MAX_BODY = 1024 * 1024

ACTIONS = {
    "RunInstances": instances.run_instances,
    "DescribeInstances": instances.describe_instances,
    "DescribeInstanceStatus": instances.describe_instance_status,
    "StartInstances": instances.start_instances,
    "StopInstances": instances.stop_instances,
    "RebootInstances": instances.reboot_instances,
    "TerminateInstances": instances.terminate_instances,
    "GetConsoleOutput": instances.get_console_output,
    "DescribeImages": catalog.describe_images,
    "DescribeInstanceTypes": catalog.describe_instance_types,
    "DescribeRegions": catalog.describe_regions,
    "DescribeAvailabilityZones": catalog.describe_availability_zones,
    "CreateKeyPair": resources.create_key_pair,
    "ImportKeyPair": resources.import_key_pair,
    "DescribeKeyPairs": resources.describe_key_pairs,
    "DeleteKeyPair": resources.delete_key_pair,
    "CreateTags": resources.create_tags,
    "DeleteTags": resources.delete_tags,
    "DescribeTags": resources.describe_tags,
    "CreateSecurityGroup": resources.create_security_group,
    "DescribeSecurityGroups": resources.describe_security_groups,
    "AuthorizeSecurityGroupIngress": resources.authorize_security_group_ingress,
    "RevokeSecurityGroupIngress": resources.revoke_security_group_ingress,
    "DeleteSecurityGroup": resources.delete_security_group,
}


def _read_body(environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise InvalidParameter("invalid Content-Length", code="InvalidParameterValue") from None
    if length > MAX_BODY:
        raise InvalidParameter(f"request body larger than {MAX_BODY} bytes", code="InvalidParameterValue")
    return environ["wsgi.input"].read(length) if length else b""


def create_ec2_app(cloud):
    def app(environ, start_response):
        request_id = str(uuid.uuid4())
        try:
            body = _read_body(environ)
            params = dict(query_pairs(environ.get("QUERY_STRING", "")))
            if environ.get("REQUEST_METHOD") == "POST":
                params.update(query_pairs(body.decode("utf-8", "replace")))
            if not sigv4.is_signed(environ):
                raise Unauthorized("the request must be signed with AWS Signature Version 4 using a pocketcloud "
                                   "access key (eval \"$(pocketcloud env)\")", code="AuthFailure")
            try:
                verified = sigv4.verify(environ, cloud.accounts.secret_for, body=body, region=cloud.config.region,
                                        service="ec2")
            except CloudError as e:
                if e.code == "InvalidAccessKeyId":
                    raise Unauthorized("AWS was not able to validate the provided access credentials",
                                       code="AuthFailure") from e
                raise
            action = params.get("Action")
            if not action:
                raise InvalidParameter("the request must contain the parameter Action", code="MissingAction")
            handler = ACTIONS.get(action)
            if handler is None:
                raise InvalidParameter(f"the action {action[:64]} is not valid for this web service "
                                       f"(pocketcloud implements: {', '.join(sorted(ACTIONS))})",
                                       code="InvalidAction")
            xml = response(action, handler(cloud, verified.account, params), request_id)
            status = "200 OK"
        except Exception as exc:  # every failure is an EC2 error document, never a bare 500 page
            if not isinstance(exc, CloudError):
                log.exception("EC2 %s failed", params.get("Action") if "params" in locals() else "?")
            xml, code = ec2_error(exc, request_id)
            status = f"{code} Error"
        data = xml.encode()
        start_response(status, [("Content-Type", "text/xml;charset=UTF-8"), ("Content-Length", str(len(data))),
                                ("x-amzn-RequestId", request_id)])
        return [data]

    return app
