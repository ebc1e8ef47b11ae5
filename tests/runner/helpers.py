"""What the runner's process tests share: waiting for a process to be gone."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path


def gone(pid: int) -> bool:
    """No such process, or only its zombie (a container's PID 1 may not reap orphans)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" in status.read_text()


async def wait_gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        await asyncio.sleep(0.05)
    return gone(pid)
