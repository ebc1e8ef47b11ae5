"""Upload sessions (seed 004's legacy flow): an archive in, analysed like any repository;
hostile archives refused through the API with nothing written anywhere."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest

from forgeyard.kernel.db import Database
from forgeyard.settings import Settings
from tests.identity.conftest import Tenants
from tests.repos.conftest import API, SOURCES, run_jobs


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def tarred(files: dict[str, str], *, link: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo("innocent")
            info.type = tarfile.SYMTYPE
            info.linkname = link
            archive.addfile(info)
    return buffer.getvalue()


async def _upload(
    client: httpx.AsyncClient, tenants: Tenants, body: bytes, filename: str = "src.zip"
) -> httpx.Response:
    return await client.post(
        f"{API}/sessions",
        params={"filename": filename},
        content=body,
        headers={**tenants.member.headers, "content-type": "application/octet-stream"},
    )


@pytest.mark.parametrize(("make", "name"), [(zipped, "src.zip"), (tarred, "src.tar.gz")])
async def test_an_uploaded_tree_is_analysed_like_a_repository(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, make, name: str
) -> None:
    uploaded = await _upload(client, tenants, make(SOURCES), name)
    assert uploaded.status_code == 201, uploaded.text
    created = uploaded.json()
    assert created["status"] == "uploaded"
    assert created["archive_format"] == name.partition(".")[2]
    assert created["files"] == len(SOURCES)
    assert created["analysis"] is None

    started = await client.post(
        f"{API}/sessions/{created['id']}/analyze", headers=tenants.member.headers
    )
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "queued"
    await run_jobs(database)
    done = (
        await client.get(f"{API}/sessions/{created['id']}", headers=tenants.viewer.headers)
    ).json()
    assert done["status"] == "completed"
    assert done["analysis"]["files_total"] == len(SOURCES)
    rules = {
        f["rule_id"]
        for f in (
            await client.get(
                f"{API}/findings",
                params={"repository_id": created["repository_id"], "limit": 100},
                headers=tenants.viewer.headers,
            )
        ).json()["data"]
    }
    assert {"B602", "aws-access-key", "F401"} <= rules


def _bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.txt", b"\0" * (30 * 1024 * 1024))
    return buffer.getvalue()


def _left_behind(tmp_path: Path, work: Path) -> list[str]:
    """Files a refused upload wrote: its entries anywhere, or scratch it did not remove."""
    evil = [str(p) for p in tmp_path.rglob("evil.py")]
    if os.path.exists("/tmp/evil.py"):  # the absolute path an entry named
        evil.append("/tmp/evil.py")
    return evil + [str(p) for p in work.iterdir()] if work.exists() else evil


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (zipped({"../../evil.py": "x = 1\n"}), "escapes the archive"),
        (zipped({"/tmp/evil.py": "x = 1\n"}), "absolute path"),
        (tarred({"ok.py": "x = 1\n"}, link="/etc/passwd"), "innocent"),
        (_bomb(), "expands"),
        (b"just some text, not an archive", "not a zip or tar.gz"),
        (b"", "empty"),
    ],
    ids=["traversal", "absolute", "symlink", "zip-bomb", "not-an-archive", "empty"],
)
async def test_hostile_archives_are_refused_and_leave_nothing_behind(
    client: httpx.AsyncClient,
    tenants: Tenants,
    settings: Settings,
    tmp_path: Path,
    body: bytes,
    says: str,
) -> None:
    settings.analysis.max_archive_ratio = 50
    response = await _upload(client, tenants, body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] in ("invalid_archive", "invalid_input")
    assert says in response.json()["error"]
    assert _left_behind(tmp_path, settings.data_dir / "work") == []
    repos = await client.get(f"{API}/repos", headers=tenants.owner.headers)
    assert repos.json()["total"] == 0, "no repository half-made"


async def test_an_archive_over_the_size_limit_answers_413(
    client: httpx.AsyncClient, tenants: Tenants, app
) -> None:
    limit = app.state.settings.analysis.max_archive_bytes
    response = await _upload(client, tenants, b"\0" * (limit + 1))
    assert response.status_code == 413
    assert response.json()["details"] == {"max_body_bytes": limit}


async def test_another_organizations_session_is_not_found(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    created = (await _upload(client, tenants, zipped({"a.py": "x = 1\n"}))).json()
    for method, path in [
        ("GET", f"/sessions/{created['id']}"),
        ("POST", f"/sessions/{created['id']}/analyze"),
    ]:
        response = await client.request(method, API + path, headers=tenants.other_owner.headers)
        assert response.status_code == 404, response.text
    viewer = await client.post(
        f"{API}/sessions/{created['id']}/analyze", headers=tenants.viewer.headers
    )
    assert viewer.status_code == 403
