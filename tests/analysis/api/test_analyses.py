"""Analyses through the API: real git repositories, the real job worker and the real tools.

The two tests the issue names are here: real third-party code finds something from every
detector, and a second analysis after one change keeps ids and statuses, marks the removed
problem fixed and re-runs the detectors on the changed file only.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from forgeyard.jobs.worker import Worker
from forgeyard.kernel.db import Database
from forgeyard.models.identity import Organization
from forgeyard.models.job import Event
from forgeyard.settings import JobSettings
from tests.identity.conftest import Tenants
from tests.repos.conftest import API, GitRepo, analyse, register, run_jobs
from tests.sse import parse_events

DETECTOR_ORDER = [
    "lint",
    "security",
    "complexity",
    "dead_code",
    "secrets",
    "large_files",
    "duplicates",
]


async def on_plan(database: Database, organization_id: str, plan: str) -> None:
    async with database.transaction() as session:
        await session.execute(
            update(Organization).where(Organization.id == organization_id).values(plan=plan)
        )


@pytest.fixture
async def acme(database: Database, tenants: Tenants) -> Tenants:
    """Acme on the enterprise plan: no hourly cap on the analyses a test starts."""
    await on_plan(database, tenants.owner.organization_id, "enterprise")
    return tenants


async def _findings(client: httpx.AsyncClient, tenants: Tenants, **query: str) -> list[dict]:
    response = await client.get(
        f"{API}/findings", params={"limit": "100", **query}, headers=tenants.viewer.headers
    )
    assert response.status_code == 200, response.text
    data: list[dict] = response.json()["data"]
    return data


async def test_real_third_party_code_gets_findings_from_every_detector(
    client: httpx.AsyncClient,
    database: Database,
    acme: Tenants,
    requests_tree: Path,
    tmp_path: Path,
) -> None:
    """requests 2.20.0's sdist, committed as a repository and analysed end to end."""
    upstream = GitRepo(tmp_path / "requests")
    shutil.copytree(requests_tree, upstream.path)
    upstream.git("init", "--quiet", "--initial-branch", "main")
    # requests holds no credential; a leaked key is added so the secrets detector has one.
    upstream.commit({"requests/_deploy.py": 'AWS_KEY = "AKIAIOSFODNN7EXAMPLE"\n'}, "import")
    repo = await register(client, acme.owner, upstream.url, name="psf/requests")
    await run_jobs(database)
    done = await analyse(client, database, acme.owner, repo["id"])
    assert done["status"] == "completed", done["error"]
    assert done["lines"] > 5000
    assert 0 <= done["health_score"] <= 100
    assert list(done["detectors"]) == DETECTOR_ORDER

    groups = (
        await client.get(
            f"{API}/findings/by-detector",
            params={"repository_id": repo["id"]},
            headers=acme.viewer.headers,
        )
    ).json()
    found = {group["detector"]: group["total"] for group in groups}
    assert set(found) == set(DETECTOR_ORDER), found
    assert all(total > 0 for total in found.values())

    def rules(detector: str) -> set[tuple[str, str]]:
        return {(f["rule_id"], f["path"]) for f in by_detector[detector]}

    by_detector: dict[str, list[dict]] = {}
    for name in DETECTOR_ORDER:
        by_detector[name] = await _findings(client, acme, repository_id=repo["id"], detector=name)
    assert ("aws-access-key", "requests/_deploy.py") in rules("secrets")
    assert any(path == "requests/sessions.py" for _, path in rules("complexity"))
    summary = (
        await client.get(
            f"{API}/findings/summary",
            params={"repository_id": repo["id"]},
            headers=acme.viewer.headers,
        )
    ).json()
    assert summary["total"] == sum(found.values())
    assert summary["by_status"] == {"new": summary["total"]}


