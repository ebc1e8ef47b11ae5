"""Hostile archives, built here with zipfile and tarfile, and refused with nothing written."""

from __future__ import annotations

import gzip
import io
import os
import re
import stat
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest

from forgeyard.analysis.archives import ArchiveError, ArchiveLimits, detect_format, extract

MiB = 1024 * 1024


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    return tmp_path / "in"


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """Where archives are extracted to; its parent holds nothing else, so a test can see
    that a refusal left nothing behind."""
    (tmp_path / "out").mkdir()
    return tmp_path / "out" / "tree"


def make_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return path


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **more: object) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in more.items():
        setattr(info, key, value)
    return info, data


def make_tar_gz(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def symlink_zip_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def assert_refused(
    archive: Path, dest: Path, message: str, limits: ArchiveLimits | None = None
) -> ArchiveError:
    with pytest.raises(ArchiveError, match=re.escape(message)) as caught:
        extract(archive, dest, limits or ArchiveLimits())
    assert caught.value.code == "invalid_archive"
    assert caught.value.status_code == 400
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == [], "no staging directory is left behind"
    return caught.value


def test_a_zip_extracts_with_its_paths_as_they_are(inbox: Path, dest: Path) -> None:
    archive = make_zip(
        inbox / "project.zip",
        [
            ("project/", b""),
            ("project/README.md", b"# hello\n"),
            ("project/src/app.py", b"print('hi')\n"),
            ("project/./src//util.py", b"x = 1\n"),
        ],
    )
    assert extract(archive, dest, ArchiveLimits()) == [
        "project/README.md",
        "project/src/app.py",
        "project/src/util.py",
    ]
    assert (dest / "project" / "src" / "app.py").read_bytes() == b"print('hi')\n"
    assert stat.S_IMODE((dest / "project" / "README.md").stat().st_mode) == 0o644
    assert stat.S_IMODE((dest / "project" / "src").stat().st_mode) == 0o755
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert sorted(p.name for p in dest.parent.iterdir()) == ["tree"]


def test_a_tar_gz_extracts_into_an_empty_directory(inbox: Path, dest: Path) -> None:
    archive = make_tar_gz(
        inbox / "project.tar.gz",
        [
            member(".", kind=tarfile.DIRTYPE),  # what `tar czf x.tar.gz .` writes first
            member("./src", kind=tarfile.DIRTYPE),
            member("./src/app.py", b"print('hi')\n", mode=0o755),
            member("./pyproject.toml", b"[project]\n"),
        ],
    )
    dest.mkdir()
    assert extract(archive, dest, ArchiveLimits()) == ["src/app.py", "pyproject.toml"]
    assert (dest / "src" / "app.py").read_bytes() == b"print('hi')\n"
    assert stat.S_IMODE((dest / "src" / "app.py").stat().st_mode) == 0o644


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (("../evil", b"x"), "entry '../evil' escapes the archive"),
        (("../../evil", b"x"), "entry '../../evil' escapes the archive"),
        (("a/../../evil", b"x"), "entry 'a/../../evil' escapes the archive"),
        (("/tmp/evil", b"x"), "entry '/tmp/evil' is an absolute path"),
        (("C:/Windows/evil", b"x"), "entry 'C:/Windows/evil' is an absolute path"),
        (("..\\evil", b"x"), "entry '..\\\\evil' has a backslash in its path"),
        ((symlink_zip_entry("link"), b"/etc/passwd"), "'link' is a symbolic link"),
    ],
    ids=["parent", "grandparent", "inner-parent", "absolute", "drive", "backslash", "symlink"],
)
def test_a_hostile_zip_entry_is_refused(
    inbox: Path, dest: Path, tmp_path: Path, entry: tuple, message: str
) -> None:
    archive = make_zip(inbox / "evil.zip", [("fine.txt", b"fine"), entry])
    error = assert_refused(archive, dest, message)
    name = entry[0] if isinstance(entry[0], str) else entry[0].filename
    assert error.details == {"entry": name}
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize(
    ("evil", "message"),
    [
        (member("../evil", b"x"), "entry '../evil' escapes the archive"),
        (member("/tmp/evil", b"x"), "entry '/tmp/evil' is an absolute path"),
        (member("link", kind=tarfile.SYMTYPE, linkname="/etc"), "'link' is a symbolic link"),
        (member("hard", kind=tarfile.LNKTYPE, linkname="fine.txt"), "'hard' is a hard link"),
        (member("tty", kind=tarfile.CHRTYPE, devmajor=5), "'tty' is a device or fifo"),
        (member("pipe", kind=tarfile.FIFOTYPE), "'pipe' is a device or fifo"),
        (member("fine.txt", b"again"), "entry 'fine.txt' appears more than once"),
        (member("fine.txt/inner", b"x"), "'fine.txt/inner' is inside 'fine.txt', a file"),
    ],
    ids=["traversal", "absolute", "symlink", "hardlink", "device", "fifo", "duplicate", "nested"],
)
def test_a_hostile_tar_member_is_refused(
    inbox: Path, dest: Path, tmp_path: Path, evil: tuple, message: str
) -> None:
    archive = make_tar_gz(inbox / "evil.tar.gz", [member("fine.txt", b"fine"), evil])
    assert_refused(archive, dest, message)
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("second", ["a.txt", "./a.txt"])
def test_a_duplicate_zip_entry_is_refused(inbox: Path, dest: Path, second: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile's own warning about a duplicate name
        archive = make_zip(inbox / "twice.zip", [("a.txt", b"first"), (second, b"second")])
    assert_refused(archive, dest, f"entry {second!r} appears more than once")


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 MB of zeros in one entry, which deflate shrinks about a thousand times."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    zeros = bytes(MiB)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros.bin", "w", force_zip64=True) as entry,
    ):
        for _ in range(200):
            entry.write(zeros)
    return path


