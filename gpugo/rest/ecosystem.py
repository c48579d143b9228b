"""GET /api/ecosystem/releases: the release catalogue, public (the agent sends no credential).

``ggo agent register`` fails on anything but a 200, so every catalogue answers one,
an empty one included; ``docs/agents.md`` says what the agent does with it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from gpugo.inputs.common import parse_input
from gpugo.inputs.releases import Release, ReleaseQuery
from gpugo.rest import requests
from gpugo.rest.outputs.releases import ReleaseInfo, ReleaseList, ReleaseRequirements
from gpugo.rest.responses import Ok
from gpugo.timefmt import iso

PATH = "/api/ecosystem/releases"


def release_json(release: Release) -> ReleaseInfo:
    requirements: ReleaseRequirements = {}
    # Unset requirements are left out, as the agent's omitempty fields are.
    if release.requirements.min_tensor_fusion_version is not None:
        requirements["minTensorFusionVersion"] = release.requirements.min_tensor_fusion_version
    if release.requirements.min_driver_version is not None:
        requirements["minDriverVersion"] = release.requirements.min_driver_version
    return {
        "id": release.id,
        "vendor": {"slug": release.vendor.slug, "name": release.vendor.name},
        "version": release.version,
        "releaseType": release.release_type,
        "releaseDate": iso(release.release_date),
        "artifacts": [
            {
                "cpuArch": a.cpu_arch,
                "os": a.os,
                "url": a.url,
                "sha256": a.sha256,
                "metadata": dict(a.metadata),
            }
            for a in release.artifacts
        ],
        "requirements": requirements,
        "isLatest": release.is_latest,
    }


async def releases(request: Request) -> Ok[ReleaseList]:
    # An empty parameter (?vendor=) filters nothing, like an absent one.
    params = {k: v for k, v in request.query_params.items() if k in ("vendor", "size") and v}
    query = parse_input(ReleaseQuery, params)
    found = await requests.server(request).releases.releases(query=query)
    return Ok({"releases": [release_json(r) for r in found], "count": len(found)})


routes: list[BaseRoute] = [Route(PATH, releases, methods=["GET"])]
