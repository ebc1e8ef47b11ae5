"""A real runner process against the real server: it registers, claims, fetches the commit,
checks the signature, runs steps in subprocesses and streams their lines, uploads artifacts;
survives nothing of a kill -9 but its lease; stops a cancelled step's whole process tree; and
refuses a pipeline altered after signing."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import update

from forgeyard.kernel import signing
from forgeyard.kernel.db import Database
from forgeyard.models.ci import Build
from tests.ci.builds.flows import API, project_with_repo, registration_token, start_build
from tests.ci.live.conftest import SERVER_SECRET, LiveServer, Runners, wait_for
from tests.identity.conftest import Tenants
from tests.repos.conftest import GitRepo

PIPELINE = """\
triggers: {manual: true}
steps:
  - name: hello
    commands: ["echo hello", "echo world"]
  - name: nap
    commands: ["sleep 1", "echo awake"]
  - name: environment
    commands: ["env | sort"]
  - name: broken
    commands: ["echo about to fail", "exit 3"]
  - name: report
    commands: ["mkdir -p out", "echo report > out/report.txt"]
    when: {status: failure}
artifacts: ["out/*.txt"]
"""


def _repo(tmp_path: Path, pipeline: str) -> GitRepo:
    repo = GitRepo(tmp_path / "upstream")
    repo.path.mkdir()
    repo.git("init", "--quiet", "--initial-branch", "main")
    repo.commit({".forgeyard.yml": pipeline, "README.md": "demo\n"}, "first")
    return repo


async def _follow(
    live: LiveServer, client: httpx.AsyncClient, token: str, build_id: str
) -> list[Any]:
    """Every (event, data) of the build's log stream, read live over HTTP until ``end``."""
    minted = await client.post(
        f"{API}/builds/{build_id}/stream-token", headers={"Authorization": f"Bearer {token}"}
    )
    events: list[Any] = []
    async with (
        httpx.AsyncClient(base_url=live.url, timeout=60) as http,
        http.stream("GET", minted.json()["url"]) as stream,
    ):
        event = None
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event is not None:
                events.append((event, orjson.loads(line.removeprefix("data: "))))
                if event == "end":
                    break
    return events


async def test_a_runner_builds_streams_its_lines_in_order_and_uploads_an_artifact(
    client: httpx.AsyncClient,
    database: Database,
    tenants: Tenants,
    live: LiveServer,
    runners: Runners,
    tmp_path: Path,
) -> None:
    project = await project_with_repo(client, database, tenants.owner, _repo(tmp_path, PIPELINE))
    runners.start("r1", await registration_token(client, tenants.admin))
    build = await start_build(client, tenants.member, project)

    events = await _follow(live, client, tenants.viewer.access_token, build["id"])

    lines: dict[int, list[str]] = {}
    for event, data in events[:-1]:
        assert event == "log"
        assert data["first_line"] == len(lines.get(data["step"], []))  # no gap, no repeat
        lines.setdefault(data["step"], []).extend(data["lines"])
    assert events[-1] == ("end", {"status": "failed"})
    assert lines[0] == ["hello", "world"]
    assert lines[1] == ["awake"]
    assert lines[3] == ["about to fail"]
    environment = "\n".join(lines[2])
    assert SERVER_SECRET not in environment
    assert "FORGEYARD_SECRET_KEY" not in environment
    assert "CI=true" in environment
    done = (await client.get(f"{API}/builds/{build['id']}", headers=tenants.viewer.headers)).json()
    assert [s["status"] for s in done["steps"]] == [
        "succeeded",
        "succeeded",
        "succeeded",
        "failed",
        "succeeded",
    ]
    assert done["steps"][3]["exit_code"] == 3
    artifacts = await client.get(
        f"{API}/builds/{build['id']}/artifacts", headers=tenants.viewer.headers
    )
    [artifact] = artifacts.json()["data"]
    assert artifact["path"] == "out/report.txt"
    link = await client.post(
        f"{API}/artifacts/{artifact['id']}/download-link", headers=tenants.viewer.headers
    )
    first = await client.get(link.json()["url"])
    second = await client.get(link.json()["url"])
    assert first.status_code == 200
    assert first.content == b"report\n"
    assert second.status_code == 410
    assert second.json()["code"] == "token_consumed"


