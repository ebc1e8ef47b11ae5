"""Analysis events reach outgoing webhooks: a real receiver on loopback gets them signed."""

from __future__ import annotations

import httpx
import pytest

from forgeyard.kernel.db import Database
from forgeyard.settings import Settings
from forgeyard.webhooks import tasks as webhook_tasks
from tests.identity.conftest import Tenants
from tests.repos.conftest import API, GitRepo, analyse, register, run_jobs
from tests.webhooks.conftest import Receiver, receiver  # noqa: F401  (fixture)


async def test_a_failing_gate_is_delivered_to_the_subscribed_webhook(
    client: httpx.AsyncClient,
    database: Database,
    tenants: Tenants,
    git_repo: GitRepo,
    settings: Settings,
    receiver: Receiver,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.outbound.allowed_hosts = ["127.0.0.1"]
    monkeypatch.setattr(webhook_tasks, "get_settings", lambda: settings)
    hook = await client.post(
        f"{API}/webhooks",
        json={
            "url": f"{receiver.url}/hook",
            "events": ["analysis.completed", "analysis.gate_failed"],
        },
        headers=tenants.owner.headers,
    )
    assert hook.status_code == 201, hook.text
    repo = await register(client, tenants.owner, git_repo.url)
    gates = await client.patch(
        f"{API}/repos/{repo['id']}/quality-gates",
        json={"min_score": 99.5},
        headers=tenants.owner.headers,
    )
    assert gates.status_code == 200
    await run_jobs(database)
    done = await analyse(client, database, tenants.owner, repo["id"])
    await run_jobs(database)  # the events' dispatch and deliveries

    messages = [request.verify(hook.json()["secret"]) for request in receiver.at("/hook")]
    by_type = {message["type"]: message["data"] for message in messages}
    assert set(by_type) == {"analysis.completed", "analysis.gate_failed"}
    assert by_type["analysis.completed"]["analysis_id"] == done["id"]
    assert by_type["analysis.completed"]["health_score"] == done["health_score"]
    assert by_type["analysis.gate_failed"]["reasons"] == done["gate_reasons"]
    assert not any(message["type"] == "repo.registered" for message in messages)