def test_a_zip_bomb_is_stopped_by_its_expansion(zip_bomb: Path, dest: Path) -> None:
    assert zip_bomb.stat().st_size < 1 * MiB
    roomy = ArchiveLimits(max_total_bytes=1024 * MiB, max_member_bytes=1024 * MiB)
    assert_refused(zip_bomb, dest, "entry 'zeros.bin' expands more than 100 times", roomy)


def test_a_zip_bomb_is_stopped_by_its_size(zip_bomb: Path, dest: Path) -> None:
    assert_refused(zip_bomb, dest, "entry 'zeros.bin' is larger than 52428800 bytes")
    limits = ArchiveLimits(max_total_bytes=100 * MiB, max_member_bytes=1024 * MiB)
    assert_refused(zip_bomb, dest, "the archive expands to more than 104857600 bytes", limits)


def test_many_small_entries_that_expand_together_are_stopped(inbox: Path, dest: Path) -> None:
    small = bytes(256 * 1024)  # each entry alone is below the ratio's grace
    archive = make_zip(inbox / "many.zip", [(f"f{i}.bin", small) for i in range(40)])
    assert_refused(archive, dest, "the archive expands more than 100 times")


def lie_about_size(path: Path, claimed: int) -> None:
    """Rewrite the uncompressed size in the local header and the central directory."""
    data = bytearray(path.read_bytes())
    assert data[:4] == b"PK\x03\x04"
    data[22:26] = claimed.to_bytes(4, "little")
    central = data.index(b"PK\x01\x02")
    data[central + 24 : central + 28] = claimed.to_bytes(4, "little")
    path.write_bytes(bytes(data))


def test_a_zip_whose_header_lies_about_its_size_is_caught(inbox: Path, dest: Path) -> None:
    archive = make_zip(inbox / "liar.zip", [("small.txt", bytes(20 * MiB))])
    lie_about_size(archive, 1000)
    with zipfile.ZipFile(archive) as check:
        assert check.getinfo("small.txt").file_size == 1000
    limits = ArchiveLimits(max_member_bytes=MiB, max_ratio=10_000)
    assert_refused(archive, dest, "entry 'small.txt' is corrupt", limits)


