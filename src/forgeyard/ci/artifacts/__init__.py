"""Build artifact storage: one interface, local filesystem by default, S3-compatible when an
admin configures it (``PUT /settings/artifact-storage`` builds the store with
:func:`from_config`, refuses a private endpoint with :func:`check_endpoint`, then saves only
after ``await store.check()`` passes)."""

from forgeyard.ci.artifacts.config import from_config
from forgeyard.ci.artifacts.local import LocalStore
from forgeyard.ci.artifacts.s3 import S3Store, check_endpoint
from forgeyard.ci.artifacts.storage import (
    ArtifactNotFound,
    ArtifactStore,
    ArtifactStream,
    InvalidKey,
    StorageError,
    StoredObject,
    validate_key,
)

__all__ = [
    "ArtifactNotFound",
    "ArtifactStore",
    "ArtifactStream",
    "InvalidKey",
    "LocalStore",
    "S3Store",
    "StorageError",
    "StoredObject",
    "check_endpoint",
    "from_config",
    "validate_key",
]
