"""The local cloud's Cognito stand-in over real HTTP on 127.0.0.1: ID tokens from `local_auth`, API
Gateway's Cognito user pool authorizer in the local gateway, SAM's CORS preflight and gateway responses,
and `oms local token` in another process.

Each test starts a LocalCloud on tests/component/fixtures/auth_template.yaml with `api_port=0`; the
fixture handler `echo` answers with the event it received.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from omsdev.commands.local_token import register_token
from omsdev.localcloud.local_auth import (
    EXPIRED,
    TokenRejectedError,
    issue_token,
    key_secret_name,
    rest_claims,
    verify_token,
)
from omsdev.localcloud.provision import Stack
from omsdev.localcloud.template import Template

FIXTURES = Path(__file__).resolve().parent / "fixtures"
AUTH_TEMPLATE = FIXTURES / "auth_template.yaml"
ORIGIN = "http://localhost:5173"  # the template's ReviewerOrigin default
DATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} UTC \d{4}$")


@pytest.fixture
def cloud(cloud_factory):
    return cloud_factory(AUTH_TEMPLATE, api_port=0, start_event_sources=False)


@pytest.fixture
def invoked(cloud):
    """Function ids the runtime invoked during the test, in order."""
    calls: list[str] = []
    cloud.runtime.listeners.append(lambda function_id, event, outcome: calls.append(function_id))
    return calls


def _tampered(token: str, **claims) -> str:
    """The token with claims changed and the original signature kept."""
    header, payload, signature = token.split(".")
    document = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    document.update(claims)
    forged = base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_the_user_pool_its_client_and_groups_get_cognito_shaped_ids_that_every_process_derives_alike(cloud):
    # GIVEN a started stack with a user pool, an app client and three groups
    resources = cloud.stack.resources
    pool, client = resources["ReviewerUserPool"], resources["ReviewerUserPoolClient"]
    # THEN they have Cognito's id shapes, Arn, ProviderName and ProviderURL
    assert re.fullmatch(r"us-east-1_[A-Za-z0-9]{9}", pool.ref), pool.ref
    assert pool.attributes["Arn"] == f"arn:aws:cognito-idp:us-east-1:{cloud.stack.account_id}:userpool/{pool.ref}"
    assert pool.attributes["ProviderName"] == f"cognito-idp.us-east-1.amazonaws.com/{pool.ref}"
    assert pool.attributes["ProviderURL"] == f"https://cognito-idp.us-east-1.amazonaws.com/{pool.ref}"
    assert re.fullmatch(r"[a-z0-9]{26}", client.ref) and client.attributes["ClientId"] == client.ref
    assert [resources[group].ref for group in ("ReviewerGroup", "RiskReviewerGroup", "AdminGroup")] == [
        "reviewer", "risk_reviewer", "admin"]
    # AND a tool attaching to the same stack finds the same ids
    attached = Stack(Template.load(AUTH_TEMPLATE), cloud.stack_name, cloud.endpoint).attach()
    assert attached.ref("ReviewerUserPool") == pool.ref and attached.ref("ReviewerUserPoolClient") == client.ref
    # AND another stack's pool has another id
    other = Stack(Template.load(AUTH_TEMPLATE), f"t{uuid.uuid4().hex[:10]}", cloud.endpoint).attach()
    assert other.ref("ReviewerUserPool") != pool.ref


def test_a_valid_id_token_reaches_the_function_with_its_claims_as_api_gateway_passes_them(cloud, invoked):
    # GIVEN an ID token for a reviewer
    username = f"r-{uuid.uuid4().hex[:8]}@example.com"
    token = issue_token(cloud, "reviewer", username=username)
    # WHEN the reviewer API is called with it
    response = requests.get(f"{cloud.api_url}/reviews", headers={"Authorization": token}, timeout=10)
    # THEN the function answers, and its event carries the claims in API Gateway's REST format
    assert response.status_code == 200, response.text
    assert invoked == ["ReviewFunction"]
    claims = response.json()["requestContext"]["authorizer"]["claims"]
    assert all(isinstance(value, str) for value in claims.values())
    pool, client = cloud.stack.ref("ReviewerUserPool"), cloud.stack.ref("ReviewerUserPoolClient")
    assert claims["iss"] == f"https://cognito-idp.us-east-1.amazonaws.com/{pool}"
    assert claims["aud"] == client
    assert claims["token_use"] == "id"
    assert claims["email"] == username and claims["email_verified"] == "true"
    # The pool signs in by email: Cognito's username is then the user's sub.
    assert claims["cognito:username"] == claims["sub"]
    assert uuid.UUID(claims["sub"])
    assert DATE.match(claims["exp"]) and DATE.match(claims["iat"]), (claims["exp"], claims["iat"])
    assert claims["auth_time"].isdigit()
    # AND Powertools reads the groups from it
    parsed = APIGatewayProxyEvent(response.json())
    assert parsed.request_context.authorizer.claims["cognito:groups"] == "reviewer"
    # AND the same user gets the same sub in a later token, sent with a "Bearer " prefix
    again = requests.get(f"{cloud.api_url}/reviews", timeout=10,
                         headers={"Authorization": f"Bearer {issue_token(cloud, 'reviewer', username=username)}"})
    assert again.status_code == 200
    assert again.json()["requestContext"]["authorizer"]["claims"]["sub"] == claims["sub"]


def test_requests_without_a_valid_token_get_401_from_the_gateway_and_never_reach_the_function(cloud, invoked):
    # GIVEN a good token and everything API Gateway's Cognito authorizer refuses
    token = issue_token(cloud, "admin")
    refused = {
        "no token": None,
        "not a JWT": "not-a-token",
        "bad signature": _tampered(token, **{"cognito:groups": ["admin", "risk_reviewer"]}),
        "another audience": issue_token(cloud, "admin", client_id="a" * 26),
        "an access token": issue_token(cloud, "admin", overrides={"token_use": "access"}),
        "expired": issue_token(cloud, "admin", issued_at=time.time() - 7200, minutes=60),
    }
    for case, bad in refused.items():
        headers = {} if bad is None else {"Authorization": bad}
        # WHEN each is sent to a protected route
        response = requests.post(f"{cloud.api_url}/reviews/i-1/approve", headers=headers, json={}, timeout=10)
        # THEN API Gateway answers 401 itself
        assert response.status_code == 401, case
        message = EXPIRED if case == "expired" else "Unauthorized"
        assert response.json() == {"message": message}, case
        assert response.headers["x-amzn-RequestId"], case
    # AND the function was never called, while the good token still gets in
    assert invoked == []
    assert requests.post(f"{cloud.api_url}/reviews/i-1/approve", headers={"Authorization": token}, json={},
                         timeout=10).status_code == 201
    assert invoked == ["ReviewFunction"]


def test_a_token_from_another_local_stack_is_refused(cloud_factory):
    # GIVEN two local stacks of the same template, each with its own pool and key
    serving = cloud_factory(AUTH_TEMPLATE, api_port=0, start_event_sources=False)
    other = cloud_factory(AUTH_TEMPLATE, start_event_sources=False)
    foreign = issue_token(other, "reviewer")
    # WHEN the other stack's token is sent THEN 401, and the local verifier says why
    response = requests.get(f"{serving.api_url}/reviews", headers={"Authorization": foreign}, timeout=10)
    assert response.status_code == 401 and response.json() == {"message": "Unauthorized"}
    with pytest.raises(TokenRejectedError):
        verify_token(serving, foreign)
    # AND each stack accepts its own
    assert verify_token(other, foreign)["cognito:groups"] == ["reviewer"]
    assert requests.get(f"{serving.api_url}/reviews", headers={"Authorization": issue_token(serving, "reviewer")},
                        timeout=10).status_code == 200


def test_a_route_with_authorizer_none_is_open(cloud, invoked):
    # WHEN the route whose event says `Auth: {Authorizer: NONE}` is called without a token
    response = requests.get(f"{cloud.api_url}/reviews/health", timeout=10)
    # THEN the function answers and its event has no authorizer
    assert response.status_code == 200
    assert "authorizer" not in response.json()["requestContext"]
    assert invoked == ["ReviewFunction"]


def test_a_cors_preflight_is_answered_by_the_gateway_with_the_configured_headers(cloud, invoked):
    # WHEN a browser sends the preflight for a protected POST, without a token
    response = requests.options(f"{cloud.api_url}/reviews/i-2/approve", timeout=10, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    # THEN the gateway answers 200 with the Cors settings (AddDefaultAuthorizerToCorsPreflight: false)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Headers"] == "Authorization,Content-Type"
    assert response.headers["Access-Control-Allow-Methods"] == "GET,POST,OPTIONS"
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert "Access-Control-Allow-Credentials" not in response.headers
    # AND no function ran
    assert invoked == []


def test_sams_cors_defaults_put_the_preflight_behind_the_default_authorizer_and_list_the_paths_methods(cloud, invoked):
    # GIVEN an API with `Cors: "'*'"` and a DefaultAuthorizer (AddDefaultAuthorizerToCorsPreflight left true)
    # WHEN the preflight comes without a token THEN 401
    assert requests.options(f"{cloud.api_url}/defaults", timeout=10).status_code == 401
    # WHEN it comes with one THEN SAM's defaults: the path's methods plus OPTIONS, no optional headers
    response = requests.options(f"{cloud.api_url}/defaults", timeout=10,
                                headers={"Authorization": issue_token(cloud, "reviewer")})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Methods"] == "GET,OPTIONS"
    assert "Access-Control-Allow-Headers" not in response.headers
    assert "Access-Control-Max-Age" not in response.headers
    assert invoked == []


def test_the_gateways_own_errors_carry_cors_headers_only_from_gateway_responses(cloud):
    # GIVEN ReviewerApi declares GatewayResponses DEFAULT_4XX with Access-Control-Allow-Origin
    # WHEN its authorizer refuses a request, or one of its paths is called with a method it does not have
    unauthorized = requests.get(f"{cloud.api_url}/reviews", headers={"Origin": ORIGIN}, timeout=10)
    missing = requests.delete(f"{cloud.api_url}/reviews", timeout=10)
    # THEN the browser can read the answer: the header is there
    assert unauthorized.status_code == 401
    assert unauthorized.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert missing.status_code == 403 and missing.json() == {"message": "Missing Authentication Token"}
    assert missing.headers["Access-Control-Allow-Origin"] == ORIGIN
    # AND DefaultsApi, which has Cors but no GatewayResponses, answers 401 without it (SAM adds none)
    refused = requests.get(f"{cloud.api_url}/defaults", headers={"Origin": ORIGIN}, timeout=10)
    assert refused.status_code == 401
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_the_rest_format_joins_lists_with_commas_and_writes_exp_and_iat_as_dates():
    claims = {"cognito:groups": ["reviewer", "admin"], "exp": 1680633579, "iat": 0, "auth_time": 1680629979,
              "email_verified": False, "sub": "s-1"}
    assert rest_claims(claims) == {
        "cognito:groups": "reviewer,admin", "exp": "Tue Apr 04 18:39:39 UTC 2023",
        "iat": "Thu Jan 01 00:00:00 UTC 1970", "auth_time": "1680629979", "email_verified": "false", "sub": "s-1"}


def _token_cli(*args: str) -> subprocess.CompletedProcess:
    """`oms local token ...` in a process of its own (what a developer's second terminal does)."""
    program = ("import argparse, sys\n"
               "from omsdev.commands.local_token import register_token\n"
               "parser = argparse.ArgumentParser(prog='oms local')\n"
               "register_token(parser.add_subparsers(required=True))\n"
               "args = parser.parse_args(sys.argv[1:])\n"
               "sys.exit(args.run(args))\n")
    return subprocess.run([sys.executable, "-c", program, "token", *args], capture_output=True, text=True,
                          timeout=120)


def test_the_token_command_in_another_process_prints_a_token_the_running_gateway_accepts(cloud, moto_endpoint):
    # GIVEN a running local cloud whose key lives in its endpoint
    assert cloud.stack.client("secretsmanager").describe_secret(SecretId=key_secret_name(cloud.stack_name))
    # WHEN `oms local token` runs in another process for that stack
    result = _token_cli("--role", "risk_reviewer", "--username", "rita@example.com", "--minutes", "30",
                        "--endpoint", moto_endpoint, "--template", str(AUTH_TEMPLATE), "--stack-name", cloud.stack_name)
    # THEN it prints one token, which the gateway lets in as that user
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.count(".") == 2 and "\n" not in token
    response = requests.get(f"{cloud.api_url}/reviews", headers={"Authorization": token}, timeout=10)
    assert response.status_code == 200, response.text
    claims = response.json()["requestContext"]["authorizer"]["claims"]
    assert claims["cognito:groups"] == "risk_reviewer" and claims["email"] == "rita@example.com"


def test_the_token_command_refuses_what_cognito_would_not_issue(cloud, moto_endpoint, capsys):
    parser = argparse.ArgumentParser(prog="oms local")
    register_token(parser.add_subparsers(required=True))
    stack_arguments = ["--endpoint", moto_endpoint, "--template", str(AUTH_TEMPLATE), "--stack-name", cloud.stack_name]
    # WHEN the validity is outside Cognito's 5 minutes to 1 day THEN exit 2 with the bounds
    args = parser.parse_args(["token", "--role", "admin", "--minutes", "2", *stack_arguments])
    assert args.run(args) == 2
    assert "--minutes must be 5 to 1440" in capsys.readouterr().err
    # WHEN the role is not one of the three THEN argparse refuses it
    with pytest.raises(SystemExit):
        parser.parse_args(["token", "--role", "buyer", *stack_arguments])
