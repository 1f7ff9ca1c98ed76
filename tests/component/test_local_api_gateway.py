"""The local cloud's API gateway over real HTTP on 127.0.0.1: routing, the proxy events, the responses,
API Gateway's own answers and stage throttling.

Each test starts a LocalCloud on the fixture template (tests/component/fixtures/api_template.yaml) with
`api_port=0`; the fixture handler `echo` answers with the event it received.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, APIGatewayProxyEventV2

FIXTURES = Path(__file__).resolve().parent / "fixtures"
API_TEMPLATE = FIXTURES / "api_template.yaml"


@pytest.fixture
def cloud(cloud_factory):
    return cloud_factory(API_TEMPLATE, api_port=0, start_event_sources=False)


@pytest.fixture
def held_handlers():
    """The fixture handlers' module, the one the local cloud imports (its CodeUri on sys.path)."""
    if str(FIXTURES / "api_functions") not in sys.path:
        sys.path.insert(0, str(FIXTURES / "api_functions"))
    import api_fixture_handlers

    api_fixture_handlers.ENTERED.clear()
    api_fixture_handlers.RELEASED.clear()
    yield api_fixture_handlers
    api_fixture_handlers.RELEASED.set()


def test_a_rest_route_gets_the_proxy_event_and_its_response_goes_back_as_http(cloud):
    # GIVEN a REST route GET /orders/{order_id}
    order_id, trace = f"o-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    before = time.time()
    # WHEN a client calls it with a query string (one parameter twice) and a header
    response = requests.get(f"{cloud.api_url}/orders/{order_id}?expand=lines&tag=a&tag=b",
                            headers={"X-Trace": trace}, timeout=10)
    # THEN the function's status, headers (single and multi-value) and body come back
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Resource"] == "/orders/{order_id}"
    assert response.headers["X-Seen"] == "first, second"
    event = response.json()
    # AND the event is the 1.0 proxy event API Gateway sends
    assert event["resource"] == "/orders/{order_id}"
    assert event["path"] == f"/orders/{order_id}"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"order_id": order_id}
    assert event["queryStringParameters"] == {"expand": "lines", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"expand": ["lines"], "tag": ["a", "b"]}
    assert event["headers"]["X-Trace"] == trace
    assert event["multiValueHeaders"]["X-Trace"] == [trace]
    assert event["stageVariables"] is None
    assert event["body"] is None and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["resourcePath"] == "/orders/{order_id}"
    assert context["httpMethod"] == "GET"
    assert context["stage"] == "Prod"  # SAM's implicit REST API stage
    assert context["path"] == f"/Prod/orders/{order_id}"
    assert context["requestId"] == response.headers["x-amzn-RequestId"]
    assert before * 1000 - 1 <= context["requestTimeEpoch"] <= time.time() * 1000 + 1
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert "authorizer" not in context
    # AND Powertools reads it as an API Gateway REST event
    parsed = APIGatewayProxyEvent(event)
    assert parsed.get_query_string_value("expand") == "lines"
    assert parsed.headers["x-trace"] == trace
    assert parsed.request_context.identity.source_ip == "127.0.0.1"


def test_the_most_specific_route_wins(cloud):
    # GIVEN GET /orders/latest, GET /orders/{order_id}, POST /orders and ANY /orders/{proxy+}
    def resource(method: str, path: str) -> tuple[str, dict | None]:
        response = requests.request(method, cloud.api_url + path, timeout=10)
        assert response.status_code in (200, 201), response.text
        event = response.json()
        return event["resource"], event["pathParameters"]

    # WHEN / THEN a literal segment beats a parameter, a parameter beats a greedy parameter,
    # a named method beats ANY, and a greedy parameter takes the rest of the path
    assert resource("GET", "/orders/latest") == ("/orders/latest", None)
    assert resource("GET", "/orders/o-1") == ("/orders/{order_id}", {"order_id": "o-1"})
    assert resource("DELETE", "/orders/o-1") == ("/orders/{proxy+}", {"proxy": "o-1"})
    assert resource("GET", "/orders/o-1/lines/2") == ("/orders/{proxy+}", {"proxy": "o-1/lines/2"})
    assert resource("POST", "/orders") == ("/orders", None)


