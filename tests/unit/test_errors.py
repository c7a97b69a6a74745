"""One error shape per protocol, pinned."""
import json
import xml.etree.ElementTree as ET

from api.errors import ec2_error, rest_error, s3_error
from emulator import errors as e


def test_rest_shape():
    body, status = rest_error(e.NotFound("instance i-1 does not exist", code="InvalidInstanceID.NotFound"))
    assert status == 404
    assert json.loads(body) == {"error": {"code": "InvalidInstanceID.NotFound",
                                          "message": "instance i-1 does not exist"}}


def test_ec2_shape():
    body, status = ec2_error(e.InvalidState("stopped", code="IncorrectInstanceState"), request_id="r-1")
    assert status == 400
    root = ET.fromstring(body)
    assert root.tag == "Response"
    assert root.find("./Errors/Error/Code").text == "IncorrectInstanceState"
    assert root.find("./Errors/Error/Message").text == "stopped"
    assert root.find("./RequestID").text == "r-1"


def test_s3_shape():
    body, status = s3_error(e.Forbidden("no <access>", code="AccessDenied"), resource="/b/k")
    assert status == 403
    root = ET.fromstring(body)
    assert root.tag == "Error"
    assert root.find("Code").text == "AccessDenied"
    assert root.find("Message").text == "no <access>"
    assert root.find("Resource").text == "/b/k"


def test_status_table_covers_every_exception():
    for cls, rest, ec2, s3 in [(e.InvalidParameter, 400, 400, 400), (e.NotFound, 404, 400, 404),
                               (e.AlreadyExists, 409, 400, 409), (e.InvalidState, 409, 400, 409),
                               (e.QuotaExceeded, 403, 400, 403), (e.Unauthorized, 401, 401, 403),
                               (e.Forbidden, 403, 403, 403), (e.BackendUnavailable, 503, 503, 503)]:
        exc = cls("x")
        assert (rest_error(exc)[1], ec2_error(exc)[1], s3_error(exc)[1]) == (rest, ec2, s3)


def test_unexpected_exceptions_do_not_leak_details():
    body, status = rest_error(RuntimeError("secret path /root/x"))
    assert status == 500 and "secret" not in body
