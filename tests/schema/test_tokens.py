"""Install tokens and the personal access token over GraphQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gpugo import clock
from gpugo.models import InstallToken, PersonalAccessToken
from tests.schema.support import Gql, error
from tests.support import ISO_MS, gpu_infos

GENERATE = "mutation { generateInstallToken { id token expiresAt installCommand } }"
STATUS = """query($id: ID!) {
  installToken(id: $id) { id status expiresAt usedAt isExpired agent { agentId hostname } }
}"""
PAT_INFO = "{ personalAccessToken { exists expiresAt lastUsedAt createdAt } }"
CREATE_PAT = """mutation($days: Int) {
  createPersonalAccessToken(expiresInDays: $days) { token expiresAt createdAt }
}"""


async def _register(gql: Gql, token: str, hostname: str = "h1") -> str:
    response = await gql.user.http.post(
        "/api/v1/agents/register",
        json={"hostname": hostname, "os": "linux", "arch": "amd64", "gpus": gpu_infos(1)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    return response.json()["agent_id"]


async def test_generate_install_token(gql_user, settings):
    gql = await gql_user()
    new = (await gql.data(GENERATE))["generateInstallToken"]
    assert new["token"].startswith("gpgo_inst_")
    assert ISO_MS.match(new["expiresAt"])
    assert new["installCommand"] == (
        f'curl -sfL {settings.install_script_url} | GPU_GO_TOKEN="{new["token"]}" '
        f'GPU_GO_ENDPOINT="{settings.public_url}" sh'
    )
    assert await InstallToken.filter(id=new["id"], user_id=gql.user.user_id).exists()


async def test_install_token_goes_active_used_and_names_its_agent(gql_user):
    gql = await gql_user()
    new = (await gql.data(GENERATE))["generateInstallToken"]
    status = (await gql.data(STATUS, {"id": new["id"]}))["installToken"]
    assert status == {
        "id": new["id"],
        "status": "ACTIVE",
        "expiresAt": new["expiresAt"],
        "usedAt": None,
        "isExpired": False,
        "agent": None,
    }
    agent_id = await _register(gql, new["token"], "gpu-box")
    status = (await gql.data(STATUS, {"id": new["id"]}))["installToken"]
    assert status["status"] == "USED"
    assert ISO_MS.match(status["usedAt"])
    assert status["agent"] == {"agentId": agent_id, "hostname": "gpu-box"}


async def test_install_token_expires(gql_user):
    gql = await gql_user()
    new = (await gql.data(GENERATE))["generateInstallToken"]
    clock.advance(timedelta(minutes=30))
    status = (await gql.data(STATUS, {"id": new["id"]}))["installToken"]
    assert (status["status"], status["isExpired"]) == ("EXPIRED", True)


async def test_another_users_install_token_is_not_found(gql_user):
    owner = await gql_user()
    other = await gql_user()
    new = (await owner.data(GENERATE))["generateInstallToken"]
    for token_id in (new["id"], "tok_doesnotexist"):
        response = await other(STATUS, {"id": token_id})
        assert error(response, "not_found")["path"] == ["installToken"]
        assert response.json()["data"] == {"installToken": None}


async def test_pat_lifecycle(gql_user):
    gql = await gql_user()
    info = (await gql.data(PAT_INFO))["personalAccessToken"]
    if gql.pat is None:
        assert info == {"exists": False, "expiresAt": None, "lastUsedAt": None, "createdAt": None}
    new = (await gql.data(CREATE_PAT, {"days": 30}))["createPersonalAccessToken"]
    assert new["token"].startswith("gpgo_pat_")
    assert ISO_MS.match(new["expiresAt"]) and ISO_MS.match(new["createdAt"])
    if gql.pat is not None:
        # Regenerating killed the token this request came with.
        error(await gql(PAT_INFO), "unauthorized")
        gql.pat = new["token"]
    info = (await gql.data(PAT_INFO))["personalAccessToken"]
    assert info["exists"] is True and info["expiresAt"] == new["expiresAt"]
    deleted = await gql.data("mutation { deletePersonalAccessToken }")
    assert deleted == {"deletePersonalAccessToken": True}
    assert not await PersonalAccessToken.filter(user_id=gql.user.user_id).exists()


async def test_pat_without_expiry(api):
    user = await api.user()
    gql = Gql(user)
    new = (await gql.data(CREATE_PAT))["createPersonalAccessToken"]
    assert new["expiresAt"] is None
    assert (await gql.data("mutation { deletePersonalAccessToken }"))[
        "deletePersonalAccessToken"
    ] is True
    # Nothing left to delete: false, like REST's {"success": false}.
    assert (await gql.data("mutation { deletePersonalAccessToken }"))[
        "deletePersonalAccessToken"
    ] is False


@pytest.mark.parametrize("days", [0, -1, 3651])
async def test_pat_expiry_is_validated_like_rest(api, days):
    user = await api.user()
    response = await Gql(user)(CREATE_PAT, {"days": days})
    err = error(response, "validation_error")
    rest = await user.post("/api/v1/tokens/pat", json={"expires_in_days": days})
    rest_details = rest.json()["error"]["details"]
    assert [d["message"] for d in err["extensions"]["details"]] == [
        d["message"] for d in rest_details
    ]
    assert err["extensions"]["details"][0]["field"] == "expiresInDays"
    assert rest_details[0]["field"] == "expires_in_days"
    assert not await PersonalAccessToken.filter(user_id=user.user_id).exists()


async def test_pat_expiry_must_be_an_int(api):
    user = await api.user()
    response = await Gql(user)(CREATE_PAT, {"days": "30"})
    error(response, "validation_error")
    assert response.json()["data"] is None
