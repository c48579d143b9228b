"""Every REST route: the spec's /api/v1 and /s, plus the contract's extras."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from gpugo.rest import agents, auth, health, tokens

API = "/api/v1"

routes: list[BaseRoute] = [
    Route("/healthz", health.healthz, methods=["GET"]),
    Route("/readyz", health.readyz, methods=["GET"]),
    Route(f"{API}/license/public-key", health.license_public_key, methods=["GET"]),
    Route(f"{API}/auth/signup", auth.signup, methods=["POST"]),
    Route(f"{API}/auth/login", auth.login, methods=["POST"]),
    Route(f"{API}/auth/logout", auth.logout, methods=["POST"]),
    Route(f"{API}/auth/me", auth.me, methods=["GET"]),
    Route(f"{API}/tokens/generate", tokens.generate, methods=["POST"]),
    Route(f"{API}/tokens/pat", tokens.get_pat, methods=["GET"]),
    Route(f"{API}/tokens/pat", tokens.create_pat, methods=["POST"]),
    Route(f"{API}/tokens/pat", tokens.delete_pat, methods=["DELETE"]),
    Route(f"{API}/tokens/{{token_id}}/status", tokens.status, methods=["GET"]),
    Route(f"{API}/agents/register", agents.register, methods=["POST"]),
]
