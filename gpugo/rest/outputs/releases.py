"""GET /api/ecosystem/releases bodies: the shipped agent's ``ReleasesResponse``, camelCase."""

from __future__ import annotations

from typing import NotRequired

from typing_extensions import TypedDict

from gpugo.rest.outputs.common import Timestamp


class ReleaseVendor(TypedDict):
    slug: str
    name: str


class ReleaseArtifact(TypedDict):
    cpuArch: str
    os: str
    url: str
    sha256: str
    # Text values only (the agent decodes a map of strings): "type", "size", ...
    metadata: dict[str, str]


class ReleaseRequirements(TypedDict):
    minTensorFusionVersion: NotRequired[str]
    minDriverVersion: NotRequired[str]


class ReleaseInfo(TypedDict):
    id: str
    vendor: ReleaseVendor
    version: str
    releaseType: str
    releaseDate: Timestamp
    artifacts: list[ReleaseArtifact]
    requirements: ReleaseRequirements
    isLatest: bool


class ReleaseList(TypedDict):
    releases: list[ReleaseInfo]
    count: int
