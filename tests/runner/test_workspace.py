"""A build's directories: the source unpacked safely, artifacts found by glob without
following links out of the source, everything removed afterwards."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from forgeyard.runner.workspace import (
    collect_artifacts,
    create_workspace,
    extract_source,
    remove_tree,
)


def _tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for member in members:
            content = data.get(member.name)
            if content is not None:
                member.size = len(content)
            tar.addfile(member, io.BytesIO(content) if content is not None else None)
    return path


def _file(name: str, mode: int = 0o644) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.mode = mode
    return member


def _link(name: str, target: str) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = tarfile.SYMTYPE
    member.linkname = target
    return member


def test_a_build_gets_a_source_and_a_home_directory_of_its_own(tmp_path: Path) -> None:
    workspace = create_workspace(tmp_path, "bld_01ABC")
    assert workspace.src == tmp_path / "builds" / "bld_01ABC" / "src"
    assert workspace.home == tmp_path / "builds" / "bld_01ABC" / "home"
    assert workspace.src.is_dir()
    assert workspace.home.is_dir()


def test_a_build_id_that_is_not_a_plain_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="build id"):
        create_workspace(tmp_path, "../escape")


def test_the_source_is_unpacked_with_its_executable_bits(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "source.tar",
        [_file("README.md"), _file("scripts/run.sh", 0o755)],
        {"README.md": b"demo\n", "scripts/run.sh": b"#!/bin/sh\necho hi\n"},
    )
    into = tmp_path / "src"
    into.mkdir()
    extract_source(archive, into)
    assert (into / "README.md").read_text() == "demo\n"
    assert (into / "scripts" / "run.sh").stat().st_mode & 0o100


@pytest.mark.parametrize(
    ("member", "content"),
    [
        (_file("../outside.txt"), b"escaped"),
        (_link("leak", "/etc/passwd"), None),
        (_link("up", "../../outside"), None),
    ],
)
def test_an_archive_reaching_outside_the_source_is_refused(
    tmp_path: Path, member: tarfile.TarInfo, content: bytes | None
) -> None:
    archive = _tar(tmp_path / "source.tar", [member], {member.name: content} if content else {})
    into = tmp_path / "deep" / "src"
    into.mkdir(parents=True)
    with pytest.raises(tarfile.TarError):
        extract_source(archive, into)
    assert not (tmp_path / "deep" / "outside.txt").exists()


def test_an_absolute_name_is_unpacked_inside_the_source(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "source.tar", [_file("/abs/name.txt")], {"/abs/name.txt": b"x"})
    into = tmp_path / "src"
    into.mkdir()
    extract_source(archive, into)
    assert (into / "abs" / "name.txt").read_bytes() == b"x"
    assert not Path("/abs/name.txt").exists()


def test_artifacts_are_the_regular_files_the_globs_match(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "out").mkdir(parents=True)
    (src / "out" / "a.txt").write_text("a")
    (src / "out" / "b.log").write_text("b")
    (src / "reports" / "unit").mkdir(parents=True)
    (src / "reports" / "unit" / "junit.xml").write_text("<x/>")
    (src / "reports" / "summary.md").write_text("ok")
    (src / "dist" / "deep").mkdir(parents=True)
    (src / "dist" / "deep" / "pkg.whl").write_text("w")

    found = collect_artifacts(src, ["out/*.txt", "reports/**", "**/*.whl", "out/a.txt", "none/*"])

    assert [path for path, _ in found] == [
        "dist/deep/pkg.whl",
        "out/a.txt",
        "reports/summary.md",
        "reports/unit/junit.xml",
    ]
    assert all(file.is_file() for _, file in found)


def test_artifacts_never_lead_out_of_the_source(tmp_path: Path) -> None:
    secret = tmp_path / "runner.json"
    secret.write_text('{"token": "fyr_secret"}')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "private.txt").write_text("private")
    src = tmp_path / "src"
    (src / "out").mkdir(parents=True)
    (src / "out" / "kept.txt").write_text("kept")
    (src / "out" / "token.txt").symlink_to(secret)
    (src / "out" / "linked-dir").symlink_to(elsewhere)
    (src / "out" / "inside.txt").symlink_to(src / "out" / "kept.txt")
    (src / "out" / "dangling.txt").symlink_to(src / "missing")

    found = collect_artifacts(src, ["out/*", "out/**", "out/linked-dir/*", "../runner.json"])

    assert [path for path, _ in found] == ["out/inside.txt", "out/kept.txt"]
    assert {file for _, file in found} == {(src / "out" / "kept.txt").resolve()}


def test_a_workspace_is_removed_even_where_a_step_made_it_read_only(tmp_path: Path) -> None:
    workspace = create_workspace(tmp_path, "bld_1")
    locked = workspace.home / "go" / "pkg" / "mod"
    locked.mkdir(parents=True)
    (locked / "file.go").write_text("package x")
    locked.chmod(0o500)
    (workspace.home / "go" / "pkg").chmod(0o500)

    remove_tree(workspace.root)

    assert not workspace.root.exists()
