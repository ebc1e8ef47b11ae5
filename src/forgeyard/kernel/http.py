"""The one outbound HTTP client for user-given URLs (webhooks, registries, forges).

A user who can make the server fetch a URL can aim it at the server's own network: the cloud
metadata service, a database on localhost, an admin panel on 10/8 (SSRF). Checking the URL's
text is not enough: ``127.1``, ``0x7f000001`` and ``2130706433`` all mean 127.0.0.1, and a
name can resolve to a public address when the URL is saved and to 127.0.0.1 when it is used
(DNS rebinding). So the guard judges *resolved addresses*, and the transport connects to
exactly the address it judged: it resolves the host itself, checks every address, then sends
the request to that IP (keeping the original ``Host`` header and, for https, the original
name for SNI and certificate checks). No second lookup happens between check and connect.

:func:`resolve_and_check` validates a URL when a user saves it (a friendly early refusal);
:func:`outbound_client` guards every request when it is sent (the check that matters).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from forgeyard.kernel.errors import InvalidInputError
from forgeyard.settings import OutboundSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], Awaitable[list[str]]]

_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT: is_private misses it
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# First match names the refusal; is_global (checked last) covers what these do not name.
_REASONS: tuple[tuple[str, str], ...] = (
    ("is_unspecified", "unspecified"),
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),  # 224/4 counts as "global" to ipaddress
    ("is_reserved", "reserved"),
    ("is_private", "private"),
)
_CLIENT_OWNED = frozenset({"transport", "mounts", "proxy", "follow_redirects", "verify"})


class BlockedDestinationError(InvalidInputError):
    """A URL whose host is, or resolves to, an address outgoing requests may not reach."""

    code = "blocked_destination"


async def getaddrinfo_resolve(host: str) -> list[str]:
    """Every address ``host`` resolves to, in resolver order, without duplicates."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, 6to4, NAT64, IPv4-compatible)."""
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):  # not ::, ::1
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _blocked_reason(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        # The packet ends up at the IPv4 address inside, so that is what is judged.
        address = _embedded_ipv4(address) or address
    if address in _SHARED:
        return "shared (carrier-grade NAT)"
    for attribute, reason in _REASONS:
        if getattr(address, attribute):
            return reason
    return None if address.is_global else "non-public"


class OutboundPolicy:
    """Which destinations outgoing requests may reach: public addresses plus the allow-list."""

    def __init__(self, allowed_hosts: Sequence[str] = ()) -> None:
        self._names: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in (e.strip() for e in allowed_hosts if e.strip()):
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._names.add(entry.lower())

    @classmethod
    def from_settings(cls, settings: OutboundSettings) -> OutboundPolicy:
        return cls(settings.allowed_hosts)

    def _allowed(self, host: str, address: IPAddress) -> bool:
        if host.lower() in self._names:
            return True
        embedded = _embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
        candidates = [a for a in (address, embedded) if a is not None]
        return any(a in net for net in self._networks for a in candidates)

    def check_address(self, host: str, address: IPAddress) -> None:
        """Raise :class:`BlockedDestinationError` unless ``host`` may be reached at ``address``."""
        reason = _blocked_reason(address)
        if reason is None or self._allowed(host, address):
            return
        literal = host == str(address)
        where = f"is a {reason} address" if literal else f"resolves to a {reason} address {address}"
        raise BlockedDestinationError(
            f"{host} {where}; outgoing requests may only reach public addresses "
            "(an operator can allow it in outbound.allowed_hosts)",
            details={"host": host, "address": str(address)},
        )


def _check_all(url: httpx.URL, addresses: Sequence[str], policy: OutboundPolicy) -> None:
    for address in addresses:
        try:
            policy.check_address(url.host, ipaddress.ip_address(address))
        except BlockedDestinationError as exc:
            # Without credentials, query or fragment: the error ends up in responses and logs.
            exc.details["url"] = str(url.copy_with(userinfo=b"", query=None, fragment=None))
            raise


def _invalid(field: str, message: str, **details: Any) -> InvalidInputError:
    return InvalidInputError(f"{field}: {message}", details={"field": field, **details})


def _check_shape(url: httpx.URL, field: str) -> None:
    """Only absolute http(s) URLs with a host: no file://, gopher:// or relative tricks."""
    if url.scheme not in ("http", "https"):
        raise _invalid(field, "must be an absolute http:// or https:// URL", scheme=url.scheme)
    if not url.host:
        raise _invalid(field, "the URL has no host")


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _addresses(host: str, resolve: Resolver) -> list[str]:
    """What ``host`` resolves to; [] when it does not. IP literals are their own answer."""
    try:
        return [host] if _literal(host) else await resolve(host)
    except OSError:
        return []


async def resolve_and_check(
    url: str, policy: OutboundPolicy, *, field: str = "url", resolve: Resolver | None = None
) -> list[str]:
    """Validate a URL a user saves; return the addresses its host resolves to (all allowed)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise _invalid(field, f"not a valid URL ({exc})") from None
    _check_shape(parsed, field)
    if parsed.userinfo:  # a password in a stored URL leaks into every log and listing
        raise _invalid(field, "the URL must not contain a user name or password")
    addresses = await _addresses(parsed.host, resolve or getaddrinfo_resolve)
    if not addresses:
        raise _invalid(field, f"the host {parsed.host} does not resolve", host=parsed.host)
    _check_all(parsed, addresses, policy)
    return addresses


class GuardedTransport(httpx.AsyncBaseTransport):
    """Resolves, checks, then connects to the checked address: one lookup, no rebinding gap.

    Connections are pooled per host *name*: pooled by IP, a TLS connection verified for one
    name would be reused for another name that happens to share the address.
    """

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        resolve: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._policy = policy
        self._resolve = resolve or getaddrinfo_resolve
        self._ssl = (
            verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify)
        )
        self._pools: dict[str, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url, host = request.url, request.url.host
        _check_shape(url, "url")
        addresses = await _addresses(host, self._resolve)
        if not addresses:  # at send time a failed lookup is a network failure, as in httpx
            raise httpx.ConnectError(f"{host} does not resolve", request=request)
        _check_all(url, addresses, self._policy)  # every address, as at save time
        if host not in self._pools:
            self._pools[host] = httpx.AsyncHTTPTransport(verify=self._ssl)
        return await self._pools[host].handle_async_request(_pinned(request, host, addresses[0]))

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()
        self._pools.clear()


def _pinned(request: httpx.Request, host: str, address: str) -> httpx.Request:
    """The request aimed at ``address``; Host header and TLS name stay the original host."""
    extensions = dict(request.extensions)
    if request.url.scheme == "https" and not _literal(host):
        extensions["sni_hostname"] = host
    # A fresh request: the client keeps the original for redirects and response.request.
    return httpx.Request(
        request.method,
        request.url.copy_with(host=address),
        headers=request.headers,  # still holds the original Host
        stream=request.stream,
        extensions=extensions,
    )


class _OutboundClient(httpx.AsyncClient):
    def build_request(self, *args: Any, **kwargs: Any) -> httpx.Request:
        # Spellings httpx cannot parse (``0177.0.0.1``) are a refusal like any other.
        try:
            return super().build_request(*args, **kwargs)
        except httpx.InvalidURL as exc:
            raise _invalid("url", f"not a valid URL ({exc})") from None


def outbound_client(
    policy: OutboundPolicy,
    *,
    timeout: float = 10.0,
    resolve: Resolver | None = None,
    **kwargs: Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every request passes the guard; redirects not followed.

    A caller that opts into redirects per request still gets each hop checked.
    """
    if owned := _CLIENT_OWNED & kwargs.keys():
        raise TypeError(f"outbound_client sets {', '.join(sorted(owned))} itself")
    # Compressed bodies could inflate far past read_limited's cap inside one chunk.
    headers = httpx.Headers({"Accept-Encoding": "identity"})
    headers.update(kwargs.pop("headers", None) or {})
    return _OutboundClient(
        transport=GuardedTransport(policy, resolve=resolve),
        follow_redirects=False,
        timeout=timeout,
        headers=headers,
        **kwargs,
    )


async def read_limited(response: httpx.Response, max_bytes: int) -> bytes:
    """At most ``max_bytes`` of a (streamed) body; the rest is never read."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk[: max_bytes - len(body)]
        if len(body) >= max_bytes:
            await response.aclose()  # drop the connection rather than drain an endless body
            break
    return bytes(body)