def test_an_http_api_route_gets_a_2_0_event_and_a_result_without_status_code_is_a_200_json(cloud):
    # GIVEN an HTTP API route GET /v2/orders/{order_id} whose function returns a bare result
    order_id, trace = f"o-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    # WHEN a client calls it with a repeated query parameter, a header and cookies
    response = requests.get(f"{cloud.api_url}/v2/orders/{order_id}?tag=a&tag=b",
                            headers={"X-Trace": trace, "Cookie": "session=s1; theme=dark"}, timeout=10)
    # THEN API Gateway answers 200 with the result as its JSON body
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    event = response.json()["received"]
    # AND the event is a payload 2.0 event
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /v2/orders/{order_id}"
    assert event["rawPath"] == f"/v2/orders/{order_id}"
    assert event["rawQueryString"] == "tag=a&tag=b"
    assert event["queryStringParameters"] == {"tag": "a,b"}
    assert event["pathParameters"] == {"order_id": order_id}
    assert event["headers"]["x-trace"] == trace
    assert all(name == name.lower() for name in event["headers"])
    assert event["cookies"] == ["session=s1", "theme=dark"]
    assert "body" not in event and event["isBase64Encoded"] is False
    http = event["requestContext"]["http"]
    assert http["method"] == "GET" and http["path"] == f"/v2/orders/{order_id}" and http["sourceIp"] == "127.0.0.1"
    assert http["userAgent"].startswith("python-requests/")
    assert event["requestContext"]["stage"] == "$default"
    assert event["requestContext"]["requestId"] == response.headers["apigw-requestid"]
    # AND Powertools reads it as an HTTP API event
    parsed = APIGatewayProxyEventV2(event)
    assert parsed.path == f"/v2/orders/{order_id}" and parsed.http_method == "GET"
    assert parsed.get_query_string_value("tag") == "a,b"
    # AND a route that asks for PayloadFormatVersion 1.0 gets the 1.0 shape
    legacy = requests.get(f"{cloud.api_url}/v2/legacy?tag=a&tag=b", timeout=10).json()
    assert legacy["version"] == "1.0" and legacy["httpMethod"] == "GET" and legacy["resource"] == "/v2/legacy"
    assert legacy["multiValueQueryStringParameters"] == {"tag": ["a", "b"]}


def test_a_request_no_route_matches_gets_api_gateways_answer(cloud):
    # WHEN a path no route has is called THEN the REST API's answer: 403 Missing Authentication Token
    response = requests.get(f"{cloud.api_url}/nowhere/{uuid.uuid4().hex}", timeout=10)
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}
    # WHEN an HTTP API route's path is called with a method it does not have THEN the HTTP API's 404
    response = requests.delete(f"{cloud.api_url}/v2/orders/o-1", timeout=10)
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}


def test_a_function_that_raises_is_a_502_and_the_gateway_keeps_serving(cloud):
    # WHEN the route's function raises
    response = requests.get(f"{cloud.api_url}/fail", timeout=10)
    # THEN API Gateway's 502
    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}
    # AND other routes still answer
    assert requests.get(f"{cloud.api_url}/orders/o-2", timeout=10).status_code == 200


def test_an_invocation_lambda_refuses_over_reserved_concurrency_is_a_500(cloud, held_handlers):
    # GIVEN a function with ReservedConcurrentExecutions 1, busy with a first request
    first: dict = {}
    caller = threading.Thread(target=lambda: first.update(response=requests.get(f"{cloud.api_url}/held", timeout=10)))
    caller.start()
    assert held_handlers.ENTERED.wait(timeout=10)
    # WHEN a second request arrives THEN Lambda throttles it and API Gateway answers 500 (not Lambda's 429)
    second = requests.get(f"{cloud.api_url}/held", timeout=10)
    assert second.status_code == 500
    assert second.json() == {"message": "Internal server error"}
    # AND the first one completes normally
    held_handlers.RELEASED.set()
    caller.join(timeout=10)
    assert first["response"].status_code == 200 and first["response"].text == "released"


def test_a_function_slower_than_the_integration_timeout_is_a_504(cloud):
    # GIVEN an integration timeout no invocation can meet (API Gateway's is 29 s)
    cloud.api_gateway.integration_timeout["Api"] = -1
    # WHEN the route is called THEN API Gateway's 504
    response = requests.get(f"{cloud.api_url}/orders/o-3", timeout=10)
    assert response.status_code == 504
    assert response.json() == {"message": "Endpoint request timed out"}


