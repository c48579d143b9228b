"""The release catalogue's manifest: the shape of ``GET /api/ecosystem/releases``.

A manifest file, an upstream catalogue and the endpoint's answer share one shape,
``{"releases": [...]}`` in the agent's camelCase, so a catalogue fetched from any
server that speaks the endpoint is a valid manifest as it is. The types are the ones
the agent decodes into (``internal/api/types.go`` of NexusGPU/gpu-go): a value of
another JSON type (a number in ``metadata``) would break its whole decode, so it is
refused here rather than served.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, ConfigDict, Field, Strict, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from gpugo.inputs.common import Input, Timestamp, validation_failed

# Library types the agent asks for (internal/deps/deps.go); anything else it never uses.
LIBRARY_TYPES = ("vgpu-library", "remote-gpu-worker", "remote-gpu-client")
# Platform names the agent matches, after its own mapping (macos -> darwin, x86_64 -> amd64).
AGENT_OS = ("linux", "darwin", "macos", "windows")
AGENT_ARCH = ("amd64", "x86_64", "x64", "arm64")
# The most releases one answer carries (the agent asks for 500).
MAX_SIZE = 500
DEFAULT_SIZE = 10

_SHA256 = re.compile(r"^([0-9a-fA-F]{64})?$")
Text = Annotated[str, Field(min_length=1, max_length=128)]


def _download_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    if not file_name(value):
        # The agent saves the download under the URL's last path segment.
        raise ValueError("must end in a file name (the agent saves the file under it)")
    return value


def _sha256(value: str) -> str:
    if not _SHA256.match(value):
        raise ValueError("must be 64 hexadecimal digits, or empty (not verified)")
    return value.lower()


def file_name(url: str) -> str:
    """The name the agent gives a download: the URL's last segment, without query or fragment."""
    return url.split("/")[-1].split("?")[0].split("#")[0]


class _Shape(Input):
    model_config = ConfigDict(
        strict=True, extra="ignore", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class Vendor(_Shape):
    slug: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    name: Annotated[str, Field(max_length=128)] = ""


class Artifact(_Shape):
    cpu_arch: Annotated[str, Field(min_length=1, max_length=32)]
    os: Annotated[str, Field(min_length=1, max_length=32)]
    url: Annotated[str, Field(max_length=2048), AfterValidator(_download_url)]
    sha256: Annotated[str, AfterValidator(_sha256)] = ""
    # Text values only: the agent decodes a map[string]string ("size" is digits in text).
    metadata: Annotated[
        dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=1024)]],
        Field(max_length=32),
    ] = Field(default_factory=dict)


class Requirements(_Shape):
    min_tensor_fusion_version: Annotated[str, Field(max_length=64)] | None = None
    min_driver_version: Annotated[str, Field(max_length=64)] | None = None


class Release(_Shape):
    id: Text
    vendor: Vendor
    version: Annotated[str, Field(min_length=1, max_length=64)]
    release_type: Annotated[str, Field(min_length=1, max_length=64)] = "stable"
    release_date: Timestamp
    artifacts: Annotated[list[Artifact], Field(max_length=256)] = Field(default_factory=list)
    requirements: Requirements = Field(default_factory=Requirements)
    is_latest: bool = False


class ReleaseManifest(_Shape):
    # A catalogue answer's "count" (and anything else) is ignored: it is recomputed.
    releases: Annotated[list[Release], Field(max_length=10_000)]

    @field_validator("releases")
    @classmethod
    def _unique_ids(cls, releases: list[Release]) -> list[Release]:
        seen: set[str] = set()
        for release in releases:
            if release.id in seen:
                raise ValueError(f"release id {release.id!r} appears twice")
            seen.add(release.id)
        return releases


class ReleaseQuery(Input):
    """The endpoint's query: ``vendor`` (a slug, any case) and ``size`` (default 10)."""

    vendor: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    # Query values are text; more than 500 reads as 500 (the agent asks for exactly that).
    size: Annotated[int, Strict(False), Field(ge=1)] | None = None


class ManifestError(ValueError):
    """A manifest that cannot be served, with a message for the operator."""


def parse_manifest(data: bytes | str, *, source: str) -> ReleaseManifest:
    try:
        return ReleaseManifest.model_validate_json(data)
    except ValidationError as exc:
        details = validation_failed(exc).details
        found = "; ".join(
            d.message if d.field == "body" else f"{d.field}: {d.message}" for d in details[:3]
        )
        more = f" (and {len(details) - 3} more)" if len(details) > 3 else ""
        raise ManifestError(f"{source}: not a release manifest: {found}{more}") from None


def load_manifest(path: str | Path, *, max_bytes: int) -> ReleaseManifest:
    """A manifest file, refused when unreadable, larger than ``max_bytes`` or invalid."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise ManifestError(f"{path}: larger than {max_bytes} bytes")
    return parse_manifest(data, source=str(path))


def warnings(manifest: ReleaseManifest) -> list[str]:
    """What is valid but that the agent will not use as the operator may expect."""
    found: list[str] = []
    for i, release in enumerate(manifest.releases):
        for j, artifact in enumerate(release.artifacts):
            where = f"releases[{i}].artifacts[{j}] ({file_name(artifact.url)})"
            kind = artifact.metadata.get("type")
            if kind is None:
                found.append(f"{where}: no metadata.type, the agent never downloads it")
            elif kind not in LIBRARY_TYPES:
                found.append(f"{where}: metadata.type {kind!r} is none the agent asks for")
            if not artifact.sha256:
                found.append(f"{where}: no sha256, the agent cannot verify the download")
            size = artifact.metadata.get("size")
            if size is not None and not size.isdigit():
                found.append(f"{where}: metadata.size {size!r} is not a number of bytes")
            if artifact.os.lower() not in AGENT_OS or artifact.cpu_arch.lower() not in AGENT_ARCH:
                found.append(
                    f"{where}: {artifact.os}/{artifact.cpu_arch} matches no platform an agent "
                    f"runs on ({'/'.join(AGENT_OS)}, {'/'.join(AGENT_ARCH)})"
                )
    return found
