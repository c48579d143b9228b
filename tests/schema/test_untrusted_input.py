"""What a client sends is checked as REST checks it: ids, cursors and the JSON itself.

An ``ID`` argument that cannot name a row is not found (REST's path rule) before the
database; a cursor this server did not write, too-deep JSON or a number too large to
read is a validation_error; none of them costs more than one short log line.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest

from gpugo.logs import QUIET_LOGGERS
from tests.schema.support import GRAPHQL, Gql, as_pat, error, post
from tests.support import ORIGIN, moment, out_time

# Ids no row can have: too long, a forged log line, beyond ASCII (a lone surrogate is not
# JSON that the server reads at all: see the JSON test below).
BAD_IDS = [
    "a" * 1_000_000,
    "agt_x\n2026-01-01 INFO gpugo.access GET /forged 200",
    "agt_\u00e9",
    "agt x",
    "",
]
# Arguments of the ID fields besides the id itself.
OTHER_ARGUMENTS = {
    "agentMetrics": "from: $from, to: $to",
    "updateWorker": "input: {}",
    "updateWebhook": "input: {}",
    "extendShare": "input: {}",
    "setAgentLabels": "input: {}",
}
# Every ID argument of a query or mutation, and what an impossible id answers: a look-up
# is not found; the workers filter is an input (REST's query parameter, 400).
ID_ARGUMENTS = {
    ("query", "installToken", "id"): "not_found",
    ("query", "agent", "id"): "not_found",
    ("query", "agentMetrics", "agentId"): "not_found",
    ("query", "workers", "agentId"): "validation_error",
    ("query", "worker", "id"): "not_found",
    ("mutation", "deleteAgent", "id"): "not_found",
    ("mutation", "updateWorker", "id"): "not_found",
    ("mutation", "deleteWorker", "id"): "not_found",
    ("mutation", "restartWorker", "id"): "not_found",
    ("mutation", "deleteShare", "id"): "not_found",
    ("mutation", "extendShare", "id"): "not_found",
    ("mutation", "setAgentLabels", "id"): "not_found",
    ("mutation", "generateInstallToken", "replaces"): "not_found",
    ("mutation", "revokeSession", "id"): "not_found",
    ("query", "webhook", "id"): "not_found",
    ("mutation", "updateWebhook", "id"): "not_found",
    ("mutation", "deleteWebhook", "id"): "not_found",
    ("mutation", "testWebhook", "id"): "not_found",
    ("mutation", "rotateWebhookSecret", "id"): "not_found",
    ("mutation", "redeliverWebhookDelivery", "id"): "not_found",
}
FIELDS = "fields { name args { name type { name ofType { name } } } type { kind ofType { kind } } }"
ROOTS = f"{{ __schema {{ queryType {{ {FIELDS} }} mutationType {{ {FIELDS} }} "
ROOTS += f"subscriptionType {{ {FIELDS} }} }} }}"
H = {"Content-Type": "application/json"}


def request_lines(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    """What the server's log holds: not the test client's lines, nor those that
    configure_logging keeps quiet (tests do not configure logging)."""

    def quiet(record: logging.LogRecord) -> bool:
        return any(
            (record.name == name or record.name.startswith(f"{name}.")) and record.levelno < level
            for name, level in QUIET_LOGGERS.items()
        )

    return [r for r in records if not r.name.startswith(("httpx", "httpcore")) and not quiet(r)]


def assert_one_short_line(records: list[logging.LogRecord]) -> None:
    lines = request_lines(records)
    assert len(lines) <= 1, [r.getMessage()[:200] for r in lines]
    for record in lines:
        message = record.getMessage()
        assert len(message) < 300 and "\n" not in message, message[:300]
        assert record.exc_info is None


async def id_arguments(gql: Gql) -> dict[tuple[str, str, str], str]:
    """(operation, field, argument) -> the kind of the field's result, for ID arguments."""
    schema = (await gql.data(ROOTS))["__schema"]
    found = {}
    for operation in ("query", "mutation", "subscription"):
        for field in schema[f"{operation}Type"]["fields"]:
            for arg in field["args"]:
                named = arg["type"]["name"] or (arg["type"]["ofType"] or {}).get("name")
                if named == "ID":
                    found[operation, field["name"], arg["name"]] = field.get("type", {})
    return found


def document(operation: str, field: str, argument: str, result: dict[str, Any]) -> str:
    others = OTHER_ARGUMENTS.get(field, "")
    arguments = f"{argument}: $id" + (f", {others}" if others else "")
    kinds = {result["kind"], (result["ofType"] or {}).get("kind")}
    selection = " { __typename }" if "OBJECT" in kinds else ""
    variables = "$id: ID!" + (", $from: DateTime!, $to: DateTime!" if "$from" in others else "")
    return f"{operation}({variables}) {{ {field}({arguments}){selection} }}"


