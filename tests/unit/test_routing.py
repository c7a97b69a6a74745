from api.routing import protocol_of


def env(path="/", auth="", qs="", method="GET", ctype=""):
    return {"PATH_INFO": path, "HTTP_AUTHORIZATION": auth, "QUERY_STRING": qs, "REQUEST_METHOD": method,
            "CONTENT_TYPE": ctype}


SIG = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261128/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=00"


def test_routing():
    assert protocol_of(env("/api/v1/instances")) == "web"
    assert protocol_of(env("/ui/")) == "web"
    assert protocol_of(env("/", auth=SIG.format("ec2"), method="POST")) == "ec2"
    assert protocol_of(env("/bucket/key", auth=SIG.format("s3"))) == "s3"
    assert protocol_of(env("/bucket/key", qs="X-Amz-Credential=AKIA%2F20261128%2Fus-east-1%2Fs3%2Faws4_request"
                           .replace("%2F", "/"))) == "s3"
    assert protocol_of(env("/bucket/key")) == "s3"
    assert protocol_of(env("/", qs="Action=DescribeInstances")) == "ec2"
    assert protocol_of(env("/", method="POST", ctype="application/x-www-form-urlencoded")) == "ec2"


def test_json11_services_route_by_scope_and_unsigned_by_target():
    assert protocol_of(env("/", auth=SIG.format("ce"), method="POST")) == "ce"
    assert protocol_of(env("/", auth=SIG.format("budgets"), method="POST")) == "budgets"
    unsigned = env("/", method="POST", ctype="application/x-amz-json-1.1")
    assert protocol_of({**unsigned, "HTTP_X_AMZ_TARGET": "AWSBudgetServiceGateway.DescribeBudgets"}) == "budgets"
    assert protocol_of({**unsigned, "HTTP_X_AMZ_TARGET": "AWSInsightsIndexService.GetCostAndUsage"}) == "ce"
