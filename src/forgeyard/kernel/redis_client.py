"""The optional Redis connection (shared rate limits, live-progress fan-out)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis


def connect_redis(url: str) -> Redis:
    """A client for ``url``; Redis is an optional extra, so the import happens only here."""
    try:
        from redis.asyncio import Redis
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "FORGEYARD_REDIS_URL is set but the redis extra is not installed: "
            "pip install 'forgeyard[redis]'"
        ) from exc
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
