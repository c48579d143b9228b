"""The Origin check for cookie-authenticated unsafe requests."""

from __future__ import annotations

from gpugo.errors import Forbidden

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def check_same_origin(
    *, method: str, origin: str | None, sec_fetch_site: str | None, public_origin: str
) -> None:
    """Refuse an unsafe request unless the browser says it came from our own pages."""
    if method.upper() in SAFE_METHODS:
        return
    if origin is not None:
        if origin.lower().rstrip("/") == public_origin:
            return
    elif sec_fetch_site == "same-origin":
        return
    raise Forbidden("Cross-site request refused: the Origin does not match this server.")
