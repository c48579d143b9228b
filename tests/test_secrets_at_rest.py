"""Nothing secret is stored in the clear: dump every table and search for the raw values."""

from __future__ import annotations

from tortoise import Tortoise

from gpugo.auth.sessions import COOKIE_NAME
from tests.support import PASSWORD, register_agent


async def _dump_database() -> str:
    dump = []
    for app_models in Tortoise.apps.values():
        for model in app_models.values():
            for row in await model.all().values():
                dump.append(repr(row))
    return "\n".join(dump)


async def test_no_raw_token_or_password_is_stored(api):
    user = await api.user()
    cookie = user.http.cookies[COOKIE_NAME]
    pat = await user.create_pat()
    install = await user.install_token()
    agent = await register_agent(user, gpus=1)

    dump = await _dump_database()
    assert user.email in dump  # the dump really holds the rows
    for secret in (PASSWORD, cookie, pat, install, agent.secret):
        assert secret not in dump
        # Nor any long fragment of the random part.
        assert secret[-20:] not in dump