async def test_a_second_analysis_re_runs_only_the_changed_file_and_keeps_the_rest(
    client: httpx.AsyncClient, database: Database, acme: Tenants, git_repo: GitRepo
) -> None:
    owner = acme.owner
    repo = await register(client, owner, git_repo.url)
    await run_jobs(database)
    first = await analyse(client, database, owner, repo["id"])
    assert first["files_analysed"] == first["files_total"] == 6
    before = {f["fingerprint"]: f for f in await _findings(client, acme, repository_id=repo["id"])}
    shell = [f for f in before.values() if f["rule_id"] == "B602"]
    assert len(shell) == 1
    assert shell[0]["severity"] == "critical"
    secret = next(f for f in before.values() if f["detector"] == "secrets")
    ignored = await client.patch(
        f"{API}/findings/{secret['id']}",
        json={"status": "ignored", "reason": "a documented example key"},
        headers=acme.member.headers,
    )
    assert ignored.status_code == 200
    assert ignored.json()["status"] == "ignored"

    # The one change: the shell=True call goes.
    git_repo.commit(
        {
            "app/shell.py": git_repo.path.joinpath("app/shell.py")
            .read_text()
            .replace("subprocess.call(command, shell=True)", "subprocess.call(command)")
        },
        "no shell",
    )
    second = await analyse(client, database, owner, repo["id"])
    assert second["status"] == "completed"
    assert (second["files_total"], second["files_analysed"]) == (6, 1)
    assert second["fixed_findings"] == 1
    after = {f["fingerprint"]: f for f in await _findings(client, acme, repository_id=repo["id"])}
    assert after[shell[0]["fingerprint"]]["status"] == "fixed"
    assert after[shell[0]["fingerprint"]]["fixed_analysis_id"] == second["id"]
    for fingerprint, finding in before.items():
        if fingerprint == shell[0]["fingerprint"]:
            continue
        kept = after[fingerprint]
        assert kept["id"] == finding["id"], "an unchanged finding keeps its id"
        expected = "ignored" if finding["id"] == secret["id"] else "open"
        assert kept["status"] == expected, (finding["rule_id"], kept["status"])
    # The plain call is a milder problem of its own, and the only new finding.
    (appeared,) = [f for f in after.values() if f["fingerprint"] not in before]
    assert (appeared["rule_id"], appeared["status"]) == ("B603", "new")
    assert second["new_findings"] == {appeared["severity"]: 1}
    in_second = {f["id"] for f in await _findings(client, acme, analysis_id=second["id"])}
    unchanged = {f["id"] for f in before.values()} - {shell[0]["id"]}
    assert in_second == unchanged | {appeared["id"]}

    # Lines added above the ignored secret: the same finding, still ignored.
    git_repo.commit(
        {
            "app/settings.py": "# configuration\n\nDEBUG = False\n"
            + (git_repo.path / "app/settings.py").read_text()
        }
    )
    third = await analyse(client, database, owner, repo["id"])
    assert third["files_analysed"] == 1
    assert third["fixed_findings"] == 0
    moved = next(f for f in await _findings(client, acme, detector="secrets"))
    assert moved["id"] == secret["id"]
    assert moved["status"] == "ignored"
    assert moved["line_start"] == secret["line_start"] + 3


async def test_a_second_trigger_while_one_is_queued_conflicts(
    client: httpx.AsyncClient, database: Database, acme: Tenants, git_repo: GitRepo
) -> None:
    repo = await register(client, acme.owner, git_repo.url)
    body = {"repository_id": repo["id"]}
    first = await client.post(f"{API}/analysis/trigger", json=body, headers=acme.member.headers)
    assert first.status_code == 202
    assert first.json()["status"] == "queued"
    again = await client.post(f"{API}/analysis/trigger", json=body, headers=acme.member.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"
    usage = (await client.get(f"{API}/analysis/concurrency", headers=acme.viewer.headers)).json()
    assert usage["in_use"] == 1
    assert usage["limit"] == 10
    assert usage["available"] == 9
    await run_jobs(database)
    after = await client.post(f"{API}/analysis/trigger", json=body, headers=acme.member.headers)
    assert after.status_code == 202


async def test_the_plans_analyses_per_hour_are_enforced(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, git_repo: GitRepo
) -> None:
    """The free plan, a new organization's, starts two analyses an hour (seed 001); the
    third answers 429."""
    repo = await register(client, tenants.owner, git_repo.url)
    body = {"repository_id": repo["id"]}
    for _ in range(2):
        response = await client.post(
            f"{API}/analysis/trigger", json=body, headers=tenants.owner.headers
        )
        assert response.status_code == 202, response.text
        await run_jobs(database)
    third = await client.post(f"{API}/analysis/trigger", json=body, headers=tenants.owner.headers)
    assert third.status_code == 429
    assert third.json()["code"] == "rate_limited"
    assert third.json()["details"] == {"limit": 2, "window": "1 hour"}
    usage = (await client.get(f"{API}/analysis/concurrency", headers=tenants.owner.headers)).json()
    assert usage["started_last_hour"] == 2
    assert usage["analyses_per_hour"] == 2


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "invalid_input"),
        ({"repository_id": "repo_01NOPE"}, 404, "not_found"),
        ({"repository_id": "x", "ref": ""}, 400, "invalid_input"),
        ({"repository_id": "x", "extra": 1}, 400, "invalid_input"),
        ({"repository_id": "x", "ref": "-x"}, 400, "invalid_input"),
        ({"repository_id": "x", "ref": "main..evil"}, 400, "invalid_input"),
    ],
)
async def test_bad_triggers_are_refused(
    client: httpx.AsyncClient, acme: Tenants, body: dict, status: int, code: str
) -> None:
    response = await client.post(f"{API}/analysis/trigger", json=body, headers=acme.owner.headers)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    history = await client.get(f"{API}/analysis/history", headers=acme.owner.headers)
    assert history.json()["total"] == 0