async def test_every_id_argument_refuses_an_id_that_cannot_name_a_row(api, caplog):
    gql = await as_pat(await api.user(plan="pro"))
    found = await id_arguments(gql)
    # A new ID argument must be added here (and checked in its resolver).
    assert {k for k in found if k[0] != "subscription"} == set(ID_ARGUMENTS)
    assert {k for k in found if k[0] == "subscription"} == {
        ("subscription", "agentEvents", "agentId"),
        ("subscription", "installToken", "id"),
        ("subscription", "installTokenRefusals", "id"),
        ("subscription", "agentMetrics", "agentId"),
    }  # answered the same way over WebSockets: tests/live/test_subscriptions.py
    window = {"from": out_time(moment()), "to": out_time(moment())}
    for (operation, field, argument), code in ID_ARGUMENTS.items():
        query = document(operation, field, argument, found[operation, field, argument])
        for bad in BAD_IDS:
            caplog.clear()
            with caplog.at_level(logging.DEBUG):
                response = await gql(query, {"id": bad, **window})
            err = error(response, code)
            assert err["path"] == [field], err
            assert response.json()["data"] == {field: None} or code == "validation_error"
            assert len(response.content) < 2000  # the id is not echoed back
            assert_one_short_line(caplog.records)


async def test_fifteen_megabyte_ids_cost_fifteen_short_log_lines(api, caplog):
    gql = await as_pat(await api.user())
    with caplog.at_level(logging.DEBUG):
        for _ in range(15):
            response = await gql("query($id: ID!) { agent(id: $id) { id } }", {"id": "a" * 10**6})
            error(response, "not_found")
    lines = request_lines(caplog.records)
    assert len(lines) == 15 and all(r.name == "gpugo.access" for r in lines)
    assert sum(len(r.getMessage()) for r in lines) < 15 * 100


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "after",
    [
        cursor("9" * 30 + ":x"),  # past year 9999: overflowed into internal_error
        cursor("253402300800000000:agt_x"),  # the first microsecond after 9999
        cursor("-1:agt_x"),
        cursor("01:agt_x"),
        cursor(" 1:agt_x"),
        cursor("1_000:agt_x"),
        cursor("\u0661:agt_x"),  # an Arabic-Indic digit, which int() reads
        cursor("1:agt x"),
        cursor("1:" + "a" * 33),
        cursor("1:agt_x\n"),
        "x" * 100_000,
        "agt_\u00e9",
        "",
    ],
)
async def test_a_cursor_this_server_did_not_write_is_a_validation_error(api, caplog, after):
    gql = await as_pat(await api.user())
    for field in ("agents", "workers", "shares"):
        query = f"query($after: String) {{ {field}(after: $after) {{ totalCount }} }}"
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            err = error(await gql(query, {"after": after}), "validation_error")
        assert err["extensions"]["details"] == [
            {"field": "after", "message": "Not a cursor of this list."}
        ]
        assert_one_short_line(caplog.records)


async def test_the_last_representable_cursor_is_read(api):
    gql = await as_pat(await api.user())
    last = cursor("253402300799999999:agt_x")
    response = await gql(
        "query($after: String) { agents(after: $after) { totalCount } }", {"after": last}
    )
    assert "errors" not in response.json(), response.text


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("nested lists", b"[" * 100_000),
        ("nested objects", b'{"a":' * 100_000),
        (
            "nested variables",
            b'{"query": "{ __typename }", "variables": {"x": %s}}' % (b"[" * 5000),
        ),
        (
            "a 5000-digit number",
            b'{"query": "{ __typename }", "variables": {"x": %s}}' % (b"9" * 5000),
        ),
        ("a number past a double", b'{"query": "{ __typename }", "variables": {"x": 1e999}}'),
        ("a lone surrogate", b'{"query": "{ __typename }", "variables": {"x": "\\ud800"}}'),
        ("not UTF-8", b'{"query": "{ __typename \xff }"}'),
    ],
)
async def test_json_that_cannot_be_read_is_a_400_even_without_a_credential(
    client, caplog, name, body
):
    with caplog.at_level(logging.DEBUG):
        response = await client.post(GRAPHQL, content=body, headers=H)
    assert response.status_code == 400, (name, response.text)
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["validation_error"]
    assert_one_short_line(caplog.records)


async def test_a_literal_too_large_to_read_is_a_validation_error(api, caplog):
    gql = await as_pat(await api.user())
    with caplog.at_level(logging.DEBUG):
        response = await gql("{ agents(first: %s) { totalCount } }" % ("9" * 5000))
    err = error(response, "validation_error")
    assert err["message"] == "A value in the document is out of range."
    assert response.json()["data"] is None
    assert_one_short_line(caplog.records)


async def test_a_deeply_nested_document_is_a_validation_error(client, caplog):
    for query in ("{" + "a{" * 5000, "{ agent(id: " + "[" * 5000 + ") { id } }"):
        with caplog.at_level(logging.DEBUG):
            response = await post(client, query, headers=ORIGIN)
        error(response, "validation_error")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_an_operation_name_is_logged_escaped(api, monkeypatch, caplog):
    # A bug's log line names the operation: a name cannot add a line of its own.
    from gpugo.services import users

    async def broken(**_: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(users, "get_current", broken)
    gql = await as_pat(await api.user())
    name = "Q" + "x" * 1000
    with caplog.at_level(logging.ERROR, logger="gpugo.graphql"):
        error(await gql(f"query {name} {{ me {{ id }} }}"), "internal_error")
    (record,) = [r for r in caplog.records if r.name == "gpugo.graphql"]
    assert len(record.getMessage()) < 400
