"""Build logs: read a page of one step's lines, or follow the whole build live.

Runners send lines in batches (``ci_log_chunks``, numbered by ``seq`` across the build). A
follower gets every batch after the last one it saw, as one SSE event whose id is the batch's
``seq``, so a reconnect with ``Last-Event-ID`` resumes exactly; it waits on the build's wake-up
topic in between, and the stream ends with an ``end`` event once the build has ended and every
batch has been sent. Browsers cannot put a bearer token on an ``EventSource``, so the stream
takes a short-lived, build-scoped token in its query instead (:mod:`forgeyard.ci.access`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.ci.builds import build_topic
from forgeyard.jobs.notify import wakeups
from forgeyard.kernel.db import Database
from forgeyard.kernel.errors import InvalidInputError
from forgeyard.kernel.sse import Update
from forgeyard.models.ci import FINAL_BUILD_STATUSES, Build, BuildLogChunk, BuildStep

CHUNKS_PER_READ = 200
POLL_SECONDS = 2.0


async def read_lines(
    *, session: AsyncSession, build: Build, step: int, offset: int, limit: int
) -> tuple[BuildStep, list[tuple[int, str]]]:
    """Lines ``offset`` … ``offset + limit - 1`` of step ``step``, with their numbers."""
    found = await session.scalar(
        select(BuildStep).where(BuildStep.build_id == build.id, BuildStep.position == step)
    )
    if found is None:
        raise InvalidInputError(f"build {build.id} has no step {step}", details={"field": "step"})
    chunks = await session.scalars(
        select(BuildLogChunk)
        .where(
            BuildLogChunk.build_id == build.id,
            BuildLogChunk.step == step,
            BuildLogChunk.first_line + BuildLogChunk.line_count > offset,
            BuildLogChunk.first_line < offset + limit,
        )
        .order_by(BuildLogChunk.first_line)
    )
    lines = []
    for chunk in chunks:
        for number, text in enumerate(chunk.text.split("\n"), start=chunk.first_line):
            if offset <= number < offset + limit:
                lines.append((number, text))
    return found, lines


async def follow(database: Database, *, build_id: str, after: int) -> AsyncGenerator[Update, None]:
    """Every batch of the build after ``after``, as it arrives, then ``end``."""
    with wakeups.watch(build_topic(build_id)) as woken:
        while True:
            woken.clear()
            async with database.transaction(read_only=True) as session:
                status = await session.scalar(select(Build.status).where(Build.id == build_id))
                chunks = list(
                    await session.scalars(
                        select(BuildLogChunk)
                        .where(BuildLogChunk.build_id == build_id, BuildLogChunk.seq > after)
                        .order_by(BuildLogChunk.seq)
                        .limit(CHUNKS_PER_READ)
                    )
                )
            for chunk in chunks:
                after = chunk.seq
                yield Update(version=chunk.seq, data=_chunk_data(chunk), event="log")
            if chunks:
                continue
            if status is None or status in FINAL_BUILD_STATUSES:
                yield Update(version=after, data={"status": status}, event="end")
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), POLL_SECONDS)


def _chunk_data(chunk: BuildLogChunk) -> dict[str, Any]:
    return {"step": chunk.step, "first_line": chunk.first_line, "lines": chunk.text.split("\n")}
