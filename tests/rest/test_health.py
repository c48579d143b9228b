from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gpugo.services import licenses


async def test_healthz_and_readyz(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_public_key_verifies_licenses_the_server_signs(app, client):
    response = await client.get("/api/v1/license/public-key")
    assert response.status_code == 200
    body = response.json()
    assert body["algorithm"] == "Ed25519"
    key = load_pem_public_key(body["public_key"].encode())
    assert isinstance(key, Ed25519PublicKey)

    issued = licenses.issue(ctx=app.state.ctx, gpu_ids=["GPU-0", "GPU-1"], plan="pro")
    key.verify(base64.b64decode(issued.encrypted), issued.plain.encode())
    assert licenses.verify(public_key=key, license=issued)
    tampered = licenses.License(
        plain=issued.plain.replace("pro", "team"), encrypted=issued.encrypted
    )
    assert not licenses.verify(public_key=key, license=tampered)
