"""The outbound client's SSRF guard, against a real HTTP server on 127.0.0.1.

The server counts TCP connections, so "refused before connecting" is observed, not assumed.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from forgeyard.kernel.errors import InvalidInputError
from forgeyard.kernel.http import (
    BlockedDestinationError,
    GuardedTransport,
    OutboundPolicy,
    Resolver,
    getaddrinfo_resolve,
    outbound_client,
    read_limited,
    resolve_and_check,
)
from forgeyard.settings import OutboundSettings

PUBLIC = "93.184.215.14"
LOOPBACK = OutboundPolicy(["127.0.0.1"])
REDIRECTS = {"/go": "/elsewhere", "/metadata": "http://169.254.169.254/latest/meta-data"}

# (spelling with {port}, what refuses it: httpx cannot parse one of them at all)
CORPUS = [
    ("http://127.1:{port}/", BlockedDestinationError),
    ("http://0x7f000001:{port}/", BlockedDestinationError),
    ("http://2130706433:{port}/", BlockedDestinationError),
    ("http://0177.0.0.1:{port}/", InvalidInputError),
    ("http://[::ffff:127.0.0.1]:{port}/", BlockedDestinationError),
    ("http://localhost:{port}/", BlockedDestinationError),
    ("http://127.0.0.1:{port}/", BlockedDestinationError),
    ("http://169.254.169.254:{port}/latest/meta-data", BlockedDestinationError),
    ("http://10.0.0.1:{port}", BlockedDestinationError),
    ("http://172.16.5.4:{port}", BlockedDestinationError),
    ("http://192.168.1.1:{port}", BlockedDestinationError),
    ("http://[::1]:{port}/", BlockedDestinationError),
    ("http://0.0.0.0:{port}/", BlockedDestinationError),
    ("http://0:{port}/", BlockedDestinationError),
    ("http://[fe80::1]:{port}/", BlockedDestinationError),
    ("http://100.64.0.1:{port}/", BlockedDestinationError),
    ("http://[64:ff9b::7f00:1]:{port}/", BlockedDestinationError),
    ("http://[2002:7f00:1::]:{port}/", BlockedDestinationError),
    ("http://[fc00::1]:{port}/", BlockedDestinationError),
]


@dataclass
class LocalServer:
    """A raw asyncio HTTP/1.1 server that records every connection and request head."""

    port: int = 0
    connections: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        self.connections += 1
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, path, _ = head[0].split(" ")
            headers = dict(line.split(": ", 1) for line in head[1:] if line)
            self.requests.append({"method": method, "path": path, **headers})
            await self.respond(path, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def respond(self, path: str, writer: asyncio.StreamWriter) -> None:
        if path == "/endless":  # a body that never ends: only the reader can stop it
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            while True:
                writer.write(b"1000\r\n" + b"x" * 0x1000 + b"\r\n")
                await writer.drain()
        status, extra = ("200 OK", "")
        if path in REDIRECTS:
            status, extra = "302 Found", f"Location: {REDIRECTS[path]}\r\n"
        head = f"HTTP/1.1 {status}\r\n{extra}Content-Length: 5\r\nConnection: close\r\n\r\n"
        writer.write(head.encode() + b"hello")
        await writer.drain()


async def _start(server: LocalServer, ssl_context: ssl.SSLContext | None = None) -> asyncio.Server:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=ssl_context)
    server.port = listener.sockets[0].getsockname()[1]
    return listener


async def _stop(server: LocalServer, listener: asyncio.Server) -> None:
    listener.close()
    for task in server.tasks:
        task.cancel()
    await asyncio.gather(*server.tasks, return_exceptions=True)
    await listener.wait_closed()


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    local = LocalServer()
    listener = await _start(local)
    yield local
    await _stop(local, listener)


@pytest.fixture
def transport_spy(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """Requests that reached httpx's real (connecting) transport."""
    reached: list[httpx.Request] = []

    async def spy(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        reached.append(request)
        raise AssertionError(f"{request.url} reached a connecting transport")

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", spy)
    return reached


def resolver(answers: dict[str, Iterable[list[str]]]) -> Resolver:
    """A resolve seam giving each name its next answer, as a rebinding DNS server would."""
    queues = {name: iter(replies) for name, replies in answers.items()}

    async def resolve(host: str) -> list[str]:
        return next(queues[host])

    return resolve


# --- save time --------------------------------------------------------------------------------


@pytest.mark.parametrize(("spelling", "error"), CORPUS)
async def test_save_time_refuses_every_spelling_of_a_non_public_address(
    spelling: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        await resolve_and_check(spelling.format(port=8080), OutboundPolicy())
    assert isinstance(caught.value, InvalidInputError)


async def test_the_refusal_names_the_host_the_reason_and_the_address() -> None:
    with pytest.raises(BlockedDestinationError, match=r"^localhost resolves to a loopback address"):
        await resolve_and_check("http://localhost:9/", OutboundPolicy())


async def test_blocked_error_carries_the_url_without_secrets_and_the_address() -> None:
    resolve = resolver({"hooks.test": [["127.0.0.1"]]})
    with pytest.raises(BlockedDestinationError) as caught:
        await resolve_and_check(
            "http://hooks.test:9/a?token=s3cret", OutboundPolicy(), resolve=resolve
        )
    error = caught.value
    assert error.message.startswith("hooks.test resolves to a loopback address 127.0.0.1")
    assert error.details == {
        "host": "hooks.test",
        "address": "127.0.0.1",
        "url": "http://hooks.test:9/a",
    }


@pytest.mark.parametrize("url", ["ftp://x", "http://", "http://user:pw@example.com", "not a url"])
async def test_bad_url_shapes_are_invalid_input_naming_the_field(url: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        await resolve_and_check(url, OutboundPolicy(), field="webhook_url")
    assert type(caught.value) is InvalidInputError
    assert caught.value.details["field"] == "webhook_url"
    assert caught.value.message.startswith("webhook_url: ")


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    async def nxdomain(host: str) -> list[str]:
        raise OSError(-2, "Name or service not known")

    with pytest.raises(InvalidInputError, match="does not resolve"):
        await resolve_and_check("https://nowhere.test/", OutboundPolicy(), resolve=nxdomain)


async def test_every_resolved_address_must_be_allowed() -> None:
    resolve = resolver({"mixed.test": [[PUBLIC], [PUBLIC, "127.0.0.1"]]})
    assert await resolve_and_check("https://mixed.test/", OutboundPolicy(), resolve=resolve) == [
        PUBLIC
    ]
    with pytest.raises(BlockedDestinationError, match=r"127\.0\.0\.1"):
        await resolve_and_check("https://mixed.test/", OutboundPolicy(), resolve=resolve)


# --- send time --------------------------------------------------------------------------------


@pytest.mark.parametrize(("spelling", "error"), CORPUS)
async def test_send_time_refuses_every_spelling_without_connecting(
    spelling: str, error: type[Exception], server: LocalServer, transport_spy: list[httpx.Request]
) -> None:
    async with outbound_client(OutboundPolicy(), timeout=2) as client:
        with pytest.raises(error):
            await client.get(spelling.format(port=server.port))
    assert transport_spy == []
    assert server.connections == 0


async def test_a_name_rebound_to_loopback_after_saving_is_refused_when_sent(
    server: LocalServer, transport_spy: list[httpx.Request]
) -> None:
    resolve = resolver({"rebind.test": [[PUBLIC], ["127.0.0.1"]]})
    url = f"http://rebind.test:{server.port}/hook"
    assert await resolve_and_check(url, OutboundPolicy(), resolve=resolve) == [PUBLIC]
    async with outbound_client(OutboundPolicy(), resolve=resolve) as client:
        with pytest.raises(BlockedDestinationError, match=r"loopback address 127\.0\.0\.1"):
            await client.post(url, json={"event": "ping"})
    assert transport_spy == []
    assert server.connections == 0


async def test_a_name_with_one_loopback_address_among_public_ones_is_refused_when_sent(
    server: LocalServer,
) -> None:
    resolve = resolver({"mixed.test": [[PUBLIC, "127.0.0.1"]]})
    async with outbound_client(OutboundPolicy(), resolve=resolve) as client:
        with pytest.raises(BlockedDestinationError):
            await client.get(f"http://mixed.test:{server.port}/")
    assert server.connections == 0


async def test_a_name_that_stops_resolving_is_a_connect_error(server: LocalServer) -> None:
    async def nxdomain(host: str) -> list[str]:
        raise OSError(-2, "Name or service not known")

    async with outbound_client(OutboundPolicy(), resolve=nxdomain) as client:
        with pytest.raises(httpx.ConnectError, match="does not resolve"):
            await client.get(f"http://gone.test:{server.port}/")


# --- allowed destinations ---------------------------------------------------------------------


async def test_an_allowed_loopback_address_is_reached(server: LocalServer) -> None:
    async with outbound_client(LOOPBACK) as client:
        response = await client.get(f"http://127.0.0.1:{server.port}/hello")
    assert (response.status_code, response.text) == (200, "hello")
    assert server.requests == [
        {"method": "GET", "path": "/hello", "Host": f"127.0.0.1:{server.port}"}
        | {k: v for k, v in server.requests[0].items() if k not in {"method", "path", "Host"}}
    ]
    assert server.requests[0]["Accept-Encoding"] == "identity"


async def test_a_name_is_connected_at_its_checked_address_with_its_own_host_header(
    server: LocalServer,
) -> None:
    resolve = resolver({"hooks.test": [["127.0.0.1"]]})
    async with outbound_client(LOOPBACK, resolve=resolve) as client:
        response = await client.get(f"http://hooks.test:{server.port}/hook")
    assert response.status_code == 200
    assert response.request.url == f"http://hooks.test:{server.port}/hook"
    assert server.connections == 1
    assert server.requests[0]["Host"] == f"hooks.test:{server.port}"


@pytest.mark.parametrize(
    ("allowed", "url"),
    [
        (["127.0.0.0/8"], "http://127.1:{port}/"),
        (["127.0.0.1"], "http://0x7f000001:{port}/"),
        (["LocalHost"], "http://localhost:{port}/"),
        (["127.0.0.1"], "http://[::ffff:127.0.0.1]:{port}/"),
    ],
)
async def test_allow_list_entries_match_by_network_address_or_name(
    allowed: list[str], url: str, server: LocalServer
) -> None:
    async def resolve(host: str) -> list[str]:
        # localhost may also resolve to ::1, where nothing listens: pin it to the IPv4 server.
        return ["127.0.0.1"] if host == "localhost" else await getaddrinfo_resolve(host)

    async with outbound_client(OutboundPolicy(allowed), resolve=resolve) as client:
        response = await client.get(url.format(port=server.port))
    assert response.status_code == 200
    assert server.connections == 1


async def test_redirects_are_returned_not_followed(server: LocalServer) -> None:
    async with outbound_client(LOOPBACK) as client:
        response = await client.get(f"http://127.0.0.1:{server.port}/go")
    assert response.status_code == 302
    assert response.headers["Location"] == "/elsewhere"
    assert [r["path"] for r in server.requests] == ["/go"]


async def test_a_redirect_hop_a_caller_opts_into_is_checked_too(server: LocalServer) -> None:
    async with outbound_client(LOOPBACK) as client:
        with pytest.raises(BlockedDestinationError, match=r"169\.254\.169\.254 is a link-local"):
            await client.get(f"http://127.0.0.1:{server.port}/metadata", follow_redirects=True)
    assert [r["path"] for r in server.requests] == ["/metadata"]


@pytest.mark.parametrize("option", ["transport", "follow_redirects", "proxy", "mounts", "verify"])
def test_the_client_will_not_take_a_transport_redirects_or_a_proxy(option: str) -> None:
    options: dict[str, Any] = {option: None}
    with pytest.raises(TypeError, match=option):
        outbound_client(LOOPBACK, **options)


def test_the_policy_comes_from_settings() -> None:
    policy = OutboundPolicy.from_settings(OutboundSettings(allowed_hosts="10.1.0.0/16, ci.corp"))
    policy.check_address("x", ipaddress.ip_address("10.1.2.3"))
    policy.check_address("CI.corp", ipaddress.ip_address("10.9.9.9"))
    with pytest.raises(BlockedDestinationError):
        policy.check_address("x", ipaddress.ip_address("10.2.0.1"))


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("::ffff:10.0.0.1", "private"),
        ("::7f00:1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("2002:c0a8:101::1", "private"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("100.127.255.254", "shared"),
    ],
)
def test_addresses_are_judged_by_what_they_reach(address: str, reason: str) -> None:
    with pytest.raises(BlockedDestinationError, match=reason):
        OutboundPolicy().check_address(address, ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_pass(address: str) -> None:
    OutboundPolicy().check_address("example.test", ipaddress.ip_address(address))


# --- read_limited -----------------------------------------------------------------------------


async def test_read_limited_stops_at_max_bytes_of_an_endless_body(server: LocalServer) -> None:
    url = f"http://127.0.0.1:{server.port}/endless"
    async with outbound_client(LOOPBACK) as client, client.stream("GET", url) as response:
        body = await asyncio.wait_for(read_limited(response, 10_000), timeout=5)
    assert body == b"x" * 10_000


async def test_read_limited_returns_a_short_body_whole(server: LocalServer) -> None:
    url = f"http://127.0.0.1:{server.port}/"
    async with outbound_client(LOOPBACK) as client, client.stream("GET", url) as response:
        assert await read_limited(response, 10_000) == b"hello"


# --- https: the checked IP is dialled, the name is verified -----------------------------------


def _certificate(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for ``name``; a client trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(pem)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return server_context, ssl.create_default_context(cadata=pem.decode())


async def test_https_dials_the_checked_address_and_verifies_the_name(tmp_path: Path) -> None:
    server_context, client_context = _certificate(tmp_path, "hooks.test")
    local = LocalServer()
    listener = await _start(local, server_context)
    resolve = resolver({"hooks.test": [["127.0.0.1"]], "other.test": [["127.0.0.1"]]})
    transport = GuardedTransport(LOOPBACK, resolve=resolve, verify=client_context)
    try:
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get(f"https://hooks.test:{local.port}/tls")
            assert response.status_code == 200
            assert local.requests[0]["Host"] == f"hooks.test:{local.port}"
            # Same address, a name the certificate does not cover: verification fails.
            with pytest.raises(httpx.ConnectError, match=r"CERTIFICATE_VERIFY_FAILED"):
                await client.get(f"https://other.test:{local.port}/tls")
    finally:
        await _stop(local, listener)
