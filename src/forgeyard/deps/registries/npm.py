"""npm and npm-compatible registries (verdaccio, GitHub Packages, Artifactory, Nexus, …).

One request per package: the full packument ``GET /<name>`` (a scoped name as
``@scope%2fname``), whose ``versions`` lists every version with its ``deprecated`` message
and whose ``time`` maps versions to publish dates. (The abbreviated packument is smaller but
carries no per-version dates.) A token, when given, is sent as ``Authorization: Bearer``.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import httpx

from forgeyard.deps.registries.base import (
    PackageInfo,
    Registry,
    RegistryError,
    Release,
    bearer_auth,
    parse_timestamp,
)

# npm's own rules (validate-npm-package-name), loosely: an optional scope, URL-safe parts.
_NAME = re.compile(r"^(@[a-z0-9~][a-z0-9._~-]*/)?[a-z0-9~][a-z0-9._~-]*$", re.IGNORECASE)


class NpmRegistry(Registry):
    """The registry at ``registry_url`` (a path prefix, as Artifactory has, is kept)."""

    ecosystem = "npm"

    def __init__(self, registry_url: str, *, token: str | None = None, **options: Any) -> None:
        auth = bearer_auth(token) if token else None
        super().__init__(auth=auth, auth_key=token or "", **options)
        self.registry_url = registry_url.rstrip("/") + "/"

    def packument_url(self, name: str) -> str:
        return self.registry_url + quote(name, safe="@")

    async def lookup(self, name: str) -> PackageInfo:
        if len(name) > 214 or not _NAME.match(name):
            raise RegistryError(self.ecosystem, name, "not a valid package name")
        releases: list[Release] = await self._get(
            name, self.packument_url(name), accept="application/json", parse=_parse_packument
        )
        return PackageInfo(self.ecosystem, name, releases)


def _parse_packument(_: httpx.Response, body: bytes) -> list[Release]:
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("the packument is not a JSON object")
    versions: dict[str, Any] = document.get("versions") or {}
    times: dict[str, Any] = document.get("time") or {}
    releases = []
    for version, manifest in versions.items():
        deprecated = manifest.get("deprecated") if isinstance(manifest, dict) else None
        releases.append(
            Release(
                version=version,
                published_at=parse_timestamp(times.get(version)),
                # npm un-deprecates with an empty message, so "" is not deprecated
                deprecated=deprecated if isinstance(deprecated, str) and deprecated else None,
            )
        )
    return releases
