"""/api/v1/openapi.json documents exactly the routes the app serves, from the code."""

from __future__ import annotations

import inspect
import re

import schemathesis
from starlette.routing import Route

from gpugo.rest.openapi import OPERATIONS, build_document, route_operations, template


async def test_every_route_is_documented_and_every_operation_is_served(app):
    served = route_operations(app.routes)
    documented = {
        (method.upper(), path)
        for path, item in build_document(app.routes, app.state.ctx.settings)["paths"].items()
        for method in item
    }
    assert served - documented == set(), "routes without a documented operation"
    assert documented - served == set(), "documented operations no route serves"
    # And the table names nothing that is not served.
    assert set(OPERATIONS) - served == set()


async def test_the_document_is_served_and_valid(client, app):
    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert document == build_document(app.routes, app.state.ctx.settings)
    # Schemathesis refuses documents that do not conform to OpenAPI 3.1.
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(route_operations(app.routes))


async def test_security_schemes_and_error_bodies(client):
    document = (await client.get("/api/v1/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["sessionCookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "gpugo_session",
        "description": schemes["sessionCookie"]["description"],
    }
    assert {schemes[k]["bearerFormat"] for k in ("personalAccessToken", "agentSecret")} == {
        "gpgo_pat_…",
        "gpgo_agent_…",
    }
    assert schemes["installToken"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            statuses = {int(s) for s in operation["responses"]}
            assert 500 in statuses, (method, path)
            for status in statuses - {200, 201}:
                response = operation["responses"][str(status)]
                if method == "head":
                    assert "content" not in response
                elif path != "/graphql":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema["allOf"][0] == {"$ref": "#/components/schemas/ErrorBody"}
            if operation["security"]:
                assert 401 in statuses, (method, path)


async def test_request_bodies_are_the_declarations_the_endpoints_validate_with(app):
    """The documented body model is the one the endpoint reads its body into: through
    read_json, or (an endpoint handing the body as sent to a service) the service's
    parse_input of it."""
    for route in app.routes:
        if not isinstance(route, Route):
            continue
        # A plain ASGI door (rest/agent_status.py) reads its request in ``handle``.
        reader = route.endpoint
        if not inspect.isfunction(reader):
            reader = getattr(reader, "handle", None)
            if reader is None:
                continue
        source = inspect.getsource(reader)
        used = set(re.findall(r"read_json\(request, (\w+)\)", source))
        endpoint = inspect.unwrap(reader)
        for module, function in re.findall(r"await (\w+)\.(\w+)\([^)]*body=sent", source):
            service = getattr(endpoint.__globals__[module], function)
            used |= set(re.findall(r"parse_input\((\w+), body\)", inspect.getsource(service)))
        for method in route.methods or ():
            op = OPERATIONS.get((method, template(route)))
            if op is None or method == "HEAD":
                continue
            documented = {op.body.__name__} if op.body is not None else set()
            assert used == documented, (method, route.path)


async def test_success_bodies_come_from_the_endpoints_return_types(client):
    document = (await client.get("/api/v1/openapi.json")).json()
    agents = document["paths"]["/api/v1/agents"]["get"]["responses"]["200"]
    assert agents["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AgentList"
    }
    created = document["paths"]["/api/v1/workers"]["post"]["responses"]
    assert "201" in created and "200" not in created
    item = document["components"]["schemas"]["AgentListItem"]
    # Served bodies have exactly the declared fields.
    assert item["additionalProperties"] is False
    assert "gpuCount" in item["required"]
