"""What the CI benchmark drives: a ``forgeyard serve`` subprocess on one database, set up over
the HTTP API the way a user sets it up (owner sign-in, a project, a repository registered from a
local git folder and fetched by the job workers, a runner registration token).

The repository holds ``.forgeyard.yml`` and ``emit_lines.py``, the step's program: it prints
``total`` lines in bursts of ``burst``, the first line of each burst carrying the wall-clock time
it was written (``<epoch seconds> <line number>``), the others only their number; ``rate`` > 0
spaces the bursts so that ``rate`` lines a second come out, 0 prints flat out.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    HOST,
    OWNER_EMAIL,
    OWNER_PASSWORD,
    UNLIMITED_PLANS,
    Server,
    free_port,
    stop,
    wait_ready,
)
from bench.model import BenchError

API = "/api/v1"
LINES = 200_000
BURST = 500  # lines per write of the step; one timestamp each
PACED_RATE = 50_000  # lines a second of the paced step: the throughput goal
FETCH_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 30.0

EMIT_LINES = """\
import sys
import time

total, rate, burst = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
start = time.time()
for first in range(0, total, burst):
    if rate:
        delay = start + first / rate - time.time()
        if delay > 0:
            time.sleep(delay)
    rest = "".join(f"{n}\\n" for n in range(first + 1, min(first + burst, total)))
    sys.stdout.write(f"{time.time():.6f} {first}\\n{rest}")
    sys.stdout.flush()
"""
PIPELINE = f"""\
triggers:
  manual: true
steps:
  - name: flat-out
    commands: ["python3 emit_lines.py {LINES} 0 {BURST}"]
  - name: paced
    commands: ["python3 emit_lines.py {LINES} {PACED_RATE} {BURST}"]
"""
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@forgeyard.example",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@forgeyard.example",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def write_repository(path: Path) -> None:
    """A git folder with the pipeline and the step's program, one commit on ``main``."""
    path.mkdir(parents=True)
    (path / ".forgeyard.yml").write_text(PIPELINE)
    (path / "emit_lines.py").write_text(EMIT_LINES)
    env = {**os.environ, **GIT_ENV}
    for argv in (
        ["init", "--quiet", "--initial-branch", "main"],
        ["add", "--all"],
        ["commit", "--quiet", "-m", "bench"],
    ):
        subprocess.run(["git", *argv], cwd=path, env=env, check=True, capture_output=True)


@dataclass
class Instance:
    """One running server, set up: who signs in, what to build, how runners register."""

    label: str  # "pg" or "sqlite"
    server: Server
    user_headers: dict[str, str]
    project_id: str
    repository_id: str
    registration_token: str
    repository: Path

    def url(self, path: str) -> str:
        return self.server.url(f"{API}{path}")


def _env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FORGEYARD_")}
    env |= {
        "FORGEYARD_DATA_DIR": str(data_dir),
        "FORGEYARD_LOG_FORMAT": "json",
        "FORGEYARD_AUTH__PLANS": UNLIMITED_PLANS,
        "FORGEYARD_AUTH__COOKIE_SECURE": "false",
        # The repository is a local folder, as in the tests; an operator allows it the same way.
        "FORGEYARD_ANALYSIS__ALLOW_LOCAL_CLONES": "true",
    }
    if database_url is not None:
        env["FORGEYARD_DATABASE_URL"] = database_url
    return env


@contextmanager
def instance(label: str, workdir: Path, database_url: str | None) -> Iterator[Instance]:
    """``forgeyard serve`` (API and two job workers) migrated and set up; stopped on exit."""
    root = workdir / label
    root.mkdir(parents=True)
    env = _env(root / "data", database_url)
    command = [sys.executable, "-m", "forgeyard"]
    owner = ["--email", OWNER_EMAIL, "--name", "Bench", "--organization", "Bench"]
    for argv in (["db", "upgrade"], ["admin", "create-owner", *owner]):
        done = subprocess.run(
            [*command, *argv],
            cwd=root,
            env=env | {"FORGEYARD_OWNER_PASSWORD": OWNER_PASSWORD},
            capture_output=True,
        )
        if done.returncode:
            tail = done.stderr.decode(errors="replace")[-2000:]
            raise BenchError(f"forgeyard {' '.join(argv[:2])} failed on {label}:\n{tail}")
    port = free_port()
    log_path = root / "server.log"
    with ExitStack() as stack:
        log = stack.enter_context(log_path.open("wb"))
        process = subprocess.Popen(
            [*command, "serve", "--listen", f"{HOST}:{port}"],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = Server(f"forgeyard {label}", process, port, log_path)
        stack.callback(stop, server)
        wait_ready(server, "/readyz")
        repository = root / "upstream"
        write_repository(repository)
        yield asyncio.run(_set_up(label, server, repository))


async def _set_up(label: str, server: Server, repository: Path) -> Instance:
    async with httpx.AsyncClient(base_url=server.url(API), timeout=30) as client:
        tokens = await _call(
            client, "POST", "/auth/login", {"email": OWNER_EMAIL, "password": OWNER_PASSWORD}
        )
        client.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        project = await _call(client, "POST", "/projects", {"name": "Bench"})
        repo = await _call(
            client,
            "POST",
            "/repos",
            {"clone_url": repository.as_uri(), "name": "bench", "project_id": project["id"]},
        )
        await _fetched(client, repo["id"], server)
        await _settled(client)
        registration = await _call(
            client, "POST", "/runners/registration-tokens", {"description": "bench", "labels": []}
        )
        return Instance(
            label=label,
            server=server,
            user_headers={"Authorization": client.headers["Authorization"]},
            project_id=project["id"],
            repository_id=repo["id"],
            registration_token=registration["token"],
            repository=repository,
        )


async def _call(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await client.request(method, path, json=body)
    if response.status_code >= 300:
        raise BenchError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
    answer: dict[str, Any] = response.json()
    return answer


async def _fetched(client: httpx.AsyncClient, repo_id: str, server: Server) -> None:
    """Until the job workers have mirrored the repository."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FETCH_TIMEOUT_S
    while loop.time() < deadline:
        repo = await _call(client, "GET", f"/repos/{repo_id}")
        if repo["status"] == "active":
            return
        if repo["status"] == "error":
            raise BenchError(f"the repository fetch failed: {repo['fetch_error']}")
        await asyncio.sleep(0.2)
    raise BenchError(
        f"the repository was not fetched within {FETCH_TIMEOUT_S:.0f} s; "
        f"log tail:\n{server.log_tail()}"
    )


async def _settled(client: httpx.AsyncClient) -> None:
    """Until the jobs registering started (analysis, dependency scan) have run, so they do
    not share the CPU with the measurements; gives up quietly after a while."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_TIMEOUT_S
    while loop.time() < deadline:
        pending = 0
        for status in ("queued", "running"):
            page = await _call(client, "GET", f"/jobs?status={status}&limit=1")
            pending += int(page["total"])
        if not pending:
            return
        await asyncio.sleep(0.3)
