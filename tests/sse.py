"""Reading a Server-Sent Events body the way a browser's EventSource does."""

from __future__ import annotations

from typing import Any

import orjson


def parse_events(body: str) -> list[dict[str, Any]]:
    """Each event's fields (``id``, ``event``) and its ``data`` decoded; comments skipped."""
    events = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if fields:
            events.append({**fields, "data": orjson.loads(fields["data"])})
    return events
