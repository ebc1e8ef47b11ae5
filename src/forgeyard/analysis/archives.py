"""Uploaded archives, extracted as if every one of them were hostile.

An upload session hands us a zip or a gzip-compressed tar. Before a byte lands on disk, each
entry's name must be a plain relative path (no ``..``, no absolute or drive path, no
backslash), each entry must be a regular file or a directory (no links, devices or fifos),
and no path may appear twice. While the data streams out we count the bytes actually
produced, never the sizes the archive declares, against the limits per entry, in total, and
of expansion (a zip bomb is a small archive that inflates to a huge one).

Extraction goes to a staging directory beside ``dest`` that is renamed into place only when
every entry passed, and removed otherwise: a refused archive leaves nothing behind.

Paths are kept as the archive names them, apart from ``.`` and empty components (``./src/a.py``
is ``src/a.py``); a single top-level folder is not stripped, because whether it is a wrapper
or the project's own first directory is not something the archive says.
"""

from __future__ import annotations

import gzip
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from forgeyard.kernel.errors import InvalidInputError

ArchiveFormat = Literal["zip", "tar.gz"]

_MiB = 1024 * 1024
_CHUNK_BYTES = _MiB
# Below this many bytes a high expansion is harmless (a small file of repeated lines
# compresses a thousand times); refusing it would refuse ordinary source trees.
_RATIO_GRACE_BYTES = _MiB
# What one tar entry's header may take with its long-name and pax records; real ones take a
# few hundred bytes, and tarfile holds these records in memory.
_TAR_HEADER_BYTES = _MiB
_DRIVE = re.compile(r"^[A-Za-z]:")
# Reading a damaged archive fails in the decompressor, the container parser or the file
# layer, each with its own exception type.
_READ_ERRORS = (
    zipfile.BadZipFile,
    tarfile.TarError,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    NotImplementedError,  # a zip compression method Python does not have
)


class ArchiveError(InvalidInputError):
    """The archive was refused; the message names the entry and what was wrong with it."""

    code = "invalid_archive"

    def __init__(self, message: str, *, entry: str | None = None) -> None:
        super().__init__(message, details={"entry": entry} if entry is not None else None)


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 20_000
    max_total_bytes: int = 500 * _MiB
    max_member_bytes: int = 50 * _MiB
    max_ratio: float = 100.0  # uncompressed / compressed, per entry (zip) and overall


def detect_format(first_bytes: bytes, filename: str | None = None) -> ArchiveFormat:
    """Which kind of archive begins with ``first_bytes`` (its name is only for the message)."""
    if first_bytes.startswith((b"PK\x03\x04", b"PK\x05\x06")):  # an entry, or an empty zip
        return "zip"
    if first_bytes.startswith(b"\x1f\x8b"):
        return "tar.gz"
    what = repr(filename) if filename else "the upload"
    hint = " (an uncompressed tar: gzip it)" if first_bytes[257:262] == b"ustar" else ""
    raise ArchiveError(f"{what} is not a zip or tar.gz archive{hint}")


