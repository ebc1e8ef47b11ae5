"""A real webhook receiver on loopback, and helpers the webhook tests share."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from forgeyard.jobs.worker import Worker
from tests.identity.conftest import (
    Account,
    tenants,  # noqa: F401  (Acme's people and Globex's owner)
)

API = "/api/v1"
# A global address given as a literal: passes the save-time check without DNS.
PUBLIC_URL = "https://93.184.215.14/hook"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def verify(self, secret: str) -> Any:
        """Standard Webhooks verification, timestamp tolerance included."""
        return Webhook(secret).verify(self.body, self.headers)

    def signed_with(self, secret: str) -> bool:
        """The signature matches ``secret``, whatever the (test clock's) timestamp says."""
        stamp = datetime.fromtimestamp(int(self.headers["webhook-timestamp"]), UTC)
        expected = Webhook(secret).sign(self.headers["webhook-id"], stamp, self.body.decode())
        return expected in self.headers["webhook-signature"].split(" ")


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers as told per path."""

    url: str
    requests: list[Received] = field(default_factory=list)
    # path -> status code answered there (200 when not listed)
    answers: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with receiver.lock:
                receiver.requests.append(
                    Received(self.command, self.path, dict(self.headers.items()), body)
                )
            status = receiver.answers.get(self.path, 200)
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", f"{receiver.url}/elsewhere")
            answer = f"answered {status}".encode()
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_POST = do_GET = _record

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def run_jobs(worker: Worker) -> int:
    """Drain until nothing is due: dispatch, fan-out and delivery are separate jobs."""
    total = 0
    while ran := await worker.drain():
        total += ran
    return total


async def create_webhook(
    client: httpx.AsyncClient, account: Account, url: str = PUBLIC_URL, **fields: Any
) -> dict[str, Any]:
    body = {"url": url, "events": ["*"], **fields}
    response = await client.post(f"{API}/webhooks", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
