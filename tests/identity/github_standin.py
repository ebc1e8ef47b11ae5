"""A stand-in for GitHub's OAuth web flow and the one REST call sign-in makes.

GitHub cannot run here. This follows GitHub's documented behaviour ("Authorizing OAuth
apps", web application flow, and "List email addresses for the authenticated user"):
the authorize page redirects back with ``code`` and ``state``; the token endpoint answers
JSON when asked, with HTTP 200 and an ``error`` member when the code is wrong; PKCE S256 is
checked; ``/user/emails`` lists addresses with ``primary`` and ``verified``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route


@dataclass
class GitHubStandIn:
    client_id: str = "Iv1.forgeyardtest"
    client_secret: str = field(default_factory=lambda: secrets.token_hex(20))
    # The account that "is signed in to GitHub" when the browser reaches the authorize page.
    emails: list[dict[str, object]] = field(default_factory=list)
    codes: dict[str, tuple[str, str, list[dict[str, object]]]] = field(default_factory=dict)
    tokens: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    url: str = ""

    async def authorize(self, request: Request) -> Response:
        query = request.query_params
        if query.get("client_id") != self.client_id or query.get("code_challenge_method") != "S256":
            return JSONResponse({"error": "bad request"}, status_code=400)
        code = secrets.token_hex(10)
        self.codes[code] = (query["redirect_uri"], query["code_challenge"], list(self.emails))
        target = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        return RedirectResponse(target, status_code=302)

    async def access_token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        entry = self.codes.pop(str(form.get("code")), None)
        credentials = (form.get("client_id"), form.get("client_secret"))
        auth = request.headers.get("authorization", "")
        if auth.startswith("Basic "):
            credentials = tuple(base64.b64decode(auth[6:]).decode().split(":", 1))  # type: ignore[assignment]
        if credentials != (self.client_id, self.client_secret):
            return JSONResponse({"error": "incorrect_client_credentials"})
        if entry is None or entry[0] != form.get("redirect_uri"):
            return JSONResponse(
                {
                    "error": "bad_verification_code",
                    "error_description": "The code passed is incorrect or expired.",
                }
            )
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(
            b"="
        )
        if challenge.decode() != entry[1]:
            return JSONResponse({"error": "bad_verification_code", "error_description": "PKCE"})
        token = "gho_" + secrets.token_hex(18)
        self.tokens[token] = entry[2]
        return JSONResponse(
            {"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"}
        )

    async def user_emails(self, request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        return JSONResponse(self.tokens[token])

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/login/oauth/authorize", self.authorize),
                Route("/login/oauth/access_token", self.access_token, methods=["POST"]),
                Route("/user/emails", self.user_emails),
            ]
        )


@contextmanager
def running_github() -> Iterator[GitHubStandIn]:
    standin = GitHubStandIn()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            standin.app(), host="127.0.0.1", port=port, log_config=None, access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.02)
    standin.url = f"http://127.0.0.1:{port}"
    try:
        yield standin
    finally:
        server.should_exit = True
        thread.join(timeout=5)
