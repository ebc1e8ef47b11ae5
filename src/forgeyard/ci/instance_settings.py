"""Instance-wide settings (seed 003's Settings API): where build artifacts are stored, and
preferences (the browser origins allowed by CORS, the instance's display name).

They belong to the whole instance, not to one organization, so changing them is for the
instance's operators: owners and admins (``instance:manage``) of the organization created at
first-run setup. Another organization's owner (anyone, when registration is open) may read the
preferences but not change them, nor read the artifact storage (it names buckets and keys).

Secret parts (the S3 secret key) are sealed with the instance's SecretBox inside the stored
value and never returned: a read shows ``secret_key_set``. Saving an S3 configuration without
``secret_key`` keeps the stored one when the access key is the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth import audit
from forgeyard.auth.principals import Principal
from forgeyard.ci.artifacts import ArtifactStore, LocalStore, check_endpoint, from_config
from forgeyard.kernel.db import utcnow
from forgeyard.kernel.errors import ForbiddenError
from forgeyard.kernel.http import BlockedDestinationError, OutboundPolicy
from forgeyard.kernel.keys import instance_secret_box
from forgeyard.models.identity import InstanceSetup, Membership
from forgeyard.models.integrations import InstanceSetting
from forgeyard.settings import Settings

ARTIFACT_STORAGE = "artifact_storage"
PREFERENCES = "preferences"
SEALED_FIELDS = ("secret_key",)
_SEALED_PREFIX = "sealed_"
_STORES: dict[str, ArtifactStore] = {}  # stored configuration -> its store, built once
_MAX_CACHED_STORES = 8


# --- who may change them --------------------------------------------------------------------


async def operator_organization_id(*, session: AsyncSession) -> str | None:
    """The organization made at first-run setup: its owner's first membership. (identity has
    no look-up for it; these tables are read, never written, here.)"""
    owner = await session.scalar(select(InstanceSetup.owner_user_id).where(InstanceSetup.id == 1))
    if owner is None:
        return None
    return await session.scalar(
        select(Membership.organization_id)
        .where(Membership.user_id == owner)
        .order_by(Membership.id)
        .limit(1)
    )


async def check_operator(*, session: AsyncSession, who: Principal) -> None:
    if who.organization_id != await operator_organization_id(session=session):
        raise ForbiddenError(
            "instance settings belong to the instance's operators (the organization created "
            "at first-run setup)",
            details={"permission": "instance:manage", "scope": "instance"},
        )


# --- stored values --------------------------------------------------------------------------


async def _stored(session: AsyncSession, key: str) -> dict[str, Any] | None:
    row = await session.get(InstanceSetting, key)
    return dict(row.value) if row is not None else None


async def _save(session: AsyncSession, who: Principal, key: str, value: dict[str, Any]) -> None:
    row = await session.get(InstanceSetting, key)
    if row is None:
        row = InstanceSetting(key=key)
        session.add(row)
    row.value = value
    row.updated_at = utcnow()
    row.updated_by = who.actor_id
    await session.flush()
    await audit.record(
        session,
        action="instance_settings.updated",
        organization_id=who.organization_id,
        actor_id=who.actor_id,
        details={"key": key},
    )


def _seal(settings: Settings, config: dict[str, Any]) -> dict[str, Any]:
    box = instance_secret_box(settings)
    sealed = {k: v for k, v in config.items() if k not in SEALED_FIELDS}
    for field in SEALED_FIELDS:
        if config.get(field):
            sealed[_SEALED_PREFIX + field] = box.encrypt(config[field])
    return sealed


def _unseal(settings: Settings, stored: dict[str, Any]) -> dict[str, Any]:
    box = instance_secret_box(settings)
    config = {k: v for k, v in stored.items() if not k.startswith(_SEALED_PREFIX)}
    for field in SEALED_FIELDS:
        if stored.get(_SEALED_PREFIX + field):
            config[field] = box.decrypt(stored[_SEALED_PREFIX + field])
    return config


def _shown(stored: dict[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in stored.items() if not k.startswith(_SEALED_PREFIX)}
    if stored.get("kind") == "s3":
        shown["secret_key_set"] = bool(stored.get(_SEALED_PREFIX + "secret_key"))
    return shown


# --- artifact storage -----------------------------------------------------------------------


def default_root(settings: Settings) -> Path:
    return settings.data_dir / "artifacts"


async def get_artifact_storage(
    *, session: AsyncSession, who: Principal, settings: Settings
) -> dict[str, Any]:
    """The configuration as shown: secrets left out, the default when none is saved."""
    await check_operator(session=session, who=who)
    stored = await _stored(session, ARTIFACT_STORAGE)
    if stored is None:
        return {"kind": "local", "path": str(default_root(settings)), "configured": False}
    return {**_shown(stored), "configured": True}


async def put_artifact_storage(
    *, session: AsyncSession, who: Principal, settings: Settings, config: dict[str, Any]
) -> dict[str, Any]:
    """Validates ``config``, proves the store works (``check()``), then saves it. Any refusal
    (400 naming the field, 502 ``storage_error`` from the store) saves nothing."""
    await check_operator(session=session, who=who)
    config = await _with_kept_secret(session, settings, config)
    store = from_config(config, default_local_root=default_root(settings))
    if config.get("kind") == "s3" and config.get("endpoint_url"):
        policy = OutboundPolicy.from_settings(settings.outbound)
        try:
            await check_endpoint(config["endpoint_url"], policy)
        except BlockedDestinationError as exc:
            exc.details["field"] = "endpoint_url"
            raise
    await store.check()
    sealed = _seal(settings, config)
    await _save(session, who, ARTIFACT_STORAGE, sealed)
    return {**_shown(sealed), "configured": True}


async def _with_kept_secret(
    session: AsyncSession, settings: Settings, config: dict[str, Any]
) -> dict[str, Any]:
    if config.get("kind") != "s3" or config.get("secret_key"):
        return config
    stored = await _stored(session, ARTIFACT_STORAGE)
    if stored is None or stored.get("kind") != "s3":
        return config
    kept = _unseal(settings, stored)
    if kept.get("access_key") != config.get("access_key") or not kept.get("secret_key"):
        return config  # a new key pair needs its own secret: from_config asks for it
    return {**config, "secret_key": kept["secret_key"]}


async def artifact_store(*, session: AsyncSession, settings: Settings) -> ArtifactStore:
    """The configured artifact store, else a LocalStore at ``<data_dir>/artifacts``."""
    stored = await _stored(session, ARTIFACT_STORAGE)
    if stored is None:
        return LocalStore(default_root(settings))
    fingerprint = json.dumps(stored, sort_keys=True) + str(default_root(settings))
    store = _STORES.get(fingerprint)
    if store is None:
        store = from_config(_unseal(settings, stored), default_local_root=default_root(settings))
        if len(_STORES) >= _MAX_CACHED_STORES:
            _STORES.clear()
        _STORES[fingerprint] = store
    return store


# --- preferences ----------------------------------------------------------------------------


async def get_preferences(*, session: AsyncSession, settings: Settings) -> dict[str, Any]:
    """Saved preferences; ``cors_origins`` falls back to FORGEYARD_CORS_ORIGINS and
    ``cors_origins_source`` says which applies."""
    stored = await _stored(session, PREFERENCES) or {}
    origins = stored.get("cors_origins")
    return {
        "cors_origins": origins if origins is not None else list(settings.cors_origins),
        "cors_origins_source": "settings" if origins is not None else "environment",
        "instance_name": stored.get("instance_name"),
    }


async def put_preferences(
    *, session: AsyncSession, who: Principal, settings: Settings, changes: dict[str, Any]
) -> dict[str, Any]:
    """Changes the given preferences; ``cors_origins: null`` goes back to the environment's."""
    await check_operator(session=session, who=who)
    stored = await _stored(session, PREFERENCES) or {}
    await _save(session, who, PREFERENCES, {**stored, **changes})
    return await get_preferences(session=session, settings=settings)


async def saved_cors_origins(*, session: AsyncSession) -> list[str] | None:
    """The origins saved in preferences; None when none are (the environment's apply)."""
    stored = await _stored(session, PREFERENCES) or {}
    origins = stored.get("cors_origins")
    return [str(origin) for origin in origins] if isinstance(origins, list) else None
