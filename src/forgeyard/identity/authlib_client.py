"""Authlib's async OAuth 2 client, imported without its notice about the httpx2 fork.

Authlib prefers the httpx2 fork when it is installed and warns on every start when it is
not; plain httpx is what Forgeyard uses and works. Authlib installs an "always" filter for its
warnings when ``authlib.deprecate`` loads, so ours has to come after that import.
"""

import warnings

import authlib.deprecate  # noqa: F401  (its filter first, so ours takes precedence)

warnings.filterwarnings(
    "ignore", message="The httpx module is deprecated", category=DeprecationWarning
)

from authlib.integrations.httpx_client import AsyncOAuth2Client  # noqa: E402

__all__ = ["AsyncOAuth2Client"]
