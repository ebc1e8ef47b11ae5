"""Request and response shapes of forge integrations, GitHub installations and instance
settings (seed 003's Integrations and Settings APIs, seed 001's GitHub installations)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

IntegrationKindName = Literal["github", "gitlab"]
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _forge_path(value: str) -> str:
    parts = value.split("/")
    if len(parts) < 2 or any(p in ("", ".", "..") for p in parts):
        raise ValueError("a repository's path on the forge: owner/name (or group/sub/name)")
    return value


ForgePath = Annotated[
    str,
    Field(min_length=3, max_length=500, pattern=r"^[A-Za-z0-9_.\-/]+$"),
    AfterValidator(_forge_path),
]


def _origin(value: str) -> str:
    """``scheme://host[:port]`` as a browser sends it: lower case, no default port."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError("not a valid origin") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("an origin is http:// or https:// and a host")
    if parts.username or parts.password or parts.path not in ("", "/"):
        raise ValueError("an origin is only scheme://host[:port], without a path or user")
    if parts.query or parts.fragment or value.endswith("?") or value.endswith("#"):
        raise ValueError("an origin has no query or fragment")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    shown_port = "" if port in (None, _DEFAULT_PORTS[parts.scheme]) else f":{port}"
    return f"{parts.scheme}://{host}{shown_port}"


Origin = Annotated[str, Field(min_length=8, max_length=300), AfterValidator(_origin)]


# --- integrations ---------------------------------------------------------------------------


class IntegrationOut(BaseModel):
    id: str
    kind: str
    name: str
    status: str
    external_id: str | None = Field(description="GitHub: the installation id.")
    config: dict[str, Any] = Field(description="What may be shown; secrets never are.")
    repositories_count: int
    enabled_count: int
    created_at: datetime
    updated_at: datetime


class ForgeRepositoryOut(BaseModel):
    id: str
    integration_id: str
    forge_repo_id: str
    full_name: str
    clone_url: str | None
    default_branch: str | None
    private: bool
    enabled: bool = Field(description="Whether its pushes and pull requests build here.")
    repository_id: str | None = Field(description="The Forgeyard repository it is linked to.")


class StartedOut(BaseModel):
    url: str = Field(description="Send the person there (GitHub App install, GitLab authorize).")
    state: str = Field(description="Single use, valid 10 minutes; give it back to finish.")


class GitHubCompleteIn(Strict):
    installation_id: int = Field(gt=0, lt=2**53, description="GitHub's installation_id.")
    state: str = Field(min_length=1, max_length=200)


class GitLabStartIn(Strict):
    base_url: str = Field(
        min_length=8, max_length=2048, description="The GitLab instance: https://gitlab.com"
    )
    client_id: str = Field(min_length=1, max_length=255, description="The GitLab application id.")
    client_secret: str = Field(min_length=1, max_length=500, description="Its secret.")


class GitLabAuthorizeIn(Strict):
    code: str = Field(min_length=1, max_length=2000)
    state: str = Field(min_length=1, max_length=200)


class GitLabAuthorizedOut(BaseModel):
    integration: IntegrationOut
    webhook_url: str = Field(description="Add it as a webhook of each project (or group).")
    webhook_token: str = Field(
        description="The webhook's secret token (X-Gitlab-Token); shown only this once."
    )


# --- GitHub installations (seed 001) --------------------------------------------------------


class InstallationOut(BaseModel):
    id: str = Field(description="The integration's id, used in /github/installations/{id}.")
    installation_id: int
    account: str
    account_type: str
    repository_selection: str | None
    status: str
    repositories_count: int
    enabled_count: int
    created_at: datetime


class RepositoriesToggleIn(Strict):
    repositories: list[ForgePath] = Field(
        min_length=1, max_length=100, description="Full names: owner/name."
    )
    enabled: bool


class RepositoriesToggledOut(BaseModel):
    data: list[ForgeRepositoryOut]


# --- instance settings ----------------------------------------------------------------------


class ArtifactStorageIn(Strict):
    """``local`` (``path``, absolute; default the data dir) or ``s3`` (bucket, keys...). Leave
    ``secret_key`` out to keep the stored one for the same access key."""

    kind: Literal["local", "s3"]
    path: str | None = Field(default=None, max_length=4096)
    endpoint_url: str | None = Field(default=None, max_length=2048)
    bucket: str | None = Field(default=None, max_length=63)
    region: str | None = Field(default=None, max_length=63)
    access_key: str | None = Field(default=None, max_length=256)
    secret_key: str | None = Field(default=None, max_length=256)
    prefix: str | None = Field(default=None, max_length=512)


class ArtifactStorageOut(BaseModel):
    kind: str
    configured: bool = Field(description="False: nothing saved, the default applies.")
    path: str | None = None
    endpoint_url: str | None = None
    bucket: str | None = None
    region: str | None = None
    access_key: str | None = None
    prefix: str | None = None
    secret_key_set: bool | None = Field(default=None, description="s3: a secret key is stored.")


class PreferencesIn(Strict):
    cors_origins: list[Origin] | None = Field(
        default=None,
        max_length=50,
        description="Browser origins allowed to call the API; null: FORGEYARD_CORS_ORIGINS.",
    )
    instance_name: str | None = Field(
        default=None, min_length=1, max_length=100, description="Shown in the dashboard."
    )


class PreferencesOut(BaseModel):
    cors_origins: list[str]
    cors_origins_source: Literal["settings", "environment"]
    instance_name: str | None
