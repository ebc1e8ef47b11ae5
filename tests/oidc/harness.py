"""A real OpenID Connect provider on loopback, and a scripted browser that signs in at it.

The provider is the certified ``oidc-provider`` npm package (see provider.mjs), so sign-in is
tested against what a real identity provider does rather than against a mock of our own making.
It needs Node.js and npm; without them, ``start_provider`` skips the test.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from tests.processes import free_port, node_available, npm_ci_once, stop

HERE = Path(__file__).resolve().parent
START_TIMEOUT = 30.0  # seconds; the first start after an install reads many files
MAX_STEPS = 12  # requests one sign-in may take: redirects, login form, consent form


@dataclass(frozen=True)
class Provider:
    issuer: str
    discovery_url: str
    client_id: str
    client_secret: str


class SignInError(AssertionError):
    """The scripted browser did not get back to the relying party with an answer."""


@contextmanager
def start_provider(tmp_dir: Path, redirect_uris: list[str]) -> Iterator[Provider]:
    """Runs the provider with one confidential client until the ``with`` block ends.

    Its output goes to ``tmp_dir / "oidc-provider.log"``, which a failure quotes.
    """
    if not node_available():
        pytest.skip("the OIDC tests need Node.js and npm (node, npm on PATH)")
    npm_ci_once(HERE)
    port = free_port()
    client_id, client_secret = "forgeyard-test", secrets.token_urlsafe(24)
    client = {
        "client_id": client_id,
        "client_secret": client_secret,
        "redirect_uris": redirect_uris,
    }
    log_path = tmp_dir / "oidc-provider.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["node", "provider.mjs", str(port), json.dumps(client)],
            cwd=HERE,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        issuer = _wait_until_ready(process, log_path)
        yield Provider(
            issuer=issuer,
            discovery_url=f"{issuer}/.well-known/openid-configuration",
            client_id=client_id,
            client_secret=client_secret,
        )
    finally:
        stop(process)


def _wait_until_ready(process: subprocess.Popen[bytes], log_path: Path) -> str:
    """The issuer from the provider's ``READY <issuer>`` line."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith("READY "):
                return line.removeprefix("READY ").strip()
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(
        f"the OIDC provider did not start (exit code {process.poll()}):\n"
        + log_path.read_text(errors="replace")
    )


def sign_in(authorization_url: str, login: str) -> str:
    """Acts as the user's browser: signs in as ``login``, consents, and stops at the way back.

    Returns the Location of the provider's redirect to the ``redirect_uri`` named in the
    authorization URL (with ``code``, ``state`` and ``iss``, or ``error`` when the provider
    refused), without requesting it: the caller hands it to the relying party under test.
    Any login is accepted, with any password; login ``noemail`` has no email claim.
    """
    redirect_uri = _query_param(authorization_url, "redirect_uri")
    with httpx.Client(follow_redirects=False, trust_env=False, timeout=10) as browser:
        response = browser.get(authorization_url)
        for _ in range(MAX_STEPS):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(redirect_uri):
                    return location
                response = browser.get(location)
            elif response.status_code == 200 and "<form" in response.text:
                response = _submit_form(browser, response, login)
            else:
                break
        raise SignInError(
            f"sign-in as {login!r} did not get back to {redirect_uri}: stopped at "
            f"{response.request.method} {response.url} -> {response.status_code}: "
            + _visible_text(response.text)
        )


def _visible_text(html: str) -> str:
    """What a person would read on the page (the provider's error pages are mostly CSS)."""
    text = re.sub(r"<(style|script)\b.*?</\1>|<[^>]*>", " ", html, flags=re.DOTALL)
    return " ".join(text.split())[:2000]


def _query_param(url: str, name: str) -> str:
    values = parse_qs(urlsplit(url).query).get(name)
    if not values:
        raise ValueError(f"the authorization URL has no {name}: {url}")
    return values[0]


def _submit_form(browser: httpx.Client, page: httpx.Response, login: str) -> httpx.Response:
    """Posts the page's form as a person would: the login form gets a name and a password,
    the consent form is just confirmed (its hidden ``prompt`` field says which one it is)."""
    action, fields = _FormParser.parse(page.text)
    if "login" in fields:
        fields.update(login=login, password="any password")
    return browser.post(urljoin(str(page.url), action), data=fields)


class _FormParser(HTMLParser):
    """The first form of a page: its action and the names and values of its inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._inside = False

    @classmethod
    def parse(cls, html: str) -> tuple[str, dict[str, str]]:
        parser = cls()
        parser.feed(html)
        if parser.action is None:
            raise SignInError(f"the provider's page has no form: {_visible_text(html)}")
        return parser.action, parser.fields

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form" and self.action is None:
            self.action = attributes.get("action", "")
            self._inside = True
        elif tag == "input" and self._inside and "name" in attributes:
            self.fields[attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False