async def test_a_ref_that_does_not_exist_fails_the_analysis_and_says_so(
    client: httpx.AsyncClient, database: Database, acme: Tenants, git_repo: GitRepo
) -> None:
    repo = await register(client, acme.owner, git_repo.url)
    response = await client.post(
        f"{API}/analysis/trigger",
        json={"repository_id": repo["id"], "ref": "no-such-branch"},
        headers=acme.owner.headers,
    )
    await run_jobs(database)
    status = (
        await client.get(
            f"{API}/analysis/{response.json()['id']}/status", headers=acme.owner.headers
        )
    ).json()
    assert status["status"] == "failed"
    assert "no-such-branch cannot be checked out" in status["error"]
    async with database.transaction() as session:
        types = list(await session.scalars(select(Event.type).order_by(Event.created_at)))
    assert "analysis.failed" in types
    assert "analysis.completed" not in types
    scans = (await client.get(f"{API}/repos/{repo['id']}/scans", headers=acme.owner.headers)).json()
    assert [s["status"] for s in scans["data"]] == ["failed"]


async def test_a_failing_quality_gate_is_recorded_and_announced(
    client: httpx.AsyncClient, database: Database, acme: Tenants, git_repo: GitRepo
) -> None:
    repo = await register(client, acme.owner, git_repo.url)
    gates = await client.patch(
        f"{API}/github/repos/{repo['id']}/quality-gates",
        json={"max_new_critical": None, "min_score": 99.5},
        headers=acme.member.headers,
    )
    assert gates.status_code == 200, gates.text
    assert gates.json()["quality_gates"]["min_score"] == 99.5
    assert gates.json()["quality_gates"]["max_new_critical"] is None
    await run_jobs(database)
    done = await analyse(client, database, acme.owner, repo["id"])
    assert done["gate_passed"] is False
    assert done["gate_reasons"] == [f"health score {done['health_score']} is below 99.5"]
    events = (
        await client.get(f"{API}/repos/{repo['id']}/events", headers=acme.owner.headers)
    ).json()["data"]
    # The dependency scan that follows every analysis writes its own entry; the analysis's
    # two come first among its own.
    analysis_kinds = [e["kind"] for e in events if e["kind"] != "dependencies_scanned"]
    assert analysis_kinds[:2] == ["gate_failed", "analysed"]
    async with database.transaction() as session:
        types = set(await session.scalars(select(Event.type)))
    assert {"analysis.completed", "analysis.gate_failed"} <= types

    loose = await client.patch(
        f"{API}/repos/{repo['id']}/quality-gates",
        json={"min_score": 1},
        headers=acme.member.headers,
    )
    assert loose.json()["quality_gates"]["min_score"] == 1
    bad = await client.patch(
        f"{API}/repos/{repo['id']}/quality-gates",
        json={"min_score": 101},
        headers=acme.member.headers,
    )
    assert bad.status_code == 400
    assert "min_score" in bad.text


async def test_another_organizations_analyses_and_findings_are_not_found(
    client: httpx.AsyncClient, database: Database, acme: Tenants, git_repo: GitRepo
) -> None:
    repo = await register(client, acme.owner, git_repo.url)
    await run_jobs(database)
    done = await analyse(client, database, acme.owner, repo["id"])
    finding = (await _findings(client, acme))[0]
    headers = acme.other_owner.headers
    for method, path, body in [
        ("GET", f"/analysis/{done['id']}/status", None),
        ("GET", f"/analysis/{done['id']}/progress", None),
        ("GET", f"/findings/{finding['id']}", None),
        ("PATCH", f"/findings/{finding['id']}", {"status": "ignored", "reason": "mine"}),
        ("GET", f"/repos/{repo['id']}/findings", None),
        ("GET", f"/repos/{repo['id']}/scans", None),
        ("PATCH", f"/repos/{repo['id']}/quality-gates", {"min_score": 1}),
        ("POST", "/analysis/trigger", {"repository_id": repo["id"]}),
    ]:
        response = await client.request(method, API + path, json=body, headers=headers)
        assert response.status_code == 404, (method, path, response.text)
    theirs = await client.get(f"{API}/findings", headers=headers)
    assert theirs.json()["total"] == 0
    summary = await client.get(f"{API}/findings/summary", headers=headers)
    assert summary.json()["total"] == 0


