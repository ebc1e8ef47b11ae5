"""An artifact store from its saved configuration (``PUT /settings/artifact-storage``).

    {"kind": "local", "path": "/var/lib/forgeyard/artifacts"}
    {"kind": "s3", "endpoint_url": "https://minio.example:9000", "bucket": "artifacts",
     "region": "us-east-1", "access_key": "...", "secret_key": "...", "prefix": "ci"}

Every refusal is an :class:`InvalidInputError` whose message starts with the field's name and
whose ``details["field"]`` names it; no refusal echoes a value (one may be a secret key).
Building a store does no I/O: the caller then runs :func:`check_endpoint` on an S3 endpoint
and ``await store.check()`` before saving.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from forgeyard.ci.artifacts.local import LocalStore
from forgeyard.ci.artifacts.s3 import S3Store
from forgeyard.ci.artifacts.storage import ArtifactStore, InvalidKey, validate_key
from forgeyard.kernel.errors import InvalidInputError

KINDS = ("local", "s3")
_FIELDS = {
    "local": {"kind", "path"},
    "s3": {"kind", "endpoint_url", "bucket", "region", "access_key", "secret_key", "prefix"},
}
# S3's rules, loosened to what S3-compatible servers accept (dots and underscores).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
DEFAULT_REGION = "us-east-1"


def _invalid(field: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {message}", details={"field": field})


def _string(config: Mapping[str, Any], field: str, *, required: bool, max_len: int = 1024) -> str:
    value = config.get(field)
    if value is None or value == "":
        if required:
            raise _invalid(field, "is required")
        return ""
    if not isinstance(value, str):
        raise _invalid(field, "must be a string")
    if len(value) > max_len:
        raise _invalid(field, f"must be at most {max_len} characters")
    if value != value.strip():
        raise _invalid(field, "must not start or end with white space")
    return value


def _endpoint(value: str) -> str:
    field = "endpoint_url"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  # raises on a malformed port
    except ValueError:
        raise _invalid(field, "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid(field, "must be an absolute http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise _invalid(field, "must not contain a user name or password (use the key fields)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise _invalid(field, "must have no path, query or fragment (the bucket is separate)")
    return value.rstrip("/")


def from_config(
    config: Mapping[str, Any], *, default_local_root: Path | None = None
) -> ArtifactStore:
    """The store ``config`` describes; ``default_local_root`` serves a local config without a
    path (the instance's data directory)."""
    if not isinstance(config, Mapping):
        raise _invalid("kind", "the configuration must be an object with a kind")
    kind = config.get("kind")
    if kind not in KINDS:
        raise _invalid("kind", f"must be one of {', '.join(KINDS)}")
    unknown = sorted(str(name) for name in config if name not in _FIELDS[kind])
    if unknown:
        raise _invalid(unknown[0], f"is not a field of {kind} artifact storage")
    if kind == "local":
        return _local(config, default_local_root)
    return _s3(config)


def _local(config: Mapping[str, Any], default_root: Path | None) -> LocalStore:
    path = _string(config, "path", required=default_root is None, max_len=4096)
    if not path:
        assert default_root is not None
        return LocalStore(default_root)
    if "\x00" in path:
        raise _invalid("path", "must not contain a NUL character")
    if not Path(path).is_absolute():
        raise _invalid("path", "must be an absolute path")
    return LocalStore(Path(path))


def _s3(config: Mapping[str, Any]) -> S3Store:
    endpoint = _string(config, "endpoint_url", required=False, max_len=2048)
    bucket = _string(config, "bucket", required=True, max_len=63)
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise _invalid(
            "bucket", "must be 3 to 63 lower-case letters, digits, dots, hyphens or underscores"
        )
    region = _string(config, "region", required=False, max_len=63) or DEFAULT_REGION
    if not _REGION.fullmatch(region):
        raise _invalid("region", "must be lower-case letters, digits and hyphens (us-east-1)")
    access_key = _string(config, "access_key", required=True, max_len=256)
    secret_key = _string(config, "secret_key", required=True, max_len=256)
    prefix = _string(config, "prefix", required=False, max_len=512).strip("/")
    if prefix:
        try:
            validate_key(prefix)
        except InvalidKey as exc:
            raise _invalid("prefix", exc.message) from None
    return S3Store(
        endpoint_url=_endpoint(endpoint) if endpoint else None,
        bucket=bucket,
        region=region,
        access_key=access_key,
        secret_key=secret_key,
        prefix=prefix,
    )
