"""Builds through the API, with the runner protocol spoken as a runner speaks it: a manual
build claimed, reported step by step and ended; its logs paged; cancel, retry, lost leases;
bad input, tenancy and roles."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import httpx

from forgeyard.kernel import signing
from forgeyard.kernel.db import Database
from forgeyard.protocol.runner import BuildSpec
from tests.ci.builds.conftest import LEASE_SECONDS
from tests.ci.builds.flows import (
    API,
    build_of,
    claim,
    project_with_repo,
    register_runner,
    report,
    start_build,
)
from tests.identity.conftest import Tenants
from tests.repos.conftest import GitRepo


async def run_like_a_runner(
    client: httpx.AsyncClient, runner: object, build_id: str, outcomes: dict[int, str]
) -> None:
    """Report each step of ``outcomes`` with two log lines, then end the build."""
    for index, outcome in outcomes.items():
        assert (
            await report(client, runner, build_id, f"/steps/{index}", {"status": "running"})
        ).status_code == 200  # type: ignore[arg-type]
        logged = await report(
            client,
            runner,
            build_id,
            "/logs",  # type: ignore[arg-type]
            {
                "step": index,
                "first_line": 0,
                "lines": [f"step {index} line 0", f"step {index} line 1"],
            },
        )
        assert logged.status_code == 200, logged.text
        code = 0 if outcome == "succeeded" else 3
        ended = await report(
            client,
            runner,
            build_id,
            f"/steps/{index}",  # type: ignore[arg-type]
            {"status": outcome, "exit_code": code},
        )
        assert ended.status_code == 200, ended.text
    final = "failed" if "failed" in outcomes.values() else "succeeded"
    finished = await report(client, runner, build_id, "/finish", {"status": final})  # type: ignore[arg-type]
    assert finished.status_code == 200, finished.text


async def test_a_manual_build_is_signed_claimed_reported_and_ended(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, ci_repo: GitRepo
) -> None:
    project = await project_with_repo(client, database, tenants.owner, ci_repo)
    runner = await register_runner(client, tenants.admin)

    build = await start_build(client, tenants.member, project)

    assert build["status"] == "queued"
    assert build["commit"] == ci_repo.git("rev-parse", "HEAD")
    assert [s["name"] for s in build["steps"]] == ["hello", "nap", "broken", "report"]
    claimed = await claim(client, runner)
    assert claimed is not None
    assert claimed["build_id"] == build["id"]
    signing.verify(runner.public_key, claimed["spec"].encode(), claimed["signature"])
    spec = BuildSpec.model_validate_json(claimed["spec"])
    assert (spec.build_id, spec.commit, spec.run) == (build["id"], build["commit"], [0, 1, 2, 3])
    assert spec.pipeline["steps"][0]["commands"] == ["echo hello", "echo world"]
    assert (await build_of(client, tenants.viewer, build["id"]))["status"] == "running"

    await run_like_a_runner(
        client, runner, build["id"], {0: "succeeded", 1: "succeeded", 2: "failed", 3: "succeeded"}
    )

    done = await build_of(client, tenants.viewer, build["id"])
    assert done["status"] == "failed"
    assert [s["status"] for s in done["steps"]] == ["succeeded", "succeeded", "failed", "succeeded"]
    assert done["steps"][2]["exit_code"] == 3
    assert done["duration_seconds"] is not None
    page = await client.get(
        f"{API}/builds/{build['id']}/logs?step=2&offset=1&limit=5", headers=tenants.viewer.headers
    )
    assert page.status_code == 200, page.text
    assert page.json()["lines"] == [{"number": 1, "text": "step 2 line 1"}]
    assert page.json()["total_lines"] == 2
    assert page.json()["next_offset"] is None
    listed = await client.get(
        f"{API}/builds?repository_id={project.repo_id}&status=failed",
        headers=tenants.viewer.headers,
    )
    assert [b["id"] for b in listed.json()["data"]] == [build["id"]]
    none = await client.get(f"{API}/builds?status=running", headers=tenants.viewer.headers)
    assert none.json()["total"] == 0


async def test_the_log_stream_of_an_ended_build_replays_in_order_and_resumes(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, ci_repo: GitRepo
) -> None:
    project = await project_with_repo(client, database, tenants.owner, ci_repo)
    runner = await register_runner(client, tenants.admin)
    build = await start_build(client, tenants.member, project)
    await claim(client, runner)
    await run_like_a_runner(client, runner, build["id"], {0: "succeeded", 1: "succeeded"})
    minted = await client.post(
        f"{API}/builds/{build['id']}/stream-token", headers=tenants.viewer.headers
    )
    assert minted.status_code == 201, minted.text

    whole = await client.get(minted.json()["url"])
    resumed = await client.get(minted.json()["url"], headers={"Last-Event-ID": "1"})

    events = _events(whole.text)
    assert [e["event"] for e in events] == ["log", "log", "end"]
    assert [line for e in events[:2] for line in e["data"]["lines"]] == [
        "step 0 line 0",
        "step 0 line 1",
        "step 1 line 0",
        "step 1 line 1",
    ]
    assert events[-1]["data"] == {"status": "succeeded"}
    assert [e["event"] for e in _events(resumed.text)] == ["log", "end"]
    wrong = await client.get(f"{API}/builds/{build['id']}/logs/stream?token=not-a-token")
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "invalid_stream_token"


async def test_cancelling_a_queued_build_ends_it_and_a_running_one_tells_its_runner(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, ci_repo: GitRepo
) -> None:
    project = await project_with_repo(client, database, tenants.owner, ci_repo)
    runner = await register_runner(client, tenants.admin)
    queued = await start_build(client, tenants.member, project)
    cancelled = await client.post(
        f"{API}/builds/{queued['id']}/cancel", headers=tenants.member.headers
    )
    assert cancelled.json()["status"] == "cancelled"
    assert {s["status"] for s in cancelled.json()["steps"]} == {"cancelled"}
    assert await claim(client, runner) is None

    running = await start_build(client, tenants.member, project)
    await claim(client, runner)
    asked = await client.post(
        f"{API}/builds/{running['id']}/cancel", headers=tenants.member.headers
    )
    assert asked.status_code == 202
    assert asked.json()["cancel_requested"] is True
    beat = await client.post(
        runner.url("/heartbeat"), json={"builds": [running["id"]]}, headers=runner.headers
    )
    assert beat.json()["cancel"] == [running["id"]]
    ack = await report(client, runner, running["id"], "/steps/0", {"status": "running"})
    assert ack.json() == {"cancel": True}
    await report(client, runner, running["id"], "/finish", {"status": "cancelled"})
    assert (await build_of(client, tenants.viewer, running["id"]))["status"] == "cancelled"
    again = await client.post(
        f"{API}/builds/{running['id']}/cancel", headers=tenants.member.headers
    )
    assert again.status_code == 409


async def test_a_build_whose_runner_went_quiet_goes_to_another_and_the_first_is_refused(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, ci_repo: GitRepo
) -> None:
    project = await project_with_repo(client, database, tenants.owner, ci_repo)
    first = await register_runner(client, tenants.admin, "first")
    second = await register_runner(client, tenants.admin, "second")
    build = await start_build(client, tenants.member, project)
    await claim(client, first)
    await report(client, first, build["id"], "/logs", {"step": 0, "first_line": 0, "lines": ["x"]})

    await asyncio.sleep(LEASE_SECONDS + 0.5)  # no heartbeat from the first runner
    taken = await claim(client, second)

    assert taken is not None
    assert taken["build_id"] == build["id"]
    state = await build_of(client, tenants.viewer, build["id"])
    assert (state["runner_id"], state["attempts"]) == (second.id, 2)
    assert "re-queued" in state["error"]
    late = await report(
        client, first, build["id"], "/logs", {"step": 0, "first_line": 1, "lines": ["y"]}
    )
    assert late.status_code == 409
    assert late.json()["code"] == "lease_lost"
    beat = await client.post(
        first.url("/heartbeat"), json={"builds": [build["id"]]}, headers=first.headers
    )
    assert beat.json()["lost"] == [build["id"]]
    lines = await client.get(
        f"{API}/builds/{build['id']}/logs?step=0", headers=tenants.viewer.headers
    )
    assert lines.json()["lines"] == []  # the second runner starts the build over

    await asyncio.sleep(LEASE_SECONDS + 0.5)  # the second goes quiet too: attempts are spent
    assert await claim(client, first) is None
    assert (await build_of(client, tenants.viewer, build["id"]))["status"] == "failed"


async def test_retrying_only_the_failed_steps_runs_them_on_the_same_commit_and_pipeline(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, ci_repo: GitRepo
) -> None:
    project = await project_with_repo(client, database, tenants.owner, ci_repo)
    runner = await register_runner(client, tenants.admin)
    original = await start_build(client, tenants.member, project)
    first_spec = BuildSpec.model_validate_json((await claim(client, runner))["spec"])  # type: ignore[index]
    await run_like_a_runner(
        client,
        runner,
        original["id"],
        {0: "succeeded", 1: "succeeded", 2: "failed", 3: "succeeded"},
    )
    ci_repo.commit(
        {".forgeyard.yml": 'steps:\n  - name: other\n    commands: ["true"]\n'}, "moved on"
    )
    await run_jobs_again(client, database, tenants, project.repo_id)

    retried = await client.post(
        f"{API}/builds/{original['id']}/retry",
        json={"failed_only": True},
        headers=tenants.member.headers,
    )

    assert retried.status_code == 201, retried.text
    retry = retried.json()
    assert (retry["commit"], retry["retry_of_id"]) == (original["commit"], original["id"])
    assert [(s["name"], s["status"], s["reused"]) for s in retry["steps"]] == [
        ("hello", "succeeded", True),
        ("nap", "succeeded", True),
        ("broken", "pending", False),
        ("report", "succeeded", True),
    ]
    spec = BuildSpec.model_validate_json((await claim(client, runner))["spec"])  # type: ignore[index]
    assert spec.run == [2]
    assert spec.pipeline == first_spec.pipeline
    refused = await report(client, runner, retry["id"], "/steps/0", {"status": "running"})
    assert refused.status_code == 400
    assert refused.json()["details"]["field"] == "step"
    busy = await client.post(f"{API}/builds/{retry['id']}/retry", headers=tenants.member.headers)
    assert busy.status_code == 409


async def run_jobs_again(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, repo_id: str
) -> None:
    """Fetch the repository again, so its mirror has the newer commit."""
    from tests.repos.conftest import run_jobs

    fetched = await client.post(
        f"{API}/analysis/trigger", json={"repository_id": repo_id}, headers=tenants.member.headers
    )
    assert fetched.status_code in (201, 202), fetched.text
    await run_jobs(database)


def _events(text: str) -> list[dict[str, object]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in block.splitlines()
            if ": " in line and not line.startswith(":")
        )
        if "event" in fields:
            events.append(
                {
                    "event": fields["event"],
                    "id": fields.get("id"),
                    "data": json.loads(fields["data"]),
                }
            )
    return events


async def test_a_log_batch_sent_again_is_stored_once(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, ci_repo: GitRepo
) -> None:
    """A runner whose answer got lost sends the batch again; the log must not repeat."""
    project = await project_with_repo(client, database, tenants.owner, ci_repo)
    runner = await register_runner(client, tenants.admin)
    build = await start_build(client, tenants.member, project)
    await claim(client, runner)
    batch = {"step": 0, "first_line": 0, "lines": ["once", "only"]}

    for _ in range(2):
        sent = await report(client, runner, build["id"], "/logs", batch)
        assert sent.status_code == 200, sent.text

    page = await client.get(
        f"{API}/builds/{build['id']}/logs?step=0", headers=tenants.viewer.headers
    )
    assert [line["text"] for line in page.json()["lines"]] == ["once", "only"]
    assert page.json()["total_lines"] == 2


async def test_builds_started_together_each_get_the_repositorys_next_number(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, ci_repo: GitRepo
) -> None:
    project = await project_with_repo(client, database, tenants.owner, ci_repo)
    first = await start_build(client, tenants.member, project)
    together = await asyncio.gather(
        *(start_build(client, tenants.member, project) for _ in range(4))
    )
    assert first["number"] == 1
    assert sorted(b["number"] for b in together) == [2, 3, 4, 5]


async def test_an_idle_runner_asking_for_work_is_seen_then(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    runner = await register_runner(client, tenants.admin)

    async def last_seen() -> datetime:
        listed = await client.get(f"{API}/runners", headers=tenants.admin.headers)
        assert listed.status_code == 200, listed.text
        found = next(r for r in listed.json()["data"] if r["id"] == runner.id)
        return datetime.fromisoformat(found["last_seen_at"])

    registered = await last_seen()
    await asyncio.sleep(0.05)
    assert await claim(client, runner) is None  # nothing queued
    assert await last_seen() > registered