async def test_finding_filters_and_bad_ones(
    client: httpx.AsyncClient, database: Database, acme: Tenants, git_repo: GitRepo
) -> None:
    repo = await register(client, acme.owner, git_repo.url)
    await run_jobs(database)
    await analyse(client, database, acme.owner, repo["id"])
    everything = await _findings(client, acme)
    high = await _findings(client, acme, severity="high")
    assert high
    assert all(f["severity"] == "high" for f in high)
    in_app = await _findings(client, acme, path="app/shell")
    assert in_app
    assert {f["path"] for f in in_app} == {"app/shell.py"}
    assert await _findings(client, acme, path="app/%") == []
    mine = await client.get(f"{API}/repos/{repo['id']}/findings", headers=acme.viewer.headers)
    assert mine.json()["total"] == len(everything)
    for query, field in [({"severity": "dire"}, "severity"), ({"status": "gone"}, "status")]:
        bad = await client.get(f"{API}/findings", params=query, headers=acme.viewer.headers)
        assert bad.status_code == 400
        assert field in bad.text
    finding = everything[0]
    no_reason = await client.patch(
        f"{API}/findings/{finding['id']}", json={"status": "ignored"}, headers=acme.member.headers
    )
    assert no_reason.status_code == 400
    assert no_reason.json()["details"]["field"] == "reason"
    viewer = await client.patch(
        f"{API}/findings/{finding['id']}",
        json={"status": "ignored", "reason": "x"},
        headers=acme.viewer.headers,
    )
    assert viewer.status_code == 403


async def test_a_client_follows_every_stage_in_order_to_the_final_status(
    app: FastAPI, client: httpx.AsyncClient, database: Database, acme: Tenants, git_repo: GitRepo
) -> None:
    repo = await register(client, acme.owner, git_repo.url)
    await run_jobs(database)
    started = await client.post(
        f"{API}/analysis/trigger", json={"repository_id": repo["id"]}, headers=acme.owner.headers
    )
    url = f"{API}/analysis/{started.json()['id']}/progress"
    following = asyncio.create_task(client.get(url, headers=acme.viewer.headers, timeout=60))
    await asyncio.sleep(0.3)
    worker = Worker(database, JobSettings(poll_seconds=0.05))
    running = asyncio.create_task(worker.run())
    try:
        response = await asyncio.wait_for(following, 60)
    finally:
        worker.stop()
        await running
    assert response.status_code == 200
    events = parse_events(response.text)
    assert events[-1]["event"] == "end"
    final = events[-1]["data"]
    assert final["status"] == "succeeded"
    assert final["analysis_id"] == started.json()["id"]
    names = ["fetch", "checkout", *DETECTOR_ORDER, "scoring"]
    assert [(s["name"], s["status"]) for s in final["stages"]] == [
        (name, "succeeded") for name in names
    ]
    seen_running = [
        next(s["name"] for s in e["data"]["stages"] if s["status"] == "running")
        for e in events[:-1]
        if any(s["status"] == "running" for s in e["data"]["stages"])
    ]
    assert len(seen_running) > 1, "stages were streamed while they ran"
    assert seen_running == sorted(seen_running, key=names.index), "in order"


async def test_switching_a_detector_off_leaves_its_findings_as_they_were(
    client: httpx.AsyncClient, database: Database, acme: Tenants, git_repo: GitRepo
) -> None:
    """Not analysed is not fixed: turning the secrets detector off (or excluding a path)
    must not mark its findings fixed, nor make them new again when it comes back."""
    repo = await register(client, acme.owner, git_repo.url)
    await run_jobs(database)
    await analyse(client, database, acme.owner, repo["id"])
    (secret,) = await _findings(client, acme, detector="secrets")
    off = await client.put(
        f"{API}/repos/{repo['id']}/settings",
        json={"detectors": {"secrets": False}, "exclude_paths": ["app/shell.py"]},
        headers=acme.owner.headers,
    )
    assert off.status_code == 200
    second = await analyse(client, database, acme.owner, repo["id"])
    assert "secrets" not in second["detectors"]
    assert second["fixed_findings"] == 0
    assert second["new_findings"] == {}
    statuses = {f["status"] for f in await _findings(client, acme, repository_id=repo["id"])}
    assert statuses == {"open"}
    on = await client.put(f"{API}/repos/{repo['id']}/settings", json={}, headers=acme.owner.headers)
    assert on.status_code == 200
    third = await analyse(client, database, acme.owner, repo["id"])
    assert (third["fixed_findings"], third["new_findings"]) == (0, {})
    (again,) = await _findings(client, acme, detector="secrets")
    assert (again["id"], again["status"]) == (secret["id"], "open")
