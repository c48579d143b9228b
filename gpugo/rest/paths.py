"""URL prefixes and path parameter types shared by the REST modules."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor

from gpugo.inputs.common import ID_REGEX

API = "/api/v1"


class IdConvertor(Convertor[str]):
    """``{agent_id:id}``: an id, share code or token id (at most 32 base62 characters and
    underscores). Anything else cannot name a row, so the path matches no route (404)
    and never reaches the database."""

    regex = ID_REGEX

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("id", IdConvertor())
