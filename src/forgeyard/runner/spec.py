"""What a runner agrees to run: a claimed build's spec, read only once its signature
verified against the key the runner trusts, and the environment each of its steps gets."""

from __future__ import annotations

import json
from pathlib import Path

from forgeyard.kernel.processes import scrubbed_env
from forgeyard.kernel.signing import KeyInvalid, SignatureInvalid, key_id, verify
from forgeyard.protocol.resolved import ResolvedPipeline, ResolvedStep
from forgeyard.protocol.runner import BuildSpec, ClaimedBuild


def read_spec(claimed: ClaimedBuild, public_key: str) -> tuple[BuildSpec, ResolvedPipeline]:
    """The claimed build's spec and pipeline, read only once its signature verified.
    ``SignatureInvalid`` or ``ValueError`` (a spec this runner cannot run) otherwise."""
    try:
        verify(public_key, claimed.spec.encode(), claimed.signature)
    except SignatureInvalid as exc:
        raise SignatureInvalid(f"{exc}{_other_key_note(claimed.key_id, public_key)}") from None
    spec = BuildSpec.model_validate_json(claimed.spec)
    if spec.build_id != claimed.build_id:  # a genuine spec replayed for another build
        raise ValueError(f"the signed spec is for build {spec.build_id}, not {claimed.build_id}")
    pipeline = ResolvedPipeline.from_json(json.dumps(spec.pipeline))
    if any(not 0 <= index < len(pipeline.steps) for index in spec.run):
        raise ValueError(f"the spec runs steps {spec.run}; the pipeline has {len(pipeline.steps)}")
    return spec, pipeline


def _other_key_note(server_key_id: str, public_key: str) -> str:
    """Names the server's key when it is not the one this runner expects: the usual cause
    after a key rotation, or a wrong ``--public-key``."""
    try:
        expected = key_id(public_key)
    except KeyInvalid:
        return ""
    return "" if expected == server_key_id else f" (the server signs with key {server_key_id})"


def step_environment(
    spec: BuildSpec, pipeline: ResolvedPipeline, step: ResolvedStep, *, home: Path
) -> dict[str, str]:
    """Exactly what a step sees: the pipeline's and the step's variables and the build's,
    over a scrubbed base. Nothing of the runner's own environment (its token) is in it."""
    return scrubbed_env(
        {
            **pipeline.environment(step),
            "CI": "true",
            "FORGEYARD_BUILD_ID": spec.build_id,
            "FORGEYARD_COMMIT": spec.commit,
            "FORGEYARD_STEP": step.name,
        },
        home=home,
    )
