"""The instance's secret key material: given by the operator, or generated once and kept."""

from __future__ import annotations

import os
import secrets
import tempfile
from functools import cache
from pathlib import Path

from forgeyard.kernel.crypto import SecretBox
from forgeyard.settings import Settings

SECRET_KEY_FILE = "secret.key"  # noqa: S105 - a file name, not a secret
_KEY_BYTES = 32


def load_or_create_secret_key(data_dir: Path) -> str:
    """The key stored in ``data_dir``, created with mode 0600 on first use.

    The key is written to a private temporary file and then hard-linked into place, which
    fails if the name exists: two processes starting at once agree on one complete key.
    """
    path = data_dir / SECRET_KEY_FILE
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        fd, tmp_name = tempfile.mkstemp(dir=data_dir, prefix=".secret-")  # mode 0600
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(_KEY_BYTES) + "\n")
            os.link(tmp_name, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp_name)
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"{path} is empty; delete it to generate a new key")
    return key


def instance_secret(given: str | None, data_dir: Path) -> str:
    """The operator's key when given, else the one generated into the data dir."""
    return given if given else load_or_create_secret_key(data_dir)


def instance_secret_box(settings: Settings) -> SecretBox:
    """The box secrets at rest are sealed with: the instance key's, as in the API process.

    Job handlers have no request to take the API's ``AuthRuntime.secret_box`` from, so they
    derive the same box from the same settings (``FORGEYARD_SECRET_KEY`` or the data dir's
    generated ``secret.key``).
    """
    given = settings.secret_key.get_secret_value() if settings.secret_key else None
    return _box(instance_secret(given, settings.data_dir))


@cache
def _box(key: str) -> SecretBox:
    return SecretBox(key)
