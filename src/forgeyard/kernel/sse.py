"""One way to stream progress to a client: Server-Sent Events (via sse-starlette).

A producer yields :class:`Update` values, each a numbered snapshot of what the client
follows. The stream numbers events with those versions, so a client that reconnects with
``Last-Event-ID`` gets only what changed since; it sends a keep-alive comment while nothing
happens, and ends once the producer says the work is over.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request
from sse_starlette import EventSourceResponse, ServerSentEvent

KEEPALIVE_SECONDS = 15.0


@dataclass(frozen=True)
class Update:
    version: int
    data: dict[str, Any]
    event: str = "progress"


def last_event_id(request: Request) -> int:
    """The version the client saw last, from the ``Last-Event-ID`` header; 0 if none."""
    value = request.headers.get("last-event-id", "").strip()
    return int(value) if value.isdigit() and len(value) < 19 else 0


def stream(
    updates: AsyncGenerator[Update, None], *, keepalive_seconds: float = KEEPALIVE_SECONDS
) -> EventSourceResponse:
    async def events() -> AsyncIterator[ServerSentEvent]:
        # Closed explicitly, so a client leaving mid-send releases what the producer holds.
        async with contextlib.aclosing(updates):
            async for update in updates:
                yield ServerSentEvent(
                    data=orjson.dumps(update.data).decode(),
                    event=update.event,
                    id=str(update.version),
                )

    return EventSourceResponse(
        events(),
        ping=keepalive_seconds,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
