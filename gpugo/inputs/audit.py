"""Query parameters of the audit log's list (REST ``/audit-events``, GraphQL ``auditEvents``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict

from gpugo.inputs.common import Input

MAX_EVENTS_PAGE = 100
DEFAULT_EVENTS_PAGE = 50


class AuditQueryInput(Input):
    # Query values are text.
    limit: Annotated[int, Strict(False), Field(ge=1, le=MAX_EVENTS_PAGE)] = DEFAULT_EVENTS_PAGE
    # ``next_before`` of the previous page (an opaque cursor).
    before: Annotated[str, Field(min_length=1, max_length=72)] | None = None
    # An event kind such as ``login.failed``; an unknown one matches nothing.
    kind: Annotated[str, Field(pattern=r"^[a-z_.]{1,40}$")] | None = None
