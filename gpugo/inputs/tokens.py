from __future__ import annotations

from typing import Literal

from pydantic import Field

from gpugo.inputs.common import Input

# A PAT may live at most ten years; longer is almost certainly a mistake.
MAX_PAT_DAYS = 3650


class GenerateTokenInput(Input):
    type: Literal["agent_install"]


class CreatePatInput(Input):
    # null (or absent) means "never expires"; otherwise a positive whole number of days.
    expires_in_days: int | None = Field(default=None, ge=1, le=MAX_PAT_DAYS)
