"""Where build artifacts live: the interface every store implements, and its errors.

Keys are relative posix paths such as ``org/3/builds/42/report.xml``; every store validates
them the same way before any I/O (:func:`validate_key`), so a key that one store accepts
another accepts too, and a hostile name fails identically everywhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from forgeyard.kernel.errors import ForgeyardError, InvalidInputError, NotFoundError

MAX_KEY_BYTES = 1024  # S3's limit on an object key, in UTF-8 bytes
MAX_SEGMENT_BYTES = 255  # a file name on every common filesystem
CHUNK_SIZE = 256 * 1024  # what open() yields at a time
PARTIAL_PREFIX = ".partial-"  # LocalStore's temporary names; no key segment starts so


class InvalidKey(InvalidInputError):  # noqa: N818 - the name callers catch, like PipelineInvalid
    """An artifact key that is not a plain relative path inside the store."""

    code = "invalid_artifact_key"


class ArtifactNotFound(NotFoundError):  # noqa: N818 - named like InvalidKey
    """No artifact is stored under the key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no artifact is stored under {key!r}", details={"key": key})
        self.key = key


class StorageError(ForgeyardError):
    """The store failed: unreachable, refused, misconfigured. ``retryable`` says whether the
    same call may succeed later (a timeout, a 5xx) or needs a person (credentials, bucket).
    Messages never carry credentials."""

    status_code = 502
    code = "storage_error"

    def __init__(
        self, message: str, retryable: bool = False, *, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retryable = retryable  # type: ignore[misc]  # per instance, unlike other errors


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str  # hex


def validate_key(key: object) -> str:
    """``key`` if it is a relative posix path with plain segments; else :class:`InvalidKey`."""
    if not isinstance(key, str):
        raise InvalidKey("an artifact key must be a string")
    if not key:
        raise InvalidKey("an artifact key must not be empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidKey(f"an artifact key must be at most {MAX_KEY_BYTES} bytes")
    if "\\" in key:
        raise InvalidKey("an artifact key must not contain a backslash", details={"key": key})
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise InvalidKey("an artifact key must not contain control characters")
    if key.startswith("/"):
        raise InvalidKey("an artifact key must be a relative path", details={"key": key})
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidKey(
                "an artifact key must not have empty, '.' or '..' segments", details={"key": key}
            )
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise InvalidKey(
                f"each part of an artifact key must be at most {MAX_SEGMENT_BYTES} bytes"
            )
        if segment.startswith(PARTIAL_PREFIX):
            raise InvalidKey(f"an artifact key segment must not start with {PARTIAL_PREFIX!r}")
    return key


class ArtifactStream(AsyncIterator[bytes]):
    """The chunks of one stored artifact, read in a worker thread so the loop never blocks.

    Closes itself when exhausted or on error; a caller that stops early calls :meth:`aclose`
    (or uses ``async with``). ``size`` is the artifact's length, for ``Content-Length``.
    """

    def __init__(
        self, read: Callable[[], bytes], close: Callable[[], None], size: int | None
    ) -> None:
        self._read = read
        self._close = close
        self._lock = threading.Lock()  # a close never races a read still running in a thread
        self._closed = False
        self.size = size

    def _read_locked(self) -> bytes:
        with self._lock:
            return b"" if self._closed else self._read()

    def _close_locked(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._close()

    def __aiter__(self) -> ArtifactStream:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await asyncio.to_thread(self._read_locked)
        except BaseException:
            await self.aclose()
            raise
        if not chunk:
            await self.aclose()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        await asyncio.to_thread(self._close_locked)

    async def __aenter__(self) -> ArtifactStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class ArtifactStore(ABC):
    """Stores artifacts by key. Every method validates the key before any I/O."""

    @abstractmethod
    async def put(self, key: str, source: Path) -> StoredObject:
        """Store the file ``source`` under ``key`` (replacing what was there)."""

    @abstractmethod
    async def open(self, key: str) -> ArtifactStream:
        """The artifact's bytes in chunks; :class:`ArtifactNotFound` at once if missing."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the artifact; nothing happens if there is none."""

    @abstractmethod
    async def exists(self, key: str) -> bool: ...

    @abstractmethod
    async def check(self) -> None:
        """Raise :class:`StorageError` unless the store is reachable and writable."""


def hash_file(source: Path) -> tuple[int, str]:
    """Size and sha256 of a file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def source_error(source: Path, exc: OSError) -> StorageError:
    return StorageError(f"cannot read the file to store ({exc.strerror or exc})")
