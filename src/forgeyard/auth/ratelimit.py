"""Request-rate and concurrency limits, in memory or in Redis so replicas share them.

Rates use the ``limits`` library's sliding window counter: two counters per key, so memory
and Redis traffic stay constant however high a plan's limit (a moving window keeps one entry
per request). Concurrency (requests in flight per
organization) is a counter: a dict in one process, INCR/DECR in Redis across replicas.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter


@dataclass(frozen=True, slots=True)
class RateState:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # Unix seconds
    window: int  # seconds

    @property
    def retry_after(self) -> int:
        # Rounding up to whole seconds must not promise more than one window of waiting.
        return min(self.window, max(1, math.ceil(self.reset_at - time.time())))

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


class RateLimiter:
    # Concurrency counters expire on their own, so a crashed process cannot leak slots forever.
    _CONCURRENCY_TTL_SECONDS = 300

    def __init__(self, redis_url: str | None = None, namespace: str = "forgeyard") -> None:
        self.namespace = namespace
        self._redis_url = redis_url
        self._storage: Storage = (
            RedisStorage(f"async+{redis_url}", implementation="redispy", key_prefix=namespace)
            if redis_url
            else MemoryStorage()
        )
        self._windows = SlidingWindowCounterRateLimiter(self._storage)
        self._in_flight: dict[str, int] = {}
        self._redis = None
        if redis_url:
            from redis.asyncio import Redis

            self._redis = Redis.from_url(redis_url)

    async def hit(self, rate: str, *key: str) -> RateState:
        """Count one event against ``rate`` (``"60/minute"``) for ``key``."""
        item = parse(rate)
        allowed = await self._windows.hit(item, *key)
        stats = await self._windows.get_window_stats(item, *key)
        reset = math.ceil(stats.reset_time)
        return RateState(allowed, item.amount, stats.remaining, reset, item.get_expiry())

    async def exceeded(self, rate: str, *key: str) -> RateState:
        """The state of ``key`` under ``rate`` without counting anything."""
        item = parse(rate)
        stats = await self._windows.get_window_stats(item, *key)
        reset = math.ceil(stats.reset_time)
        allowed = stats.remaining > 0
        return RateState(allowed, item.amount, stats.remaining, reset, item.get_expiry())

    async def acquire(self, key: str, limit: int) -> bool:
        """Take one of ``limit`` concurrency slots for ``key``; False when none is free."""
        if self._redis is None:
            if self._in_flight.get(key, 0) >= limit:
                return False
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
            return True
        name = f"{self.namespace}:inflight:{key}"
        count = await self._redis.incr(name)
        await self._redis.expire(name, self._CONCURRENCY_TTL_SECONDS)
        if count > limit:
            await self._redis.decr(name)
            return False
        return True

    async def release(self, key: str) -> None:
        if self._redis is None:
            self._in_flight[key] = max(0, self._in_flight.get(key, 0) - 1)
            return
        await self._redis.decr(f"{self.namespace}:inflight:{key}")

    async def in_flight(self, key: str) -> int:
        """How many of ``key``'s slots are taken now."""
        if self._redis is None:
            return self._in_flight.get(key, 0)
        return int(await self._redis.get(f"{self.namespace}:inflight:{key}") or 0)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
