"""Per-request state that layers below the API need: work to do when the request ends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

ON_FINISH_STATE = "on_finish"
Finisher = Callable[[], Awaitable[Any]]


def on_finish(request: Request, finisher: Finisher) -> None:
    """Run ``finisher`` after the response has been sent, whatever the outcome."""
    finishers: list[Finisher] = request.scope.setdefault("state", {}).setdefault(
        ON_FINISH_STATE, []
    )
    finishers.append(finisher)
