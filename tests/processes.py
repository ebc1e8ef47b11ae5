"""What the test harnesses that run real servers (Node tools, registries) share: installing
a Node tool's dependencies once, a free loopback port, running a server until it answers,
and stopping only what they started."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx


def node_available() -> bool:
    """Whether a Node tool can run here at all (for ``pytest.mark.skipif``)."""
    return shutil.which("node") is not None and shutil.which("npm") is not None


def npm_ci_once(folder: Path) -> None:
    """``npm ci`` in ``folder`` on a fresh checkout, so ``make test`` needs no extra step;
    kept afterwards. npm writes node_modules/.package-lock.json last, so its presence means a
    finished install."""
    if (folder / "node_modules" / ".package-lock.json").exists():
        return
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"npm ci failed in {folder}:\n{result.stdout}{result.stderr}")


def free_port() -> int:
    """A port nothing listens on now; the server binds it a moment later."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ends the server a harness started, and only it: by its own process."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running(
    command: list[str],
    log_path: Path,
    ready_url: str,
    *,
    timeout: float,
    cwd: Path | None = None,
    headers: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Runs ``command`` (its output in ``log_path``) until the block ends; yields once
    ``ready_url`` answers 200, or fails with the log if it exits or ``timeout`` passes."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_ready(process, log_path, ready_url, timeout, headers or {})
        yield process
    finally:
        stop(process)


def _wait_until_ready(
    process: subprocess.Popen[bytes],
    log_path: Path,
    url: str,
    timeout: float,
    headers: Mapping[str, str],
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            answer = httpx.get(url, headers=dict(headers), timeout=2, trust_env=False)
            if answer.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(
        f"{log_path.stem} did not start (exit code {process.poll()}):\n"
        + log_path.read_text(errors="replace")
    )
