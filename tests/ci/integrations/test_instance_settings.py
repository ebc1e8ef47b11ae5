"""GET/PUT /settings/artifact-storage and /settings/preferences, and CORS origins that follow
the preferences (seed 003): checked before saving, secrets never shown, instance operators only.
S3 runs against moto_server on loopback (tests/ci/test_artifact_storage.py)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from forgeyard.api.middleware import CorsOrigins
from forgeyard.ci import instance_settings
from forgeyard.ci.artifacts import LocalStore, S3Store
from forgeyard.settings import Settings
from tests.ci.integrations.conftest import S3_BUCKET, assert_error, call, field_of
from tests.identity.conftest import Tenants

SECRET = "moto-secret-that-must-never-be-shown"


def s3_config(endpoint: str, **overrides: str) -> dict[str, str]:
    return {
        "kind": "s3",
        "endpoint_url": endpoint,
        "bucket": S3_BUCKET,
        "region": "us-east-1",
        "access_key": "test",
        "secret_key": SECRET,
        "prefix": "settings-test",
    } | overrides


async def test_the_default_is_local_storage_in_the_data_dir(
    client: httpx.AsyncClient, tenants: Tenants, app: FastAPI, settings: Settings
) -> None:
    shown = await call(client, "GET", "/settings/artifact-storage", tenants.viewer)
    assert shown.status_code == 200, shown.text
    assert shown.json()["kind"] == "local"
    assert shown.json()["configured"] is False
    async with app.state.database.transaction() as session:
        store = await instance_settings.artifact_store(session=session, settings=settings)
    assert isinstance(store, LocalStore)


async def test_s3_storage_is_checked_saved_and_its_secret_never_shown(
    client: httpx.AsyncClient,
    tenants: Tenants,
    app: FastAPI,
    settings: Settings,
    moto_endpoint: str,
) -> None:
    saved = await call(
        client, "PUT", "/settings/artifact-storage", tenants.admin, s3_config(moto_endpoint)
    )
    assert saved.status_code == 200, saved.text
    shown = await call(client, "GET", "/settings/artifact-storage", tenants.viewer)
    assert shown.json() | {"configured": True} == shown.json()
    assert shown.json()["secret_key_set"] is True
    assert shown.json()["bucket"] == S3_BUCKET
    assert SECRET not in saved.text + shown.text
    async with app.state.database.transaction() as session:
        store = await instance_settings.artifact_store(session=session, settings=settings)
        row = await instance_settings._stored(session, instance_settings.ARTIFACT_STORAGE)
    assert isinstance(store, S3Store)
    assert store.bucket == S3_BUCKET
    assert SECRET not in str(row)  # sealed at rest
    # The same access key without a secret keeps the stored secret (a form that shows none).
    kept = s3_config(moto_endpoint, prefix="renamed")
    del kept["secret_key"]
    again = await call(client, "PUT", "/settings/artifact-storage", tenants.owner, kept)
    assert again.status_code == 200, again.text
    assert again.json()["prefix"] == "renamed"
    assert again.json()["secret_key_set"] is True


async def test_a_store_that_fails_its_check_answers_502_and_saves_nothing(
    client: httpx.AsyncClient, tenants: Tenants, moto_endpoint: str
) -> None:
    missing_bucket = s3_config(moto_endpoint, bucket="no-such-bucket-here")
    refused = await call(client, "PUT", "/settings/artifact-storage", tenants.owner, missing_bucket)
    body = assert_error(refused, 502, "storage_error")
    assert "no-such-bucket-here" in body["error"]
    assert SECRET not in refused.text
    shown = await call(client, "GET", "/settings/artifact-storage", tenants.owner)
    assert shown.json()["configured"] is False


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"kind": "ftp"}, "body.kind"),
        ({"kind": "local", "path": "relative/dir"}, "path"),
        ({"kind": "s3", "bucket": "Bad_Bucket!", "access_key": "a", "secret_key": "b"}, "bucket"),
        ({"kind": "s3", "bucket": "fine-bucket", "access_key": "a"}, "secret_key"),
        ({"kind": "local", "bucket": "only-for-s3"}, "bucket"),
        ({"kind": "local", "colour": "blue"}, "body.colour"),
    ],
)
async def test_bad_artifact_storage_names_the_field_and_saves_nothing(
    client: httpx.AsyncClient, tenants: Tenants, config: dict[str, str], field: str
) -> None:
    refused = await call(client, "PUT", "/settings/artifact-storage", tenants.owner, config)
    assert field_of(assert_error(refused, 400, "invalid_input")) == field
    shown = await call(client, "GET", "/settings/artifact-storage", tenants.owner)
    assert shown.json()["configured"] is False


async def test_an_s3_endpoint_on_a_private_address_is_refused(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    config = s3_config("http://10.1.2.3:9000")
    refused = await call(client, "PUT", "/settings/artifact-storage", tenants.owner, config)
    body = assert_error(refused, 400, "blocked_destination")
    assert body["details"]["field"] == "endpoint_url"


async def test_instance_settings_are_the_setup_organizations_to_change(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    """Globex's owner holds instance:manage in Globex, but these settings act on Acme too."""
    globex = tenants.other_owner
    for method, path, body in [
        ("PUT", "/settings/artifact-storage", {"kind": "local"}),
        ("GET", "/settings/artifact-storage", None),
        ("PUT", "/settings/preferences", {"cors_origins": ["https://evil.example"]}),
    ]:
        assert_error(await call(client, method, path, globex, body), 403, "forbidden")
    # Reading the preferences is anyone's (the browser sees the origins anyway).
    read = await call(client, "GET", "/settings/preferences", globex)
    assert read.status_code == 200
    assert "https://evil.example" not in read.json()["cors_origins"]


