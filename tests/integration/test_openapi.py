"""The OpenAPI document describes exactly the routes the app has, with their roles."""

import json
import re

from webapp.api.openapi import document
from webapp.security import ROLE_ATTRIBUTE

DESCRIBED = ("/api/v1/", "/hooks/")
METHODS = {"get", "post", "put", "patch", "delete"}


def _routes(app):
    """{(OpenAPI path, method): declared role} of every API and webhook route."""
    found = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(DESCRIBED):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        role = getattr(app.view_functions[rule.endpoint], ROLE_ATTRIBUTE)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found[(path, method.lower())] = str(role)
    return found


def _documented():
    return {
        (path, method): operation["x-role"]
        for path, item in document()["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def test_the_document_names_every_route_and_method_with_its_role(app):
    routes = _routes(app)
    documented = _documented()
    assert sorted(set(routes) - set(documented)) == [], "routes not described"
    assert sorted(set(documented) - set(routes)) == [], "described but no such route"
    assert documented == routes
    assert len(routes) >= 21


def test_every_operation_documents_its_errors_in_one_shape(app):
    error = document()["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert set(error["properties"]["error"]["properties"]) == {
        "code",
        "message",
        "field",
    }
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            statuses = {int(status) for status in operation["responses"]}
            assert any(200 <= s < 300 for s in statuses), (method, path)
            if path.startswith("/api/v1/") and operation["x-role"] != "public":
                assert 401 in statuses, (method, path)
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}


def test_webhooks_document_the_standard_webhooks_headers():
    for path in ("/hooks/{slug}", "/hooks/{slug}/batch"):
        operation = document()["paths"][path]["post"]
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
        assert operation["security"] == []


def test_the_document_is_served_to_anyone_as_openapi_3_1(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    served = response.get_json()
    assert served["openapi"] == "3.1.0"
    assert served["paths"].keys() == document()["paths"].keys()
    publish = served["paths"]["/api/v1/journeys/{journey_id}/publish"]["post"]
    assert publish["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PublishRequest"
    }
    published = served["components"]["schemas"]["Published"]
    assert set(published["properties"]) == {"version", "status", "migrated", "move"}


def test_the_document_is_valid_openapi_3_1():
    import jsonschema_rs
    from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

    plain = json.loads(json.dumps(document()))
    OPENAPI_31_VALIDATOR.validate(plain)
    for name, schema in plain["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name
