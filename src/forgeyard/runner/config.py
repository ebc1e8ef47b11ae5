"""The runner's options, its work directory's lock, and what it keeps between starts.

``<work dir>/runner.json`` holds the runner's id, its token, the key builds are signed with and
the server it registered with; mode 0600, since the token is the runner's whole identity.
``<work dir>/.lock`` is held (``flock``) while a runner uses the directory: two runners on one
directory would share a token and remove each other's builds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_FILE = "runner.json"
LOCK_FILE = ".lock"
DEFAULT_GRACE_SECONDS = 10.0
DEFAULT_CLAIM_WAIT_SECONDS = 30.0


class RunnerConfigError(Exception):
    """A start the runner refuses; the message tells the operator what to do."""


class WorkDirBusy(RunnerConfigError):  # noqa: N818 - reads as the condition it names
    """Another runner holds the work directory."""


@dataclass(frozen=True)
class RunnerOptions:
    server: str  # the server's base URL, without the API prefix
    work_dir: Path
    registration_token: str | None = None  # needed only until the first registration
    name: str = field(default_factory=socket.gethostname)
    labels: tuple[str, ...] = ()
    public_key: str | None = None  # pins the signing key, whatever the server says
    grace_seconds: float = DEFAULT_GRACE_SECONDS  # between SIGTERM and SIGKILL of a step
    claim_wait_seconds: float = DEFAULT_CLAIM_WAIT_SECONDS


@dataclass(frozen=True)
class RunnerState:
    id: str
    token: str
    pipeline_public_key: str
    server: str


def same_server(one: str, other: str) -> bool:
    return one.rstrip("/") == other.rstrip("/")


def load_state(work_dir: Path) -> RunnerState | None:
    """The saved registration, or None before the first one."""
    path = work_dir / STATE_FILE
    try:
        raw = json.loads(path.read_text())
        return RunnerState(
            id=str(raw["id"]),
            token=str(raw["token"]),
            pipeline_public_key=str(raw["pipeline_public_key"]),
            server=str(raw["server"]),
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise RunnerConfigError(
            f"{path} is not a runner state file ({exc!r}); remove it and register again"
        ) from None


def save_state(work_dir: Path, state: RunnerState) -> None:
    """Written under another name first and renamed, so a crash leaves the old file or the
    new one; created 0600 so the token is never readable by others, not even for a moment."""
    path = work_dir / STATE_FILE
    partial = path.with_name(f".{STATE_FILE}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        os.fchmod(descriptor, 0o600)  # a leftover partial file may have had another mode
        json.dump(asdict(state), file, indent=2)
        file.write("\n")
    os.replace(partial, path)


@contextlib.contextmanager
def work_dir_lock(work_dir: Path) -> Iterator[None]:
    """Hold ``work_dir`` (created 0700) for this process; :class:`WorkDirBusy` if another
    runner holds it. The lock goes with the process, however it ends."""
    work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(work_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkDirBusy(
                f"another runner is using {work_dir}; give this one its own --work-dir"
            ) from None
        yield
    finally:
        os.close(descriptor)
