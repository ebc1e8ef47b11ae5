"""Standard Webhooks secrets and signatures (https://www.standardwebhooks.com/).

The signing itself is the ``standardwebhooks`` library's; this module makes secrets, checks
the ones users bring, and builds the three headers a receiver verifies.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from datetime import datetime
from typing import Any

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix, not a secret)
GENERATED_SECRET_BYTES = 24
# Svix accepts keys of 24 to 64 bytes; fewer would be weak, more buys nothing for HMAC-SHA256.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(GENERATED_SECRET_BYTES)).decode()


def check_secret(value: str) -> str:
    """``value`` if it is a ``whsec_`` secret of 24 to 64 base64-encoded bytes; else ValueError."""
    if not value.startswith(SECRET_PREFIX):
        raise ValueError(f"must start with {SECRET_PREFIX}")
    encoded = value.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"must be {SECRET_PREFIX} followed by base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"the key must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, not {len(key)}"
        )
    return value


def encode_body(message: dict[str, Any]) -> str:
    """The exact text that is signed and sent."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def signed_headers(secret: str, message_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, timestamp, body),
        "content-type": "application/json",
    }