def test_a_tar_gz_bomb_is_stopped_while_it_streams(inbox: Path, dest: Path) -> None:
    path = inbox / "bomb.tar.gz"
    size = 64 * MiB
    with gzip.open(path, "wb") as raw, tarfile.open(fileobj=raw, mode="w|") as archive:
        info = tarfile.TarInfo("zeros.bin")
        info.size = size
        archive.addfile(info, io.BytesIO(bytes(size)))
    roomy = ArchiveLimits(max_total_bytes=1024 * MiB, max_member_bytes=1024 * MiB)
    assert_refused(path, dest, "the archive expands more than 100 times", roomy)


def test_a_tar_gz_over_the_total_is_stopped(inbox: Path, dest: Path) -> None:
    files = [member(f"f{i}.bin", os.urandom(300 * 1024)) for i in range(4)]
    archive = make_tar_gz(inbox / "big.tar.gz", files)
    limits = ArchiveLimits(max_total_bytes=MiB)
    assert_refused(archive, dest, "the archive expands to more than 1048576 bytes", limits)


def test_a_huge_tar_header_is_refused_before_it_is_read(inbox: Path, dest: Path) -> None:
    comment = os.urandom(1536 * 1024).hex()  # pax records tarfile would hold in memory
    entry = member("a.txt", b"a", pax_headers={"comment": comment})
    archive = make_tar_gz(inbox / "pax.tar.gz", [entry])
    assert_refused(archive, dest, "an entry header is larger than")


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_too_many_entries_are_refused(inbox: Path, dest: Path, kind: str) -> None:
    names = [f"f{i}.txt" for i in range(11)]
    if kind == "zip":
        archive = make_zip(inbox / "many.zip", [(name, b"x") for name in names])
    else:
        archive = make_tar_gz(inbox / "many.tar.gz", [member(name, b"x") for name in names])
    assert_refused(archive, dest, "the archive has more than 10 entries", ArchiveLimits(10))


def test_what_is_not_an_archive_is_refused_by_its_bytes(inbox: Path, dest: Path) -> None:
    with pytest.raises(ArchiveError, match=re.escape("'notes.zip' is not a zip or tar.gz")):
        detect_format(b"just some text", "notes.zip")
    assert detect_format(b"PK\x03\x04rest", "code.tar.gz") == "zip", "the bytes decide"
    assert detect_format(b"\x1f\x8b\x08rest", None) == "tar.gz"
    plain_tar = io.BytesIO()
    with tarfile.open(fileobj=plain_tar, mode="w") as archive:
        info, data = member("a.txt", b"a")
        archive.addfile(info, io.BytesIO(data))
    with pytest.raises(ArchiveError, match="uncompressed tar"):
        detect_format(plain_tar.getvalue()[:512], "code.tar")

    (inbox / "notes.txt").write_text("hello")
    assert_refused(inbox / "notes.txt", dest, "'notes.txt' is not a zip or tar.gz archive")
    (inbox / "broken.tar.gz").write_bytes(b"\x1f\x8b" + os.urandom(2000))
    assert_refused(inbox / "broken.tar.gz", dest, "the archive is not a readable tar.gz")
    (inbox / "broken.zip").write_bytes(b"PK\x03\x04" + os.urandom(2000))
    assert_refused(inbox / "broken.zip", dest, "the archive is not a readable zip")


def test_a_destination_with_content_is_not_overwritten(inbox: Path, dest: Path) -> None:
    archive = make_zip(inbox / "a.zip", [("a.txt", b"a")])
    dest.mkdir()
    (dest / "kept.txt").write_text("kept")
    with pytest.raises(FileExistsError):
        extract(archive, dest, ArchiveLimits())
    assert [p.name for p in dest.iterdir()] == ["kept.txt"]
