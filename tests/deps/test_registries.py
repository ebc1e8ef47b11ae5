"""Registry lookups against real registries on loopback (tests/deps/conftest.py).

pypiserver sends no ETag, no dates and no PEP 691 JSON; verdaccio sends ETags and ``time``.
The richer PyPI answers (PEP 691 + PEP 700, data-yanked, the JSON API) are checked on their
parsers with documents of the published formats.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from packaging.version import Version

from forgeyard.deps.registries import NpmRegistry, PyPIRegistry, RegistryError, lookup_many
from forgeyard.deps.registries.pypi import (
    SIMPLE_JSON,
    _parse_json_api,
    _parse_simple,
    _releases,
)
from forgeyard.kernel.http import BlockedDestinationError, OutboundPolicy
from tests.registries.harness import Answer, Verdaccio, scripted_server

LOOPBACK = OutboundPolicy(allowed_hosts=["127.0.0.1"])
FAST: dict[str, Any] = {"policy": LOOPBACK, "backoff_seconds": 0.01}


@pytest.fixture
async def pypi(pypi_index: str) -> AsyncIterator[PyPIRegistry]:
    async with PyPIRegistry(pypi_index, **FAST) as registry:
        yield registry


@pytest.fixture
async def npm(npm_registry: Verdaccio) -> AsyncIterator[NpmRegistry]:
    async with NpmRegistry(npm_registry.url, token=npm_registry.token, **FAST) as registry:
        yield registry


async def test_pypi_lists_every_version_without_dates(pypi: PyPIRegistry) -> None:
    info = await pypi.lookup("FY_Alpha")  # any spelling of the name: PEP 503 normalizes it
    assert info.ecosystem == "pypi"
    assert info.versions == ["1.0.0", "1.1.0", "2.0.0", "2.1.0rc1"]
    assert [Version(v).is_prerelease for v in info.versions] == [False, False, False, True]
    assert all(r.published_at is None and not r.yanked for r in info.releases)


async def test_pypi_without_etag_or_json_api_asks_again_in_one_request(pypi: PyPIRegistry) -> None:
    """pypiserver sends no ETag and has no /pypi/<name>/json: after the first lookup finds
    that out (simple page + a 404 from the JSON API), each lookup is one full request."""
    await pypi.lookup("fy-alpha")
    assert (pypi.requests_made, pypi.json_api_missing) == (2, True)
    again = await pypi.lookup("fy-alpha")
    assert (pypi.requests_made, pypi.not_modified) == (3, 0)
    assert again.versions[-1] == "2.1.0rc1"


async def test_npm_versions_dates_scopes_and_deprecations(npm: NpmRegistry) -> None:
    left, right = await npm.lookup("fy-left"), await npm.lookup("@fy/right")
    assert left.versions == ["1.0.0", "1.2.0", "2.0.0", "3.0.0-beta.1"]
    dates = [r.published_at for r in left.releases]
    assert all(d is not None and d.tzinfo is UTC for d in dates)
    assert dates == sorted(dates)  # type: ignore[type-var]
    assert datetime.now(UTC) - dates[0] < timedelta(hours=1)  # type: ignore[operator]
    assert left.releases[0].deprecated == "fy-left 1.0 is unsupported, use 2.x"
    assert [r.deprecated for r in left.releases[1:]] == [None, None, None]
    assert (right.name, right.versions) == ("@fy/right", ["0.1.0"])
    assert npm.packument_url("@fy/right").endswith("/@fy%2Fright")


async def test_npm_second_lookup_is_a_304_from_the_cache(npm: NpmRegistry) -> None:
    first = await npm.lookup("fy-left")
    second = await npm.lookup("fy-left")
    assert second == first
    assert (npm.requests_made, npm.not_modified) == (2, 1)


async def test_unknown_package_is_not_found_and_not_retried(
    pypi: PyPIRegistry, npm: NpmRegistry
) -> None:
    for registry, name in ((pypi, "fy-nowhere"), (npm, "fy-nowhere")):
        with pytest.raises(RegistryError) as caught:
            await registry.lookup(name)
        assert (caught.value.reason, caught.value.status) == ("not found", 404)
        assert str(caught.value) == f"{registry.ecosystem} package fy-nowhere: not found"
        assert registry.requests_made == 1


async def test_a_failing_package_does_not_fail_the_others(npm_registry: Verdaccio) -> None:
    scripts = {"/fy-broken": [Answer(500)], "/fy-stuck": [Answer(200, delay=1.0)]}
    with scripted_server(npm_registry.url, scripts) as server:
        async with NpmRegistry(server.url, timeout=0.3, max_attempts=3, **FAST) as registry:
            names = ["fy-left", "fy-broken", "@fy/right", "fy-stuck"]
            results = await lookup_many(registry, names, concurrency=2)
    assert list(results) == names
    left, broken, right, stuck = results.values()
    assert not isinstance(left, RegistryError)
    assert left.versions[0] == "1.0.0"
    assert not isinstance(right, RegistryError)
    assert right.versions == ["0.1.0"]
    assert isinstance(broken, RegistryError)
    assert broken.status == 500
    assert broken.reason == "the registry answered 500 (3 attempts)"
    assert isinstance(stuck, RegistryError)
    assert stuck.status is None
    assert stuck.reason == "no answer within 0.3 s (3 attempts)"
    assert server.hits["/fy-broken"] == server.hits["/fy-stuck"] == 3
    assert registry.requests_made == 1 + 3 + 1 + 3


async def test_retry_after_is_honoured_and_a_long_one_gives_up(npm_registry: Verdaccio) -> None:
    busy = Answer(429, headers=(("Retry-After", "1"),))
    closed = Answer(503, headers=(("Retry-After", "3600"),))
    scripts = {"/fy-left": [busy, Answer(None)], "/@fy%2Fright": [closed]}
    with scripted_server(npm_registry.url, scripts) as server:
        async with NpmRegistry(server.url, **FAST) as registry:
            started = time.monotonic()
            info = await registry.lookup("fy-left")
            waited = time.monotonic() - started
            with pytest.raises(RegistryError) as caught:
                await registry.lookup("@fy/right")
    assert info.versions[0] == "1.0.0"
    assert waited >= 1.0
    assert caught.value.reason == "the registry answered 503 and asked to wait 3600 s (1 attempt)"
    assert server.hits["/@fy%2Fright"] == 1


async def test_the_outbound_guard_refuses_private_addresses() -> None:
    async with PyPIRegistry("http://10.1.2.3/simple/", policy=OutboundPolicy()) as registry:
        with pytest.raises(RegistryError) as caught:
            await registry.lookup("fy-alpha")
    assert isinstance(caught.value.__cause__, BlockedDestinationError)
    assert "10.1.2.3 is a private address" in caught.value.reason
    assert registry.requests_made == 1  # refused before connecting, and not retried


async def test_invalid_names_are_refused_without_a_request(
    pypi: PyPIRegistry, npm: NpmRegistry
) -> None:
    for registry, name in ((pypi, "../etc"), (npm, "a/b/c"), (npm, "@x%2f..")):
        with pytest.raises(RegistryError, match="not a valid package name"):
            await registry.lookup(name)
    assert pypi.requests_made == npm.requests_made == 0


def _response(content_type: str) -> httpx.Response:
    return httpx.Response(200, headers={"Content-Type": content_type})


def test_pep_691_json_with_upload_times_and_yanks() -> None:
    document = {
        "meta": {"api-version": "1.1"},
        "name": "fy-alpha",
        "files": [
            {"filename": "fy_alpha-1.0.0.tar.gz", "upload-time": "2024-01-02T03:04:05.123Z"},
            {"filename": "fy_alpha-1.0.0-py3-none-any.whl", "upload-time": "2024-01-02T03:05Z"},
            {"filename": "fy-alpha-2.0.tar.gz", "yanked": "broken", "upload-time": None},
            {"filename": "fy_alpha-3.0.0-py3-none-any.whl", "yanked": False},
            {"filename": "fy_alpha-1.0.0.win32.exe"},
        ],
    }
    files = _parse_simple(_response(SIMPLE_JSON), json.dumps(document).encode())
    one, two, three = _releases(files)
    assert one.version == "1.0.0"
    assert not one.yanked
    assert one.published_at == datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
    assert (two.version, two.yanked, two.published_at) == ("2.0", True, None)
    assert (three.version, three.yanked) == ("3.0.0", False)


def test_pep_503_html_with_data_yanked() -> None:
    html = """<html><body>
      <a href="../../packages/fy_alpha-1.0.0-py3-none-any.whl#sha256=00">x</a>
      <a href="/p/fy_alpha-1.0.0.tar.gz" data-yanked="">fy_alpha-1.0.0.tar.gz</a>
      <a href="/p/fy_alpha-1.1.0.tar.gz" data-yanked="bad build">fy_alpha-1.1.0.tar.gz</a>
      <a href="/p/fy_alpha-1.2.0.post1-py3-none-any.whl">a</a><a>no href</a></body></html>"""
    releases = _releases(_parse_simple(_response("text/html"), html.encode()))
    assert [(r.version, r.yanked) for r in releases] == [
        ("1.0.0", False),  # one of its files is still there
        ("1.1.0", True),
        ("1.2.0.post1", False),
    ]


def test_json_api_upload_times() -> None:
    document = {
        "releases": {
            "1.0": [{"upload_time_iso_8601": "2023-05-06T07:08:09.000000Z", "yanked": True}],
            "not a version": [{}],
            "2.0": [],
        }
    }
    files = _parse_json_api(_response("application/json"), json.dumps(document).encode())
    assert [(f.version, f.yanked, f.uploaded) for f in files] == [
        ("1.0", True, datetime(2023, 5, 6, 7, 8, 9, tzinfo=UTC))
    ]
