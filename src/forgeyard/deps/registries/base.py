"""What a package registry tells us, and the HTTP behaviour every registry client shares.

    Registry                   lookup(name) -> PackageInfo, or raises RegistryError
     ├── PyPIRegistry          PEP 503 / PEP 691 simple API, plus the JSON API for dates
     └── NpmRegistry           the packument: versions, time, deprecated

Every request goes through the SSRF-guarded client of :mod:`forgeyard.kernel.http` (one
client, shared by all lookups), with a time limit, a size limit, a few retries with
exponential backoff and jitter on 429, 5xx and connection errors (``Retry-After`` honoured),
and conditional requests against an :class:`~forgeyard.deps.registries.cache.AnswerCache`.
``requests_made`` counts every request sent, 304 answers and retries included.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import httpx

from forgeyard.deps.registries.cache import AnswerCache, CachedAnswer, MemoryCache
from forgeyard.kernel.errors import InvalidInputError
from forgeyard.kernel.http import OutboundPolicy, outbound_client, read_limited

T = TypeVar("T")
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
GONE_STATUSES = frozenset({404, 410})


@dataclass(frozen=True)
class Release:
    version: str
    published_at: datetime | None  # UTC; None when the registry does not say
    yanked: bool = False
    deprecated: str | None = None  # npm's deprecation message


@dataclass(frozen=True)
class PackageInfo:
    ecosystem: str
    name: str
    releases: list[Release]  # every version the registry lists, yanked and prereleases too

    @property
    def versions(self) -> list[str]:
        return [release.version for release in self.releases]

    def release(self, version: str) -> Release | None:
        return next((r for r in self.releases if r.version == version), None)


class RegistryError(Exception):
    """A lookup that failed, with a one-line reason a user can act on."""

    def __init__(self, ecosystem: str, name: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{ecosystem} package {name}: {reason}")
        self.ecosystem = ecosystem
        self.name = name
        self.reason = reason
        self.status = status

    @property
    def not_found(self) -> bool:
        return self.status in GONE_STATUSES


class _BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


def bearer_auth(token: str) -> httpx.Auth:
    return _BearerAuth(token)


class Registry(ABC):
    """One registry (an index URL, optional credentials) and the HTTP behaviour above.

    Pass ``client`` (from :func:`~forgeyard.kernel.http.outbound_client`) to share one
    connection pool between registries; otherwise one is made from ``policy`` and closed by
    :meth:`aclose` (or ``async with``).
    """

    ecosystem: ClassVar[str]

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        policy: OutboundPolicy | None = None,
        auth: httpx.Auth | None = None,
        auth_key: str = "",
        cache: AnswerCache | None = None,
        timeout: float = 10.0,
        max_attempts: int = 3,
        backoff_seconds: float = 0.5,
        max_retry_after: float = 30.0,
        max_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._owns_client = client is None
        self._client = client or outbound_client(policy or OutboundPolicy(), timeout=timeout)
        self._auth = auth
        # Answers seen with one set of credentials are never served to another.
        self._cache_scope = hashlib.sha256(auth_key.encode()).hexdigest()[:16]
        self.cache: AnswerCache = cache if cache is not None else MemoryCache()
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_retry_after = max_retry_after
        self.max_bytes = max_bytes
        self.requests_made = 0  # every request sent: retries and 304 answers included
        self.not_modified = 0  # answers that were 304, served from the cache

    @abstractmethod
    async def lookup(self, name: str) -> PackageInfo:
        """Every release of ``name``; raises :class:`RegistryError`."""

    async def vulnerabilities(self, name: str, version: str) -> list[dict[str, Any]]:
        """The advisories the registry lists for one release, OSV-shaped (PyPI's JSON API
        ``vulnerabilities``); none where the registry serves none. Raises
        :class:`RegistryError`."""
        return []

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Registry:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _get(
        self, name: str, url: str, *, accept: str, parse: Callable[[httpx.Response, bytes], T]
    ) -> T:
        """GET ``url`` and ``parse`` the answer; a 304 returns the cached parse instead."""
        key = f"{self.ecosystem} {self._cache_scope} {url}"
        cached = await self.cache.get(key)
        headers = {"Accept": accept}
        if cached is not None and cached.etag:
            headers["If-None-Match"] = cached.etag
        if cached is not None and cached.last_modified:
            headers["If-Modified-Since"] = cached.last_modified
        reason, status = "no request was made", None
        retry_after: float | None = None
        attempt = 0
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                await asyncio.sleep(self._delay(attempt - 1, retry_after))
            retry_after = None
            self.requests_made += 1
            try:
                async with self._client.stream(
                    "GET", url, headers=headers, auth=self._auth, follow_redirects=True
                ) as response:
                    status = response.status_code
                    if status == 304 and cached is not None:
                        self.not_modified += 1
                        return cached.value  # type: ignore[no-any-return]
                    if status in GONE_STATUSES:
                        raise RegistryError(self.ecosystem, name, "not found", status)
                    if status in RETRYABLE_STATUSES:
                        reason = f"the registry answered {status}"
                        retry_after = _retry_after(response)
                        if retry_after is not None and retry_after > self.max_retry_after:
                            reason += f" and asked to wait {retry_after:.0f} s"
                            break
                        continue
                    if status != 200:
                        raise RegistryError(
                            self.ecosystem, name, f"the registry answered {status}", status
                        )
                    body = await read_limited(response, self.max_bytes + 1)
            except httpx.TimeoutException:
                reason, status = f"no answer within {self._timeout_text()}", None
                continue
            except httpx.TransportError as exc:
                reason, status = f"could not reach the registry ({_describe(exc)})", None
                continue
            except InvalidInputError as exc:  # the outbound guard's refusal: never retried
                raise RegistryError(self.ecosystem, name, exc.message) from exc
            if len(body) > self.max_bytes:
                raise RegistryError(
                    self.ecosystem, name, f"the answer is larger than {self.max_bytes} bytes"
                )
            try:
                value = parse(response, body)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                raise RegistryError(
                    self.ecosystem, name, f"the registry's answer could not be read ({exc})"
                ) from exc
            etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
            if etag or modified:
                await self.cache.set(key, CachedAnswer(etag, modified, value))
            return value
        attempts = "1 attempt" if attempt == 1 else f"{attempt} attempts"
        raise RegistryError(self.ecosystem, name, f"{reason} ({attempts})", status)

    def _delay(self, retry: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter; a registry's ``Retry-After`` wins when it is longer."""
        ceiling = self.backoff_seconds * 2 ** (retry - 1)
        delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311  (jitter, not secrecy)
        return max(delay, retry_after or 0.0)

    def _timeout_text(self) -> str:
        seconds = self._client.timeout.read or self._client.timeout.connect
        return f"{seconds:g} s" if seconds is not None else "the time limit"


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the registry asked us to wait (delta-seconds or an HTTP date), if it did."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _describe(exc: httpx.TransportError) -> str:
    return str(exc) or type(exc).__name__


async def lookup_many(
    registry: Registry, names: Sequence[str], *, concurrency: int = 16
) -> dict[str, PackageInfo | RegistryError]:
    """Looks up every name at once (at most ``concurrency`` in flight); one failure stays
    that name's :class:`RegistryError` and never fails the others."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    limit = asyncio.Semaphore(concurrency)

    async def one(name: str) -> PackageInfo | RegistryError:
        async with limit:
            try:
                return await registry.lookup(name)
            except RegistryError as exc:
                return exc

    unique = list(dict.fromkeys(names))
    results: list[Any] = await asyncio.gather(*(one(name) for name in unique))
    return dict(zip(unique, results, strict=True))


def parse_timestamp(value: object) -> datetime | None:
    """An ISO 8601 timestamp as an aware UTC datetime; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
