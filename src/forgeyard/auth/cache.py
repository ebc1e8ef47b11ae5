"""A few seconds of memory of who a credential belongs to.

Without it every authenticated request pays a database round trip (0.5 to 1 ms on this kind
of machine, more on a busy PostgreSQL) just to learn the caller's role and plan. Changes made
through this process (roles, disabling, keys, plans) clear it at once; another replica sees
them within ``ttl_seconds``, which operators can set to 0 to turn caching off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class TtlCache(Generic[T]):
    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[tuple[str, ...], tuple[float, T]] = {}
        self._loading: dict[tuple[str, ...], asyncio.Future[T]] = {}

    def get(self, key: tuple[str, ...]) -> T | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        valid_until, value = entry
        if time.monotonic() >= valid_until:
            del self._entries[key]
            return None
        return value

    def put(self, key: tuple[str, ...], value: T, max_age: float | None = None) -> None:
        if self.ttl_seconds <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # rare, and cheaper than tracking recency on every hit
        age = self.ttl_seconds if max_age is None else min(self.ttl_seconds, max_age)
        self._entries[key] = (time.monotonic() + age, value)

    def clear(self) -> None:
        self._entries.clear()

    async def get_or_load(self, key: tuple[str, ...], load: Callable[[], Awaitable[T]]) -> T:
        """The cached value, or one load shared by every caller asking at the same moment.

        When an entry expires under load, dozens of requests miss together; without this
        they would all query the database at once (and on SQLite queue for it).
        """
        value = self.get(key)
        if value is not None:
            return value
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so a future nobody awaited logs nothing
            raise
        finally:
            del self._loading[key]
        future.set_result(value)
        return value
