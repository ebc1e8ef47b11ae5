"""All configuration in one object, read from ``FORGEYARD_*`` variables and ``.env``.

Nested areas use ``__`` in variable names (``FORGEYARD_HTTP__MAX_BODY_BYTES``); the most
common settings stay flat (``FORGEYARD_DATABASE_URL``) because operators type them most.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The origins a local front end uses during development (seed 003).
DEFAULT_CORS_ORIGINS = [
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    "http://localhost:4173",
    "http://127.0.0.1:4173",
]


class HttpSettings(BaseModel):
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024,
        gt=0,
        description="Largest request body accepted, in bytes; larger ones answer 413.",
    )


class DatabaseSettings(BaseModel):
    pool_size: int = Field(default=10, gt=0, description="Connections kept open (PostgreSQL).")
    max_overflow: int = Field(
        default=10, ge=0, description="Extra connections allowed above the pool (PostgreSQL)."
    )
    sqlite_busy_timeout_ms: int = Field(
        default=5000, ge=0, description="How long SQLite waits on a locked database before failing."
    )
    echo: bool = Field(default=False, description="Log every SQL statement (debugging only).")


class OutboundSettings(BaseModel):
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Comma-separated host names, addresses or networks (CIDR) that outgoing requests to "
            "user-given URLs may reach although they are private, loopback or link-local."
        ),
    )
    timeout_seconds: float = Field(
        default=10.0, gt=0, description="Connect and read timeout of one outgoing request."
    )
    max_response_bytes: int = Field(
        default=64 * 1024, gt=0, description="Most of a response body read and kept, in bytes."
    )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [host.strip() for host in value.split(",") if host.strip()]
        return value


class JobSettings(BaseModel):
    workers: int = Field(
        default=2, ge=0, description="Job workers `forgeyard serve` runs in-process (0: none)."
    )
    concurrency: int = Field(
        default=8, gt=0, description="Jobs one worker runs at once (handlers are async)."
    )
    claim_batch: int = Field(
        default=10, gt=0, description="Most jobs a worker claims in one round trip."
    )
    lease_seconds: float = Field(
        default=30.0, gt=0, description="How long a claim lasts without a heartbeat."
    )
    poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Longest an idle worker waits before looking for work without a wake-up.",
    )
    shutdown_grace_seconds: float = Field(
        default=10.0, ge=0, description="How long a stopping worker waits for running jobs."
    )
    retention_days: int = Field(
        default=30,
        gt=0,
        description="Finished jobs, dispatched events and webhook deliveries older than this "
        "are deleted by the cleanup job.",
    )


class AnalysisSettings(BaseModel):
    processes: int = Field(
        default=2, gt=0, description="Detector subprocesses one analysis runs at once (cores)."
    )
    detector_time_limit_seconds: float = Field(
        default=900.0, gt=0, description="Longest one detector may run on one batch of files."
    )
    git_time_limit_seconds: float = Field(
        default=600.0, gt=0, description="Longest one clone, fetch or push may take."
    )
    max_file_bytes: int = Field(
        default=2 * 1024 * 1024,
        gt=0,
        description="Files larger than this are reported by the large-file check, not parsed.",
    )
    allow_local_clones: bool = Field(
        default=False,
        description="Let repositories be registered by local path or file:// URL (a server "
        "reading its own disk on a user's behalf: allow it only where every user may).",
    )
    allow_ssh_clones: bool = Field(
        default=False,
        description="Let repositories be registered by ssh URL. git then uses the server's "
        "own ssh keys and known hosts: allow it only where one organization uses the server.",
    )
    git_upload_minutes: int = Field(
        default=60, gt=0, description="How long a git-upload push URL and its token work."
    )
    max_push_bytes: int = Field(
        default=1024 * 1024 * 1024, gt=0, description="Largest git push a git-upload accepts."
    )
    max_archive_bytes: int = Field(
        default=200 * 1024 * 1024, gt=0, description="Largest archive an upload session accepts."
    )
    max_archive_expanded_bytes: int = Field(
        default=1024 * 1024 * 1024, gt=0, description="Most bytes an archive may expand to."
    )
    max_archive_members: int = Field(
        default=50_000, gt=0, description="Most files and folders an archive may hold."
    )
    max_archive_ratio: float = Field(
        default=100.0,
        gt=1,
        description="Largest expanded-to-compressed ratio, per member and overall (zip bombs).",
    )


class CiSettings(BaseModel):
    lease_seconds: int = Field(
        default=60,
        ge=3,
        description="How long a runner holds a build unheard (it sends a heartbeat every third).",
    )
    lease_lost_policy: Literal["requeue", "fail"] = Field(
        default="requeue",
        description="What becomes of a build whose runner stopped heartbeating.",
    )
    max_attempts: int = Field(
        default=3, gt=0, description="Claims of one build before a lost lease fails it."
    )
    max_log_bytes: int = Field(
        default=4 * 1024 * 1024, gt=0, description="A build's log is cut past this size."
    )
    max_artifact_bytes: int = Field(
        default=1024 * 1024 * 1024, gt=0, description="The largest artifact a runner may upload."
    )
    stream_token_seconds: int = Field(
        default=300, gt=0, description="How long a log-stream token may be used to connect."
    )
    download_link_seconds: int = Field(
        default=300, gt=0, description="How long an artifact download link is valid (once)."
    )
    signing_key: SecretStr | None = Field(
        default=None,
        description=(
            "Ed25519 key builds are signed with (base64url seed or PKCS#8 PEM). Default: "
            "derived from the instance secret key, so every replica signs alike."
        ),
    )


class DepsSettings(BaseModel):
    pypi_index_url: str | None = Field(
        default=None,
        description="The PyPI simple index (…/simple/) looked up and installed from, unless a "
        "repository or organization names its own; unset: Python dependencies get a "
        "registry_error saying so.",
    )
    npm_registry_url: str | None = Field(
        default=None,
        description="The npm registry looked up and installed from, unless one is configured; "
        "unset: npm dependencies get a registry_error saying so.",
    )
    osv_database: str | None = Field(
        default=None,
        description="An OSV export (a folder of JSON files or a zip, per ecosystem) read for "
        "known vulnerabilities; refreshed when the file changes.",
    )
    lookup_concurrency: int = Field(
        default=16, gt=0, description="Registry look-ups in flight at once per registry."
    )
    install_time_limit_seconds: float = Field(
        default=900.0, gt=0, description="Longest an update job's install stage may run."
    )
    test_time_limit_seconds: float = Field(
        default=1800.0, gt=0, description="Longest an update job's test stage may run."
    )
    max_output_bytes: int = Field(
        default=256 * 1024, gt=0, description="Output kept per command of an update job."
    )


class PlanLimits(BaseModel):
    api_calls_per_minute: int = Field(gt=0, description="Authenticated requests per minute.")
    concurrent_requests: int = Field(gt=0, description="Requests in flight at once.")
    analyses_per_hour: int | None = Field(description="Analyses started per hour; None: no cap.")
    concurrent_analyses: int = Field(
        default=2, gt=0, description="Analyses queued or running at once for the organization."
    )


def _default_plans() -> dict[str, PlanLimits]:
    # Seeds 000, 001 and 002 agree on these figures per plan.
    return {
        "free": PlanLimits(
            api_calls_per_minute=60,
            concurrent_requests=20,
            analyses_per_hour=2,
            concurrent_analyses=1,
        ),
        "growth": PlanLimits(
            api_calls_per_minute=100,
            concurrent_requests=20,
            analyses_per_hour=10,
            concurrent_analyses=2,
        ),
        "pro": PlanLimits(
            api_calls_per_minute=300,
            concurrent_requests=20,
            analyses_per_hour=20,
            concurrent_analyses=5,
        ),
        "enterprise": PlanLimits(
            api_calls_per_minute=1000,
            concurrent_requests=20,
            analyses_per_hour=None,
            concurrent_analyses=10,
        ),
    }


class AuthSettings(BaseModel):
    issuer: str = Field(default="forgeyard", description="The iss claim of access tokens.")
    audience: str = Field(default="forgeyard-api", description="The aud claim of access tokens.")
    access_token_minutes: int = Field(
        default=60, gt=0, description="Access token lifetime (seed 000 uses 24 h: 1440)."
    )
    refresh_token_days: int = Field(default=30, gt=0, description="Refresh token lifetime.")
    refresh_reuse_grace_seconds: int = Field(
        default=10,
        ge=0,
        description=(
            "A rotated refresh token presented again within this window (a client that lost "
            "the response) is answered instead of revoking the family."
        ),
    )
    principal_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description=(
            "How long a replica remembers a credential's role and plan. Changes through the "
            "same replica apply at once; other replicas see them within this time. 0: off."
        ),
    )
    registration: Literal["invite", "open"] = Field(
        default="invite",
        description="open: anyone may register a new organization; invite: invited addresses only.",
    )
    bootstrap_token_minutes: int = Field(default=60, gt=0, description="First-run token TTL.")
    setup_session_minutes: int = Field(
        default=30, gt=0, description="Setup session TTL, renewed on every use."
    )
    invitation_days: int = Field(default=7, gt=0, description="How long an invitation is valid.")
    password_reset_minutes: int = Field(default=30, gt=0, description="Reset link lifetime.")
    login_failures_per_account: str = Field(
        default="5/15minutes", description="Failed sign-ins allowed per address (limits syntax)."
    )
    login_failures_per_client: str = Field(
        default="20/15minutes", description="Failed sign-ins allowed per client IP."
    )
    bootstrap_failures: str = Field(
        default="5/15minutes", description="Wrong bootstrap tokens allowed per client IP."
    )
    cookie_secure: bool = Field(
        default=True, description="Send the session cookie over HTTPS only (off for plain HTTP)."
    )
    plans: dict[str, PlanLimits] = Field(
        default_factory=_default_plans, description="Rate limits of each plan."
    )


class GitHubSettings(BaseModel):
    client_id: str | None = Field(default=None, description="GitHub OAuth app client id.")
    client_secret: SecretStr | None = Field(default=None, description="Its client secret.")
    web_url: str = Field(
        default="https://github.com", description="Where GitHub's OAuth pages live (GHES: yours)."
    )
    api_url: str = Field(default="https://api.github.com", description="GitHub's REST API.")
    app_id: str | None = Field(
        default=None,
        description="The GitHub App's id (its settings page), the issuer of its JWTs; "
        "unset: GitHub integrations are off.",
    )
    app_slug: str | None = Field(
        default=None,
        description="The GitHub App's URL name: installs start at <web_url>/apps/<slug>.",
    )
    private_key: SecretStr | None = Field(
        default=None,
        description="The GitHub App's private key (PEM), which signs its RS256 JWTs.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="The GitHub App's webhook secret: POST /webhooks/github checks "
        "X-Hub-Signature-256 with it.",
    )


class GitLabSettings(BaseModel):
    redirect_uri: str | None = Field(
        default=None,
        description="Where GitLab sends people back after they authorize Forgeyard (register "
        "it in the GitLab application); that page posts code and state to "
        "/integrations/gitlab/authorize. Default: <public_url>/integrations/gitlab/callback.",
    )
    scopes: str = Field(
        default="read_api read_repository",
        description="OAuth scopes asked for: listing projects and cloning them.",
    )


class MailSettings(BaseModel):
    smtp_host: str | None = Field(default=None, description="SMTP server; unset: mail is logged.")
    smtp_port: int = Field(default=587, description="SMTP port.")
    smtp_username: str | None = Field(default=None, description="SMTP user name.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    starttls: bool = Field(default=True, description="Upgrade the connection with STARTTLS.")
    sender: str = Field(default="forgeyard@localhost", description="The From address.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FORGEYARD_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Field(
        default=Path(".forgeyard"),
        description="Where the embedded database, the generated secret key and mirrors live.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the database. Default: SQLite file forgeyard.db in the data dir. "
            "postgresql://user@host/db selects PostgreSQL (psycopg 3)."
        ),
    )
    listen: str = Field(
        default="127.0.0.1:8000",
        description="HOST:PORT the API server binds to ([::1]:8000 for IPv6).",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL for shared rate limits and live-progress fan-out across replicas.",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="json for log shippers, console for people; auto picks console on a TTY.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level of log lines written."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_CORS_ORIGINS),
        description="Comma-separated origins allowed to call the API from a browser.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key material for signing and encryption. When unset, one is generated on first "
            "start into the data dir (mode 0600). Every replica must share the same key."
        ),
    )
    migrate_on_start: bool = Field(
        default=True, description="Upgrade the database schema when the server starts."
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The address people use to reach this server; links in e-mails start here.",
    )
    auth: AuthSettings = Field(
        default_factory=AuthSettings, description="Sign-in, tokens, setup, rate limits."
    )
    mail: MailSettings = Field(default_factory=MailSettings, description="Outgoing e-mail.")
    github: GitHubSettings = Field(
        default_factory=GitHubSettings,
        description="Sign-in with GitHub (an OAuth app) and GitHub integrations (a GitHub App).",
    )
    gitlab: GitLabSettings = Field(
        default_factory=GitLabSettings, description="GitLab integrations (OAuth applications)."
    )
    http: HttpSettings = Field(default_factory=HttpSettings, description="HTTP server limits.")
    db: DatabaseSettings = Field(
        default_factory=DatabaseSettings, description="Database pool and driver tuning."
    )
    outbound: OutboundSettings = Field(
        default_factory=OutboundSettings,
        description="Requests to user-given URLs (webhooks, registries, forges).",
    )
    jobs: JobSettings = Field(
        default_factory=JobSettings, description="The job engine: workers, leases, retention."
    )
    analysis: AnalysisSettings = Field(
        default_factory=AnalysisSettings,
        description="Repositories and code analysis: detectors, git, uploads and archives.",
    )
    deps: DepsSettings = Field(
        default_factory=DepsSettings,
        description="Dependency updates: registries, vulnerabilities, update job limits.",
    )
    ci: CiSettings = Field(
        default_factory=CiSettings,
        description="CI: runner leases, log and artifact limits, pipeline signing.",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_listen(self.listen)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'forgeyard.db').resolve()}"


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` as a (host, port) pair."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"listen address must be HOST:PORT, got {value!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


@lru_cache
def get_settings() -> Settings:
    return Settings()