async def test_a_runner_killed_mid_build_loses_it_to_another_after_the_lease(
    client: httpx.AsyncClient,
    database: Database,
    tenants: Tenants,
    runners: Runners,
    tmp_path: Path,
) -> None:
    pipeline = (
        'triggers: {manual: true}\nsteps:\n  - name: long\n    commands: ["sleep 4", "echo done"]\n'
    )
    project = await project_with_repo(client, database, tenants.owner, _repo(tmp_path, pipeline))
    token = await registration_token(client, tenants.admin)
    first = runners.start("first", token)
    build = await start_build(client, tenants.member, project)
    url, headers = f"{API}/builds/{build['id']}", tenants.viewer.headers
    await wait_for(client, url, headers, lambda b: b["steps"][0]["status"] == "running")

    first.kill()
    second = runners.start("second", token)

    done = await wait_for(client, url, headers, lambda b: b["status"] == "succeeded", within=60)
    assert done["runner_id"] == second.state()["id"]
    assert done["attempts"] == 2
    logged = await client.get(f"{url}/logs?step=0", headers=headers)
    assert [line["text"] for line in logged.json()["lines"]] == ["done"]


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


async def test_cancelling_a_running_build_ends_its_steps_whole_process_tree(
    client: httpx.AsyncClient,
    database: Database,
    tenants: Tenants,
    runners: Runners,
    tmp_path: Path,
) -> None:
    marker = f"fy-marker-{uuid.uuid4().hex}"
    sleeper = f"python3 -c 'import time; time.sleep(300)' {marker}"
    pipeline = (
        "triggers: {manual: true}\nsteps:\n  - name: stubborn\n"
        f'    commands: ["{sleeper} & {sleeper} & wait"]\n'
    )
    project = await project_with_repo(client, database, tenants.owner, _repo(tmp_path, pipeline))
    runners.start("r1", await registration_token(client, tenants.admin))
    build = await start_build(client, tenants.member, project)
    url, headers = f"{API}/builds/{build['id']}", tenants.viewer.headers
    await wait_for(client, url, headers, lambda b: b["steps"][0]["status"] == "running")
    await wait_for(client, url, headers, lambda b: len(_processes_with(marker)) >= 2, within=15)

    cancelled = await client.post(f"{url}/cancel", headers=tenants.member.headers)

    assert cancelled.status_code == 202
    done = await wait_for(client, url, headers, lambda b: b["status"] == "cancelled", within=30)
    assert done["steps"][0]["status"] == "cancelled"
    await wait_for(client, url, headers, lambda b: _processes_with(marker) == [], within=10)


async def test_a_pipeline_altered_after_signing_is_refused_and_nothing_runs(
    client: httpx.AsyncClient,
    database: Database,
    tenants: Tenants,
    runners: Runners,
    tmp_path: Path,
) -> None:
    planted = tmp_path / "pwned"
    pipeline = 'triggers: {manual: true}\nsteps:\n  - name: harmless\n    commands: ["echo hi"]\n'
    project = await project_with_repo(client, database, tenants.owner, _repo(tmp_path, pipeline))
    build = await start_build(client, tenants.member, project)
    async with database.transaction() as session:  # someone with the database, not the key
        row = await session.get(Build, build["id"])
        assert row is not None
        altered = row.spec.replace("echo hi", f"touch {planted}")
        await session.execute(update(Build).where(Build.id == row.id).values(spec=altered))

    runners.start("r1", await registration_token(client, tenants.admin))

    url, headers = f"{API}/builds/{build['id']}", tenants.viewer.headers
    done = await wait_for(client, url, headers, lambda b: b["status"] == "failed", within=30)
    assert "signature" in done["error"]
    assert done["steps"][0]["status"] != "succeeded"
    assert not planted.exists()


async def test_a_runner_pinned_to_another_key_registers_its_labels_and_refuses_the_build(
    client: httpx.AsyncClient,
    database: Database,
    tenants: Tenants,
    runners: Runners,
    tmp_path: Path,
) -> None:
    planted = tmp_path / "ran"
    step = f'{{name: s, commands: ["touch {planted}"]}}'
    pipeline = f"triggers: {{manual: true}}\nsteps:\n  - {step}\n"
    project = await project_with_repo(client, database, tenants.owner, _repo(tmp_path, pipeline))
    build = await start_build(client, tenants.member, project)
    other_key = signing.public_key_text(signing.generate_key())

    runners.start(
        "pinned",
        await registration_token(client, tenants.admin),
        "--labels",
        "gpu, arm64",
        "--public-key",
        other_key,
    )

    url, headers = f"{API}/builds/{build['id']}", tenants.viewer.headers
    done = await wait_for(client, url, headers, lambda b: b["status"] == "failed", within=30)
    assert "signature" in done["error"]
    assert not planted.exists()
    listed = await client.get(f"{API}/runners", headers=tenants.admin.headers)
    (registered,) = [r for r in listed.json()["data"] if r["name"] == "pinned"]
    assert {"gpu", "arm64"} <= set(registered["labels"])
