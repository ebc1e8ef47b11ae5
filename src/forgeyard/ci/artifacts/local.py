"""Artifacts as files under a root directory: the default store.

:class:`LocalStore` never leaves its root: it walks the key one directory at a time from an
open descriptor of the root, refusing symbolic links at every step (``O_NOFOLLOW``), so a link
planted inside the root (or swapped in during a request) cannot send a read or a write
elsewhere. Writes go to a temporary name in the final directory and are renamed into place,
so a reader sees either the old artifact or the whole new one, never half of it. The walk
uses ``dir_fd`` system calls: POSIX only (Linux, macOS), like the rest of the server.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from forgeyard.ci.artifacts.storage import (
    CHUNK_SIZE,
    PARTIAL_PREFIX,
    ArtifactNotFound,
    ArtifactStore,
    ArtifactStream,
    StorageError,
    StoredObject,
    source_error,
    validate_key,
)
from forgeyard.kernel.errors import ForgeyardError

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC


class LocalStore(ArtifactStore):
    """Artifacts as files under ``root`` (created on first write)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # -- the walk: one directory at a time, never through a link --------------------------

    def _open_root(self, create: bool) -> int:
        if create:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        return os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)

    def _walk(self, key: str, parts: list[str], *, create: bool) -> int:
        """A descriptor of the directory that holds the key's last segment."""
        fd = self._open_root(create)
        try:
            for part in parts:
                if create:
                    with suppress(FileExistsError):
                        os.mkdir(part, 0o700, dir_fd=fd)
                try:
                    inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    raise self._refusal(key, part, fd, exc) from None
                os.close(fd)
                fd = inner
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _refusal(self, key: str, part: str, dir_fd: int, exc: OSError) -> OSError | StorageError:
        """A link in the way becomes a refusal; anything else (missing, a file where a
        directory should be) stays an OSError for the caller to judge."""
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            return exc
        try:
            mode = os.stat(part, dir_fd=dir_fd, follow_symlinks=False).st_mode
        except OSError:
            return exc
        if not stat.S_ISLNK(mode):
            return exc
        return StorageError(
            f"artifact key {key!r}: {part!r} is a symbolic link; the store does not follow links",
            details={"key": key},
        )

    # -- the operations, run in a worker thread -------------------------------------------

    def _put(self, key: str, source: Path) -> StoredObject:
        *parents, name = key.split("/")
        try:
            src = source.open("rb")
        except OSError as exc:
            raise source_error(source, exc) from None
        with src:
            dir_fd = self._walk(key, parents, create=True)
            try:
                return self._write(key, name, src, dir_fd)
            finally:
                os.close(dir_fd)

    def _write(self, key: str, name: str, src: Any, dir_fd: int) -> StoredObject:
        temp = f"{PARTIAL_PREFIX}{secrets.token_hex(8)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(os.open(temp, flags, 0o600, dir_fd=dir_fd), "wb") as dst:
                while chunk := src.read(1024 * 1024):
                    digest.update(chunk)
                    size += len(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with suppress(OSError):
                os.unlink(temp, dir_fd=dir_fd)
            raise
        with suppress(OSError):  # the rename itself survives a crash
            os.fsync(dir_fd)
        return StoredObject(key=key, size=size, sha256=digest.hexdigest())

    def _open(self, key: str) -> ArtifactStream:
        *parents, name = key.split("/")
        try:
            dir_fd = self._walk(key, parents, create=False)
        except (FileNotFoundError, NotADirectoryError):
            raise ArtifactNotFound(key) from None
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | _CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError:
            raise ArtifactNotFound(key) from None
        except OSError as exc:
            raise self._refusal(key, name, dir_fd, exc) from None
        finally:
            os.close(dir_fd)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise ArtifactNotFound(key)
        file = os.fdopen(fd, "rb")
        return ArtifactStream(lambda: file.read(CHUNK_SIZE), file.close, info.st_size)

    def _lstat(self, key: str) -> os.stat_result | None:
        *parents, name = key.split("/")
        try:
            dir_fd = self._walk(key, parents, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        finally:
            os.close(dir_fd)

    def _delete(self, key: str) -> None:
        *parents, name = key.split("/")
        try:
            dir_fd = self._walk(key, parents, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            os.unlink(name, dir_fd=dir_fd)  # a link is removed itself, never its target
        except FileNotFoundError:
            return
        finally:
            os.close(dir_fd)

    async def _run(self, key: str, call: Callable[[], Any]) -> Any:
        try:
            return await asyncio.to_thread(call)
        except (ForgeyardError, asyncio.CancelledError):
            raise
        except OSError as exc:
            raise StorageError(
                f"artifact {key!r}: local storage failed ({exc.strerror or exc})",
                retryable=exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EAGAIN, errno.EIO),
                details={"key": key},
            ) from None

    async def put(self, key: str, source: Path) -> StoredObject:
        key = validate_key(key)
        result: StoredObject = await self._run(key, lambda: self._put(key, source))
        return result

    async def open(self, key: str) -> ArtifactStream:
        key = validate_key(key)
        stream: ArtifactStream = await self._run(key, lambda: self._open(key))
        return stream

    async def delete(self, key: str) -> None:
        key = validate_key(key)
        await self._run(key, lambda: self._delete(key))

    async def exists(self, key: str) -> bool:
        key = validate_key(key)
        info: os.stat_result | None = await self._run(key, lambda: self._lstat(key))
        return info is not None and stat.S_ISREG(info.st_mode)

    async def check(self) -> None:
        probe = f".forgeyard-probe-{secrets.token_hex(8)}"

        def write_and_remove() -> None:
            fd = self._open_root(create=True)
            try:
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC
                os.close(os.open(probe, flags, 0o600, dir_fd=fd))
                os.unlink(probe, dir_fd=fd)
            finally:
                os.close(fd)

        try:
            await asyncio.to_thread(write_and_remove)
        except OSError as exc:
            raise StorageError(
                f"the artifact directory {str(self.root)!r} is not writable ({exc.strerror or exc})"
            ) from None
