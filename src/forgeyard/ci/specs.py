"""What a runner is given for a build, and the key that signs it.

The server signs the exact text of each build's :class:`~forgeyard.protocol.runner.BuildSpec`
(the resolved pipeline, the commit, the build's id and which steps to run), so a spec cannot
be replayed against another commit or build, nor changed in the database without the runner
noticing.
"""

from __future__ import annotations

from functools import cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from forgeyard.kernel import signing
from forgeyard.kernel.crypto import derive_key
from forgeyard.kernel.keys import instance_secret
from forgeyard.protocol.resolved import ResolvedPipeline
from forgeyard.protocol.runner import BuildSpec
from forgeyard.settings import Settings


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The configured key, else one derived from the instance secret (the same on every
    replica that shares the secret, and nothing to store)."""
    if settings.ci.signing_key is not None:
        return _parsed_key(settings.ci.signing_key.get_secret_value())
    given = settings.secret_key.get_secret_value() if settings.secret_key else None
    return _derived_key(instance_secret(given, settings.data_dir))


def public_key(settings: Settings) -> str:
    return signing.public_key_text(signing_key(settings))


def key_id(settings: Settings) -> str:
    return signing.key_id(public_key(settings))


def signed_spec(
    settings: Settings,
    *,
    build_id: str,
    commit: str,
    repository: str,
    pipeline: ResolvedPipeline,
    run: list[int],
) -> tuple[str, str]:
    """The spec's text and its signature."""
    spec = BuildSpec(
        build_id=build_id,
        commit=commit,
        repository=repository,
        pipeline=pipeline.to_dict(),
        run=run,
        max_log_bytes=settings.ci.max_log_bytes,
    )
    text = signing.canonical_json(spec.model_dump()).decode()
    return text, signing.sign(signing_key(settings), text.encode())


def pipeline_of(spec_text: str) -> ResolvedPipeline:
    """The resolved pipeline inside a stored spec (a retry runs it again)."""
    spec = BuildSpec.model_validate_json(spec_text)
    return ResolvedPipeline.from_json(signing.canonical_json(spec.pipeline))


@cache
def _parsed_key(text: str) -> Ed25519PrivateKey:
    return signing.private_key_from_text(text)


@cache
def _derived_key(secret: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(derive_key(secret, "pipeline-signing"))
