"""The credential cache: expiry, bounded age, and one load for callers that miss together."""

from __future__ import annotations

import asyncio

import pytest

from forgeyard.auth.cache import TtlCache


async def test_callers_that_miss_together_share_one_load() -> None:
    cache: TtlCache[str] = TtlCache(ttl_seconds=60)
    loads = 0
    gate = asyncio.Event()

    async def load() -> str:
        nonlocal loads
        loads += 1
        await gate.wait()
        cache.put(("k",), "value")
        return "value"

    waiting = [asyncio.create_task(cache.get_or_load(("k",), load)) for _ in range(20)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiting) == ["value"] * 20
    assert loads == 1
    assert await cache.get_or_load(("k",), load) == "value"
    assert loads == 1


async def test_a_failed_load_fails_every_waiter_and_is_not_remembered() -> None:
    cache: TtlCache[str] = TtlCache(ttl_seconds=60)
    gate = asyncio.Event()

    async def failing() -> str:
        await gate.wait()
        raise PermissionError("revoked")

    waiting = [asyncio.create_task(cache.get_or_load(("k",), failing)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(result, PermissionError) for result in results)

    async def working() -> str:
        return "fresh"

    assert await cache.get_or_load(("k",), working) == "fresh"


def test_entries_expire_and_never_outlive_their_max_age(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("forgeyard.auth.cache.time.monotonic", lambda: now[0])
    cache: TtlCache[str] = TtlCache(ttl_seconds=5)
    cache.put(("a",), "a")
    cache.put(("b",), "b", max_age=1)
    now[0] += 2
    assert (cache.get(("a",)), cache.get(("b",))) == ("a", None)
    now[0] += 4
    assert cache.get(("a",)) is None


def test_a_zero_ttl_turns_caching_off() -> None:
    cache: TtlCache[str] = TtlCache(ttl_seconds=0)
    cache.put(("a",), "a")
    assert cache.get(("a",)) is None
