"""Answers kept for conditional requests: the validators a registry sent, and what we made of it.

A registry that sends an ``ETag`` (or ``Last-Modified``) is asked next time with
``If-None-Match`` (``If-Modified-Since``); a ``304 Not Modified`` then reuses the parsed value
stored here, so an unchanged package costs one small answer and no parsing. The cache is
pluggable (:class:`AnswerCache`); :class:`MemoryCache` keeps the most recently used entries
of one process.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class CachedAnswer:
    etag: str | None
    last_modified: str | None
    value: Any  # the parsed answer, as the registry class that stored it made it


class AnswerCache(Protocol):
    """Where conditional-request answers live; keys are opaque strings made by the registry."""

    async def get(self, key: str) -> CachedAnswer | None: ...

    async def set(self, key: str, answer: CachedAnswer) -> None: ...


class MemoryCache:
    """The ``max_entries`` most recently used answers, in this process's memory."""

    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, CachedAnswer] = OrderedDict()

    async def get(self, key: str) -> CachedAnswer | None:
        answer = self._entries.get(key)
        if answer is not None:
            self._entries.move_to_end(key)
        return answer

    async def set(self, key: str, answer: CachedAnswer) -> None:
        self._entries[key] = answer
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
