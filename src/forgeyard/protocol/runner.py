"""The runner protocol: one HTTP interface between the server and its runners.

Every call but ``register`` carries ``Authorization: Bearer <runner token>``. Paths are under
the API prefix (``/api/v1``):

=======  ====================================================  =====================================
method   path                                                  body → answer
=======  ====================================================  =====================================
POST     /runners/register                                     RegisterRequest → RegisterResponse
PATCH    /runners/{runner_id}                                  RunnerUpdate → RunnerView
POST     /runners/{runner_id}/heartbeat                        Heartbeat → HeartbeatAnswer
POST     /runners/{runner_id}/claim                            ClaimRequest → ClaimedBuild, or 204
GET      /runners/{runner_id}/builds/{build_id}/source         → the commit's tree as a tar stream
POST     /runners/{runner_id}/builds/{build_id}/steps/{index}  StepReport → Ack
POST     /runners/{runner_id}/builds/{build_id}/logs           LogBatch → Ack
PUT      /runners/{runner_id}/builds/{build_id}/artifacts      raw bytes, ``?path=`` → ArtifactView
POST     /runners/{runner_id}/builds/{build_id}/finish         BuildResult → Ack
=======  ====================================================  =====================================

A claimed build is leased to its runner until ``lease_expires_at``; every heartbeat extends
the leases of the builds it names (send one every third of ``lease_seconds``, as Woodpecker's
agent does). A build whose lease ran out is re-queued or failed by the server's policy, and
every later report about it answers 409 with code ``lease_lost``: the runner stops it.

Cancellation reaches the runner in the answers: ``Ack.cancel`` and ``HeartbeatAnswer.cancel``.
The runner then stops the running step (SIGTERM to its process group, SIGKILL after the grace
period) and reports the step and the build ``cancelled``.

What to run comes as ``ClaimedBuild.spec``: the JSON text of a :class:`BuildSpec`, signed by the
server's Ed25519 key (``signature``). The runner verifies the signature over the exact bytes of
``spec`` (UTF-8) before it parses them, and refuses the build otherwise.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RUNNER_TOKEN_PREFIX = "fyr_"  # noqa: S105 - the visible prefix of runner tokens, not a secret
MAX_CLAIM_WAIT_SECONDS = 60
MAX_LOG_LINES_PER_BATCH = 5000
MAX_LOG_LINE_CHARS = 16 * 1024
LEASE_LOST = "lease_lost"  # the error code of a report about a build the runner no longer holds

Label = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
StepStatus = Literal["running", "succeeded", "failed", "skipped", "cancelled", "timed_out"]
FinalStatus = Literal["succeeded", "failed", "cancelled", "timed_out"]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(_Message):
    registration_token: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=100)
    labels: list[Label] = Field(default_factory=list, max_length=32)
    version: str | None = Field(default=None, max_length=64)


class RegisterResponse(_Message):
    id: str
    token: str = Field(description="The runner token; shown once, stored only as a hash.")
    name: str
    labels: list[str]
    pipeline_public_key: str = Field(
        description="The Ed25519 key builds are signed with (unpadded base64url)."
    )
    lease_seconds: int
    heartbeat_seconds: float


class RunnerUpdate(_Message):
    labels: list[Label] | None = Field(default=None, max_length=32)
    version: str | None = Field(default=None, max_length=64)
    status: Literal["online", "paused", "offline"] | None = None


class RunnerView(_Message):
    id: str
    name: str
    labels: list[str]
    version: str | None
    status: str
    last_seen_at: datetime | None


class Heartbeat(_Message):
    builds: list[str] = Field(default_factory=list, max_length=64)


class HeartbeatAnswer(_Message):
    lease_expires_at: datetime
    cancel: list[str] = Field(description="Builds to stop: their cancellation was asked.")
    lost: list[str] = Field(description="Builds this runner no longer holds: stop them.")


class ClaimRequest(_Message):
    wait_seconds: float = Field(default=30.0, ge=0, le=MAX_CLAIM_WAIT_SECONDS)


class BuildSpec(_Message):
    """What the runner runs; ``ClaimedBuild.spec`` is its JSON text, signed."""

    build_id: str
    commit: str
    repository: str
    pipeline: dict[str, Any] = Field(
        description="forgeyard.protocol.resolved.ResolvedPipeline.to_dict() of the pipeline."
    )
    run: list[int] = Field(
        description=(
            "Indexes of the steps to run. A retry of only the failed steps leaves out the "
            "ones that succeeded before; the others are already recorded."
        )
    )
    max_log_bytes: int


class ClaimedBuild(_Message):
    build_id: str
    lease_expires_at: datetime
    lease_seconds: int
    spec: str
    signature: str
    key_id: str


class StepReport(_Message):
    """A step started (``running``) or ended with ``status``."""

    status: StepStatus
    exit_code: int | None = None
    log_truncated: bool = False


class LogBatch(_Message):
    step: int = Field(ge=0)
    first_line: int = Field(ge=0, description="The step's line number of lines[0], from 0.")
    lines: list[Annotated[str, Field(max_length=MAX_LOG_LINE_CHARS)]] = Field(
        min_length=1, max_length=MAX_LOG_LINES_PER_BATCH
    )


class Ack(_Message):
    cancel: bool = Field(description="The build's cancellation was asked: stop it.")


class ArtifactView(_Message):
    id: str
    path: str
    size: int
    sha256: str


class BuildResult(_Message):
    status: FinalStatus
    error: str | None = Field(default=None, max_length=2000)
