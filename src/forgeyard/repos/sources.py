"""Where a repository comes from: clone URLs checked before git ever sees them.

git speaks many transports, some of which run programs (``ext::``) or read the server's own
disk (``file://``, plain paths). Only https/http pass by default; ssh and local paths only
where the operator allows them, because both act with the server's own identity (its ssh
keys, its files), which is no one tenant's to use.

An http(s) host must be a public address (or on the operator's allow-list), judged by the same
check outgoing webhooks use, when the URL is saved and again at every fetch. The fetch then
pins git to the addresses just checked (``http.curloptResolve``) and follows no redirect, so
neither a second DNS answer nor a 302 can send it somewhere private. ``GIT_ALLOW_PROTOCOL``
holds git (submodules included) to the same protocols.
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
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._/@ -]+")
NAME_LENGTH = 200


@dataclass(frozen=True)
class CloneSource:
    url: str  # what git is given
    kind: str  # "https", "http", "ssh" or "local"
    default_name: str


def _refuse(message: str, field: str = "clone_url") -> InvalidInputError:
    return InvalidInputError(message, details={"field": field})


def _name_from(path: str) -> str:
    """``owner/name`` from a URL's path, cleaned to what a repository name may hold."""
    parts = [part for part in path.strip("/").split("/") if part]
    if not parts:
        raise _refuse("the clone URL names no repository")
    parts[-1] = parts[-1].removesuffix(".git")
    name = _UNSAFE_NAME.sub("-", "/".join(parts[-2:])).strip(" -./")
    if not name:
        raise _refuse("the clone URL names no repository")
    return name[:NAME_LENGTH]


def kind_of(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("https", "http", "ssh"):
        return scheme
    return "local" if scheme == "file" else "ssh"


async def parse_clone_url(
    url: str, *, policy: OutboundPolicy, allow_local: bool, allow_ssh: bool
) -> CloneSource:
    url = url.strip()
    if url.startswith("-") or any(ord(char) < 32 for char in url):
        raise _refuse("the clone URL is not a URL")
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("https", "http"):
        if urlsplit(url).username or urlsplit(url).password:
            raise _refuse("put credentials in username and token, not in the clone URL")
        await check_host(url, policy)
        return CloneSource(url, scheme, _name_from(urlsplit(url).path))
    if scheme == "file" or url.startswith("/"):
        return _local_source(url, allow_local)
    match = _SCP_LIKE.match(url)
    if scheme == "ssh" or (match and not scheme):
        return _ssh_source(url, match, allow_ssh)
    raise _refuse(
        f"clone URLs are https://, ssh:// or user@host:path (got {scheme or 'no'} scheme)"
    )


async def check_host(url: str, policy: OutboundPolicy) -> list[str]:
    """The addresses of ``url``'s host, all of them public or allowed; else refused."""
    try:
        return await resolve_and_check(url, policy, field="clone_url")
    except BlockedDestinationError as exc:
        exc.details["field"] = "clone_url"
        raise


def _ssh_source(url: str, match: re.Match[str] | None, allow_ssh: bool) -> CloneSource:
    if not allow_ssh:
        raise _refuse(
            "ssh clone URLs are not allowed on this server (they would use its own ssh keys); "
            "use an https URL with a token"
        )
    if match and not urlsplit(url).scheme:
        return CloneSource(url, "ssh", _name_from(match["path"]))
    parts = urlsplit(url)
    if not parts.hostname:
        raise _refuse("an ssh:// clone URL needs a host")
    return CloneSource(url, "ssh", _name_from(parts.path))


def _local_source(url: str, allow_local: bool) -> CloneSource:
    if not allow_local:
        raise _refuse("local paths and file:// URLs are not allowed on this server")
    path = Path(urlsplit(url).path if url.startswith("file:") else url)
    if not path.is_absolute() or not path.exists():
        raise _refuse(f"{path} does not exist on the server")
    return CloneSource(path.as_uri(), "local", _name_from(str(path)))


def fetch_env(
    url: str,
    *,
    addresses: list[str],
    username: str | None = None,
    token: str | None = None,
) -> dict[str, str]:
    """What one fetch needs: the protocols allowed, no redirects, the host pinned to the
    ``addresses`` just checked, and for https an Authorization header passed as environment
    (never stored in the mirror's config, never on a command line)."""
    kind = kind_of(url)
    protocols = {"local": ["file"], "ssh": ["ssh"]}.get(kind, ["https", "http"])
    config: dict[str, str] = {"protocol.allow": "never", "http.followRedirects": "false"}
    for protocol in protocols:
        config[f"protocol.{protocol}.allow"] = "always"
    parts = urlsplit(url)
    if kind in ("https", "http") and parts.hostname and addresses:
        port = parts.port or (443 if kind == "https" else 80)
        pinned = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
        config["http.curloptResolve"] = f"{parts.hostname}:{port}:{pinned}"
    if token:
        basic = base64.b64encode(f"{username or 'x-access-token'}:{token}".encode()).decode()
        config["http.extraHeader"] = f"Authorization: Basic {basic}"
    env = git.config_env(config)
    env["GIT_ALLOW_PROTOCOL"] = ":".join(protocols)
    # ssh (where allowed) must never ask anyone anything: no key means the fetch fails.
    env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new"
    return env


def forge_api_url(clone_url: str | None, provider: str, chosen: str | None) -> str:
    """The forge API a repository's pull requests go to, with its token: ``chosen`` if
    allowed, else the default for the clone URL's host (api.github.com for github.com, the
    host's own ``/api/v3`` or ``/api/v4`` for GitHub Enterprise or GitLab).

    The token is the repository's: it may only go to the host the repository is cloned from
    (or GitHub's API host for github.com), over https. Raises :class:`InvalidInputError`
    for any other ``chosen``."""
    host = (urlsplit(clone_url or "").hostname or "").lower()
    if chosen is None:
        if provider == "gitlab":
            return f"https://{host or 'gitlab.com'}/api/v4"
        if host in ("", "github.com", "www.github.com"):
            return "https://api.github.com"
        return f"https://{host}/api/v3"
    parts = urlsplit(chosen)
    allowed = {host} | ({"api.github.com"} if host in ("github.com", "www.github.com") else set())
    if parts.scheme != "https" or (parts.hostname or "").lower() not in allowed - {""}:
        raise InvalidInputError(
            "pull_requests.api_url must be an https URL on the repository's own host "
            f"({host or 'none: register the repository by URL'}): the repository's token "
            "goes there",
            details={"field": "pull_requests.api_url"},
        )
    return chosen
