"""The reviewer API's committed OpenAPI document is what the code generates, and the template routes
exactly the document's operations to the function."""

import json

from omsdev.commands.openapi import DOCUMENT, generated

from tests.contract.test_settings_contract import template


def test_the_committed_openapi_document_matches_the_code():
    # WHEN the document is generated from functions/review_api/handler.py
    # THEN it is byte for byte the committed one (else: `oms openapi --write` and commit)
    assert DOCUMENT.read_text(encoding="utf-8") == generated()


def test_the_template_routes_every_documented_operation_and_nothing_else():
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    documented = {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}
    events = template()["Resources"]["ReviewApiFunction"]["Properties"]["Events"].values()
    routed = {(event["Properties"]["Method"].upper(), event["Properties"]["Path"]) for event in events}
    assert routed == documented


def test_every_route_needs_a_token_and_documents_its_refusals():
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    assert document["security"] == [{"cognito": []}]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert {"200", "401", "403", "404", "409", "422"} <= set(operation["responses"]), (method, path)