@pytest.mark.parametrize("role", ["member", "viewer"])
async def test_members_and_viewers_cannot_change_instance_settings(
    client: httpx.AsyncClient, tenants: Tenants, role: str
) -> None:
    account = tenants.by_role(role)
    for path, body in [
        ("/settings/artifact-storage", {"kind": "local"}),
        ("/settings/preferences", {"instance_name": "Mine"}),
    ]:
        refused = await call(client, "PUT", path, account, body)
        assert_error(refused, 403, "forbidden")
        assert refused.json()["details"] == {"permission": "instance:manage"}


async def test_preferences_fall_back_to_the_environment_then_win_over_it(
    client: httpx.AsyncClient, tenants: Tenants, settings: Settings
) -> None:
    before = await call(client, "GET", "/settings/preferences", tenants.viewer)
    assert before.json() == {
        "cors_origins": settings.cors_origins,
        "cors_origins_source": "environment",
        "instance_name": None,
    }
    body = {"cors_origins": ["HTTPS://App.Example:443", "http://localhost:5173/"]}
    saved = await call(client, "PUT", "/settings/preferences", tenants.owner, body)
    assert saved.status_code == 200, saved.text
    assert saved.json()["cors_origins"] == ["https://app.example", "http://localhost:5173"]
    assert saved.json()["cors_origins_source"] == "settings"
    named = await call(
        client, "PUT", "/settings/preferences", tenants.admin, {"instance_name": "CI"}
    )
    assert named.json()["instance_name"] == "CI"
    assert named.json()["cors_origins"] == ["https://app.example", "http://localhost:5173"]
    reset = await call(
        client, "PUT", "/settings/preferences", tenants.owner, {"cors_origins": None}
    )
    assert reset.json()["cors_origins_source"] == "environment"


@pytest.mark.parametrize(
    "origin",
    ["ftp://app.example", "https://app.example/path", "https://user@app.example", "*", "app"],
)
async def test_an_origin_that_is_not_scheme_host_port_is_refused(
    client: httpx.AsyncClient, tenants: Tenants, origin: str
) -> None:
    body = {"cors_origins": ["https://fine.example", origin]}
    refused = await call(client, "PUT", "/settings/preferences", tenants.owner, body)
    assert field_of(assert_error(refused, 400, "invalid_input")) == "body.cors_origins.1"
    shown = await call(client, "GET", "/settings/preferences", tenants.owner)
    assert shown.json()["cors_origins_source"] == "environment"


async def preflight(
    client: httpx.AsyncClient, origin: str, path: str = "/health"
) -> httpx.Response:
    headers = {"Origin": origin, "Access-Control-Request-Method": "GET"}
    return await client.options(path, headers=headers)


async def test_saved_origins_apply_to_cors_at_once_here(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    assert (await preflight(client, "https://app.example")).status_code == 400
    assert (await preflight(client, "http://localhost:3000")).status_code == 200  # environment
    body = {"cors_origins": ["https://app.example"]}
    assert (await call(client, "PUT", "/settings/preferences", tenants.owner, body)).is_success
    allowed = await preflight(client, "https://app.example")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert (await preflight(client, "http://localhost:3000")).status_code == 400  # settings win


async def test_the_forges_webhook_receivers_are_outside_cors(client: httpx.AsyncClient) -> None:
    answer = await preflight(client, "http://localhost:3000", "/api/v1/webhooks/github")
    assert "access-control-allow-origin" not in answer.headers


async def test_other_replicas_see_a_change_within_the_ttl() -> None:
    """Each process reads the saved origins again once its copy is older than the TTL."""
    now = [0.0]
    saved: list[str] | None = None
    reads = 0

    async def load() -> list[str] | None:
        nonlocal reads
        reads += 1
        return saved

    origins = CorsOrigins(["http://env.example"], load, ttl=5.0, clock=lambda: now[0])
    await origins.refresh_if_stale()
    assert origins.current == {"http://env.example"}
    saved = ["https://app.example"]  # saved through another replica
    now[0] = 4.9
    await origins.refresh_if_stale()
    assert origins.current == {"http://env.example"}
    assert reads == 1
    now[0] = 5.0
    await origins.refresh_if_stale()
    assert origins.current == {"https://app.example"}
    assert reads == 2
