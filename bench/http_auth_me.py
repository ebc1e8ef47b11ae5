"""``GET /api/v1/auth/me`` with a JWT and with an API key, against the bare Starlette floor.

Every protected request pays for this: verifying the credential, one query for the caller's
membership (or key), the plan's rate limit and the concurrency slot.
"""

from __future__ import annotations

import json
import urllib.request

from bench.harness import OWNER_EMAIL, OWNER_PASSWORD, Session, Target, measure_against_baseline
from bench.model import Row

NAME_JWT = "auth_me_jwt"
NAME_KEY = "auth_me_api_key"
ME = "/api/v1/auth/me"


def _post(url: str, body: dict[str, object], headers: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.load(response))


def _credentials(session: Session) -> tuple[str, str]:
    """An access token from a real sign-in, and an API key made with it."""
    server = session.forgeyard()
    tokens = _post(
        server.url("/api/v1/auth/login"), {"email": OWNER_EMAIL, "password": OWNER_PASSWORD}
    )
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    key = _post(server.url("/api/v1/api-keys"), {"name": "bench", "scopes": ["read"]}, bearer)
    return str(tokens["access_token"]), str(key["key"])


def run(session: Session) -> list[Row]:
    token, key = _credentials(session)
    baseline = Target(session.baseline(), "/healthz")
    rows = measure_against_baseline(
        NAME_JWT,
        Target(session.forgeyard(), ME, (f"Authorization: Bearer {token}",)),
        baseline,
        session.options,
    )
    return rows + measure_against_baseline(
        NAME_KEY, Target(session.forgeyard(), ME, (f"X-API-Key: {key}",)), baseline, session.options
    )