def extract(archive: Path, dest: Path, limits: ArchiveLimits | None = None) -> list[str]:
    """Extract ``archive`` to ``dest`` (absent or an empty directory) and return the relative
    paths of the files written, in archive order; raise :class:`ArchiveError` with nothing
    written if any entry is refused."""
    limits = limits or ArchiveLimits()
    with archive.open("rb") as file:
        kind = detect_format(file.read(512), archive.name)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FileExistsError(f"{dest} exists and is not an empty directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        with archive.open("rb") as raw:
            if kind == "zip":
                tree = _Tree(staging, limits, consumed=archive.stat().st_size)
                _extract_zip(raw, tree)
            else:
                tree = _Tree(staging, limits, consumed=raw.tell)
                _extract_tar_gz(raw, tree)
        staging.chmod(0o755)
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return tree.files


class _Tree:
    """The staging directory and the bookkeeping every entry is checked against."""

    def __init__(
        self, root: Path, limits: ArchiveLimits, consumed: int | Callable[[], int]
    ) -> None:
        self.root = root
        self.limits = limits
        # Compressed bytes read so far: the whole file for a zip (its directory is at the
        # end), the position in the compressed stream for a tar.gz.
        self._consumed = consumed
        self.members = 0
        self.total_bytes = 0
        self.files: list[str] = []
        self._file_set: set[str] = set()
        self._dirs: set[str] = set()
        self._seen: set[str] = set()

    def admit(self, name: str) -> str:
        """The entry's relative path, once its name is safe and it is not a duplicate."""
        self.members += 1
        if self.members > self.limits.max_members:
            raise ArchiveError(f"the archive has more than {self.limits.max_members} entries")
        path = _relative_path(name)
        if path in self._seen:
            raise ArchiveError(f"entry {name!r} appears more than once", entry=name)
        self._seen.add(path)
        return path

    def directory(self, path: str, name: str) -> None:
        if path in self._file_set:
            raise ArchiveError(f"entry {name!r} is both a file and a directory", entry=name)
        self._make_dirs(path, name)

    def file(self, path: str, name: str, source: IO[bytes], compressed: int | None) -> None:
        """Write ``source`` to ``path``, counting what it really yields against the limits."""
        if not path:
            raise ArchiveError(f"entry {name!r} has no file name", entry=name)
        if path in self._dirs:
            raise ArchiveError(f"entry {name!r} is both a file and a directory", entry=name)
        parent, _, _ = path.rpartition("/")
        self._make_dirs(parent, name)
        written = 0
        try:
            # O_EXCL and O_NOFOLLOW: nothing existing is ever written through.
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            with open(os.open(self.root / path, flags, 0o644), "wb") as out:
                os.chmod(out.fileno(), 0o644)  # whatever the umask says
                while chunk := self._read(source, name):
                    written += len(chunk)
                    self.total_bytes += len(chunk)
                    self._check(name, written, compressed)
                    out.write(chunk)
        except OSError as error:
            raise ArchiveError(
                f"entry {name!r} cannot be written: {error.strerror or error}", entry=name
            ) from None
        self._file_set.add(path)
        self.files.append(path)

    def _read(self, source: IO[bytes], name: str) -> bytes:
        try:
            return source.read(_CHUNK_BYTES)
        except _READ_ERRORS as error:
            raise ArchiveError(f"entry {name!r} is corrupt: {error}", entry=name) from None

    def _check(self, name: str, written: int, compressed: int | None) -> None:
        limits = self.limits
        if written > limits.max_member_bytes:
            raise ArchiveError(
                f"entry {name!r} is larger than {limits.max_member_bytes} bytes", entry=name
            )
        if self.total_bytes > limits.max_total_bytes:
            raise ArchiveError(f"the archive expands to more than {limits.max_total_bytes} bytes")
        if compressed is not None and _too_expanded(written, compressed, limits.max_ratio):
            raise ArchiveError(
                f"entry {name!r} expands more than {limits.max_ratio:g} times", entry=name
            )
        consumed = self._consumed if isinstance(self._consumed, int) else self._consumed()
        if _too_expanded(self.total_bytes, consumed, limits.max_ratio):
            raise ArchiveError(f"the archive expands more than {limits.max_ratio:g} times")

    def _make_dirs(self, path: str, name: str) -> None:
        prefix = ""
        for part in path.split("/") if path else ():
            prefix = f"{prefix}/{part}" if prefix else part
            if prefix in self._dirs:
                continue
            if prefix in self._file_set:
                raise ArchiveError(f"entry {name!r} is inside {prefix!r}, a file", entry=name)
            try:
                os.mkdir(self.root / prefix, 0o755)
                os.chmod(self.root / prefix, 0o755)  # noqa: S103  # readable by analysis workers
            except OSError as error:
                raise ArchiveError(
                    f"entry {name!r} cannot be written: {error.strerror or error}", entry=name
                ) from None
            self._dirs.add(prefix)


def _relative_path(name: str) -> str:
    if "\\" in name:
        raise ArchiveError(
            f"entry {name!r} has a backslash in its path, which is not a separator here",
            entry=name,
        )
    if name.startswith("/") or _DRIVE.match(name):
        raise ArchiveError(f"entry {name!r} is an absolute path", entry=name)
    if "\0" in name:
        raise ArchiveError(f"entry {name!r} has a NUL character in its path", entry=name)
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"entry {name!r} escapes the archive", entry=name)
    return "/".join(parts)


def _too_expanded(uncompressed: int, compressed: int, ratio: float) -> bool:
    return uncompressed > _RATIO_GRACE_BYTES and uncompressed > ratio * max(compressed, 1)


