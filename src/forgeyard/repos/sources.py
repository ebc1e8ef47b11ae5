"""Where a repository comes from: clone URLs checked before git ever sees them.

git speaks many transports, some of which run programs (``ext::``) or read the server's own
disk (``file://``, plain paths). Only https/http, ssh and, where the operator allows it, local
paths pass; an http(s) host must be a public address (or on the operator's allow-list),
judged by the same check outgoing webhooks use. ``GIT_ALLOW_PROTOCOL`` holds git to the same
list at fetch time, redirects and submodules included.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from forgeyard.kernel import git
from forgeyard.kernel.errors import InvalidInputError
from forgeyard.kernel.http import BlockedDestinationError, OutboundPolicy, resolve_and_check

_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*)$")
_NETWORK_PROTOCOLS = "https:http:ssh"


@dataclass(frozen=True)
class CloneSource:
    url: str  # what git is given
    kind: str  # "https", "http", "ssh" or "local"
    default_name: str


def _refuse(message: str) -> InvalidInputError:
    return InvalidInputError(message, details={"field": "clone_url"})


def _name_from(path: str) -> str:
    parts = [part for part in path.strip("/").split("/") if part]
    if not parts:
        raise _refuse("the clone URL names no repository")
    last = parts[-1].removesuffix(".git")
    return "/".join([*parts[-2:-1], last]) or last


async def parse_clone_url(url: str, *, policy: OutboundPolicy, allow_local: bool) -> CloneSource:
    url = url.strip()
    if url.startswith("-") or any(ord(char) < 32 for char in url):
        raise _refuse("the clone URL is not a URL")
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("https", "http"):
        return await _network_source(url, scheme, policy)
    if scheme == "ssh":
        parts = urlsplit(url)
        if not parts.hostname:
            raise _refuse("an ssh:// clone URL needs a host")
        return CloneSource(url, "ssh", _name_from(parts.path))
    if scheme == "file" or url.startswith("/"):
        return _local_source(url, allow_local)
    match = _SCP_LIKE.match(url)
    if match and not scheme:
        return CloneSource(url, "ssh", _name_from(match["path"]))
    raise _refuse(
        f"clone URLs are https://, ssh:// or user@host:path (got {scheme or 'no'} scheme)"
    )


async def _network_source(url: str, scheme: str, policy: OutboundPolicy) -> CloneSource:
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise _refuse("put credentials in username and token, not in the clone URL")
    try:
        await resolve_and_check(url, policy, field="clone_url")
    except BlockedDestinationError as exc:
        exc.details["field"] = "clone_url"
        raise
    return CloneSource(url, scheme, _name_from(parts.path))


def _local_source(url: str, allow_local: bool) -> CloneSource:
    if not allow_local:
        raise _refuse("local paths and file:// URLs are not allowed on this server")
    path = Path(urlsplit(url).path if url.startswith("file:") else url)
    if not path.is_absolute() or not path.exists():
        raise _refuse(f"{path} does not exist on the server")
    return CloneSource(path.as_uri(), "local", _name_from(str(path)))


def fetch_env(source_kind: str, username: str | None, token: str | None) -> dict[str, str]:
    """What one fetch needs: the protocols allowed and, for https, an Authorization header
    passed as environment (never stored in the mirror's config, never on a command line)."""
    protocols = "file" if source_kind == "local" else _NETWORK_PROTOCOLS
    config: dict[str, str] = {"protocol.allow": "never"}
    for protocol in protocols.split(":"):
        config[f"protocol.{protocol}.allow"] = "always"
    if token:
        basic = base64.b64encode(f"{username or 'x-access-token'}:{token}".encode()).decode()
        config["http.extraHeader"] = f"Authorization: Basic {basic}"
    env = git.config_env(config)
    env["GIT_ALLOW_PROTOCOL"] = protocols
    # ssh must never ask anyone anything: no keys means the fetch fails and says why.
    env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new"
    return env