def test_stage_throttling_from_the_apis_settings_answers_429_beyond_the_burst(cloud):
    # GIVEN LimitedApi's MethodSettings (burst 2 at 0.01 requests/s, 1 for GET /limited/strict) and
    # LimitedHttpApi's DefaultRouteSettings (burst 1)
    # WHEN three requests reach the REST route at once
    statuses = [requests.get(f"{cloud.api_url}/limited", timeout=10) for _ in range(3)]
    # THEN the burst passes and the rest gets API Gateway's 429
    assert [response.status_code for response in statuses] == [200, 200, 429]
    assert statuses[2].json() == {"message": "Too Many Requests"}
    # AND the events carry that API's stage and stage variables
    event = statuses[0].json()
    assert event["requestContext"]["stage"] == "v1" and event["requestContext"]["path"] == "/v1/limited"
    assert event["stageVariables"] == {"greeting": "hello"}
    # AND a method's own MethodSettings entry overrides the stage default
    assert [requests.get(f"{cloud.api_url}/limited/strict", timeout=10).status_code for _ in range(2)] == [200, 429]
    # AND the HTTP API route is throttled by its DefaultRouteSettings
    assert [requests.get(f"{cloud.api_url}/v2/limited", timeout=10).status_code for _ in range(2)] == [200, 429]
    # AND the implicit API, which declares no limits, is not throttled
    assert {requests.get(f"{cloud.api_url}/orders/o-4", timeout=10).status_code for _ in range(5)} == {200}


def test_a_post_with_a_json_body_reaches_the_function_as_text(cloud):
    payload = {"order_id": f"o-{uuid.uuid4().hex[:8]}", "quantity": 2, "note": "rush, 中文"}
    # WHEN a JSON body is posted to a REST route and to an HTTP API route
    rest = requests.post(f"{cloud.api_url}/orders", json=payload, timeout=10)
    http = requests.post(f"{cloud.api_url}/v2/orders", json=payload, timeout=10)
    # THEN both functions get it as a string, not base64, and the function's 201 comes back
    assert rest.status_code == 201
    event = rest.json()
    assert event["isBase64Encoded"] is False and json.loads(event["body"]) == payload
    assert APIGatewayProxyEvent(event).json_body == payload
    event = http.json()["received"]
    assert event["isBase64Encoded"] is False and json.loads(event["body"]) == payload


def test_a_binary_body_reaches_the_function_base64_encoded_and_a_binary_answer_is_decoded(cloud):
    blob = bytes(range(256)) + uuid.uuid4().bytes
    # WHEN a body of a type in the REST API's BinaryMediaTypes is posted
    response = requests.post(f"{cloud.api_url}/uploads", data=blob,
                             headers={"Content-Type": "application/octet-stream"}, timeout=10)
    # THEN the function got it base64-encoded and its base64 answer reaches the client as the same bytes
    assert response.status_code == 200
    assert response.headers["X-Event-Base64"] == "true"
    assert response.content == blob
    # AND a body of a text type is passed as text
    response = requests.post(f"{cloud.api_url}/uploads", data="héllo".encode(),
                             headers={"Content-Type": "text/plain; charset=utf-8"}, timeout=10)
    event = response.json()
    assert event["isBase64Encoded"] is False and event["body"] == "héllo"
    # AND an HTTP API passes a non-text body base64-encoded
    response = requests.post(f"{cloud.api_url}/v2/orders", data=blob,
                             headers={"Content-Type": "application/octet-stream"}, timeout=10)
    event = response.json()["received"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == blob


def test_the_gateway_serves_only_with_an_api_port_and_stops_with_the_cloud(cloud_factory):
    # GIVEN a cloud without api_port THEN nothing is served
    assert cloud_factory(API_TEMPLATE, start_event_sources=False).api_url is None
    # GIVEN a cloud serving its routes WHEN it stops THEN the port no longer answers
    serving = cloud_factory(API_TEMPLATE, api_port=0, start_event_sources=False)
    url = serving.api_url
    assert url.startswith("http://127.0.0.1:")
    assert requests.get(f"{url}/orders/o-5", timeout=10).status_code == 200
    serving.stop()
    assert serving.api_url is None
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/orders/o-5", timeout=2)
