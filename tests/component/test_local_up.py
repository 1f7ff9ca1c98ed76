"""`oms local up --endpoint URL`: use an AWS-compatible endpoint that is already running (LocalStack
in a developer's Docker, here a moto server standing in for it) instead of starting one."""

import uuid

from omsdev.cli import main
from omsdev.localcloud.cloud import find_free_port


def test_up_with_an_existing_endpoint_provisions_the_template_there_and_starts_no_server(moto_endpoint, capsys):
    # GIVEN an endpoint that is already up WHEN `oms local up --endpoint URL --duration 0` runs
    stack = f"t{uuid.uuid4().hex[:10]}"
    code = main(["local", "up", "--endpoint", moto_endpoint, "--duration", "0", "--stack-name", stack])
    out = capsys.readouterr().out
    # THEN it provisions on that endpoint and says so
    assert code == 0
    assert f"endpoint {moto_endpoint}, stack {stack}" in out
    from omsdev.localcloud.provision import aws_session

    # The local cloud's own credentials: boto3's default session may carry another test's (moto keeps
    # one set of tables per account, and derives the account from the access key).
    dynamodb = aws_session(moto_endpoint)("dynamodb")
    # Earlier tests' stacks may share this in-process endpoint: more tables than one ListTables page holds.
    names = [name for page in dynamodb.get_paginator("list_tables").paginate() for name in page["TableNames"]]
    tables = [name for name in names if name.startswith(stack)]
    assert any("OrdersTable" in name for name in tables), tables
    # AND the endpoint it did not start is still up after the local cloud stopped
    assert dynamodb.list_tables()["TableNames"]


def test_up_with_an_endpoint_where_nothing_answers_fails_with_a_clear_message(capsys):
    silent = f"http://127.0.0.1:{find_free_port('127.0.0.1')}"
    assert main(["local", "up", "--endpoint", silent, "--duration", "0", "--stack-name", "tnothing"]) == 2
    assert f"nothing answers at {silent}" in capsys.readouterr().err