def _extract_zip(raw: IO[bytes], tree: _Tree) -> None:
    try:
        archive = zipfile.ZipFile(raw)
    except _READ_ERRORS as error:
        raise ArchiveError(f"the archive is not a readable zip: {error}") from None
    with archive:
        entries = archive.infolist()
        limits = tree.limits
        if len(entries) > limits.max_members:
            raise ArchiveError(f"the archive has more than {limits.max_members} entries")
        # Declared sizes can refuse early; they never admit anything (the bytes are counted).
        if sum(entry.file_size for entry in entries) > limits.max_total_bytes:
            raise ArchiveError(f"the archive expands to more than {limits.max_total_bytes} bytes")
        for entry in entries:
            name = entry.filename
            path = tree.admit(name)
            mode = entry.external_attr >> 16 if entry.create_system == 3 else 0  # 3: Unix
            kind = stat.S_IFMT(mode)
            if kind == stat.S_IFLNK:
                raise ArchiveError(f"entry {name!r} is a symbolic link", entry=name)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise ArchiveError(f"entry {name!r} is a device or fifo", entry=name)
            if entry.flag_bits & 0x1:
                raise ArchiveError(f"entry {name!r} is encrypted", entry=name)
            if entry.is_dir() or kind == stat.S_IFDIR:
                if path:
                    tree.directory(path, name)
                continue
            if entry.file_size > limits.max_member_bytes:
                raise ArchiveError(
                    f"entry {name!r} is larger than {limits.max_member_bytes} bytes", entry=name
                )
            try:
                source = archive.open(entry)
            except _READ_ERRORS as error:
                raise ArchiveError(f"entry {name!r} cannot be read: {error}", entry=name) from None
            with source:
                tree.file(path, name, source, entry.compress_size)


class _Inflated:
    """The decompressed tar stream, for tarfile to read sequentially (``r|``), counted as it
    goes: a bomb is stopped by how far it has expanded, and a header by its size, before
    tarfile gathers either in memory."""

    def __init__(self, raw: IO[bytes], tree: _Tree) -> None:
        self._raw = raw
        self._gzip = gzip.GzipFile(fileobj=raw, mode="rb")
        self._tree = tree
        self._inflated = 0
        # While tarfile reads a header: how many more bytes it may read. None: reading data.
        self.header_allowance: int | None = _TAR_HEADER_BYTES

    def read(self, size: int = -1) -> bytes:
        data = self._gzip.read(size if size >= 0 else _CHUNK_BYTES)
        self._inflated += len(data)
        if self.header_allowance is not None:
            self.header_allowance -= len(data)
            if self.header_allowance < 0:
                raise ArchiveError(f"an entry header is larger than {_TAR_HEADER_BYTES} bytes")
        ratio = self._tree.limits.max_ratio
        if _too_expanded(self._inflated, self._raw.tell(), ratio):
            raise ArchiveError(f"the archive expands more than {ratio:g} times")
        return data


def _extract_tar_gz(raw: IO[bytes], tree: _Tree) -> None:
    stream = _Inflated(raw, tree)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:  # type: ignore[call-overload]
            while (member := archive.next()) is not None:
                stream.header_allowance = None
                _extract_member(archive, member, tree)
                stream.header_allowance = _TAR_HEADER_BYTES
    except _READ_ERRORS as error:  # what the checks refused is an ArchiveError, not these
        raise ArchiveError(f"the archive is not a readable tar.gz: {error}") from None


def _extract_member(archive: tarfile.TarFile, member: tarfile.TarInfo, tree: _Tree) -> None:
    name = member.name
    path = tree.admit(name)
    if member.issym():
        raise ArchiveError(f"entry {name!r} is a symbolic link", entry=name)
    if member.islnk():
        raise ArchiveError(f"entry {name!r} is a hard link", entry=name)
    if member.ischr() or member.isblk() or member.isfifo():
        raise ArchiveError(f"entry {name!r} is a device or fifo", entry=name)
    if not (member.isreg() or member.isdir()):
        raise ArchiveError(f"entry {name!r} is not a file or a directory", entry=name)
    # A second opinion from the standard library's own policy (Python 3.11.4 and later);
    # ours above gave the clear reason.
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is not None:
        try:
            data_filter(member, str(tree.root))
        except tarfile.FilterError as error:
            raise ArchiveError(f"entry {name!r} is refused: {error}", entry=name) from None
    if member.isdir():
        if path:
            tree.directory(path, name)
        return
    if member.size > tree.limits.max_member_bytes:
        raise ArchiveError(
            f"entry {name!r} is larger than {tree.limits.max_member_bytes} bytes", entry=name
        )
    source = archive.extractfile(member)
    if source is None:  # not reached: regular files always have content to read
        raise ArchiveError(f"entry {name!r} has no content", entry=name)
    with source:
        tree.file(path, name, source, None)
