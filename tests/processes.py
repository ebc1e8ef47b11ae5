"""What the test harnesses that run real servers (Node tools, registries) share: installing
a Node tool's dependencies once, a free loopback port, and stopping only what they started."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path


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
