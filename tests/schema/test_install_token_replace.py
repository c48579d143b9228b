"""One install command at a time: a new one can end the old one; the command warns when
it sends machines to a loopback address."""

from __future__ import annotations

import pytest

from gpugo.services.install_tokens import endpoint_warning
from tests.schema.support import Gql
from tests.support import gpu_infos

GENERATE = """mutation($replaces: ID) {
  generateInstallToken(type: AGENT_INSTALL, replaces: $replaces) { id token endpointWarning } }"""
STATUS = "query($id: ID!) { installToken(id: $id) { status } }"


async def _register(gql: Gql, token: str):
    return await gql.user.http.post(
        "/api/v1/agents/register",
        json={"hostname": "box", "os": "linux", "arch": "amd64", "gpus": gpu_infos(1)},
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_a_new_command_ends_the_one_it_replaces_only_ones_own(api):
    user = await api.user()
    gql = Gql(user)
    old = (await gql.data(GENERATE))["generateInstallToken"]
    assert old["endpointWarning"] is None  # the tests' public URL is not a loopback one
    other = Gql(await api.user())
    theirs = (await other.data(GENERATE))["generateInstallToken"]
    # Naming someone else's token ends nothing of theirs.
    await gql.data(GENERATE, {"replaces": theirs["id"]})
    assert (await other.data(STATUS, {"id": theirs["id"]}))["installToken"]["status"] == "ACTIVE"
    new = (await gql.data(GENERATE, {"replaces": old["id"]}))["generateInstallToken"]
    assert (await gql.data(STATUS, {"id": old["id"]}))["installToken"]["status"] == "EXPIRED"
    refused = await _register(gql, old["token"])
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "token_expired"
    assert (await _register(gql, new["token"])).status_code == 201


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://127.0.0.1:8080", True),
        ("http://localhost:8080", True),
        ("http://[::1]:8080", True),
        ("https://gpu.example.com", False),
        ("http://192.168.1.10:8080", False),
    ],
)
def test_loopback_endpoints_are_warned_about(settings, url, warned):
    warning = endpoint_warning(settings.replace(public_url=url))
    assert (warning is not None) is warned
    if warning:
        assert "GPUGO_PUBLIC_URL" in warning and url in warning
