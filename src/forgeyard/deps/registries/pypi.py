"""PyPI and PyPI-compatible indexes (devpi, pypiserver, Artifactory, Nexus, …).

Versions come from the simple API every index serves: PEP 691 JSON when the index offers it,
PEP 503 HTML otherwise; a version is a file name's version (wheel or sdist), and a version is
yanked (PEP 592) when all of its files are. Release dates come from PEP 700's
``upload-time`` when the simple answer has it, else from the JSON API (``/pypi/<name>/json``
next to ``/simple/``) where it exists; an index that serves neither (pypiserver) gives
releases without dates. After one 404 from the JSON API for a package the simple API knows,
the JSON API is taken to be absent and not asked again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from forgeyard.deps.registries.base import (
    PackageInfo,
    Registry,
    RegistryError,
    Release,
    parse_timestamp,
)

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
ACCEPT_SIMPLE = f"{SIMPLE_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)  # PEP 508


@dataclass(frozen=True)
class _File:
    version: str
    yanked: bool
    uploaded: datetime | None


class PyPIRegistry(Registry):
    """A PEP 503 index at ``index_url`` (the URL that ends in ``/simple/``)."""

    ecosystem = "pypi"

    def __init__(
        self,
        index_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        json_api_url: str | None = None,
        **options: Any,
    ) -> None:
        auth = httpx.BasicAuth(username, password or "") if username is not None else None
        super().__init__(auth=auth, auth_key=f"{username}:{password}" if auth else "", **options)
        self.index_url = index_url.rstrip("/") + "/"
        self.json_api_url = (json_api_url or _json_api_next_to(self.index_url) or "").rstrip("/")
        self.json_api_missing = not self.json_api_url

    async def lookup(self, name: str) -> PackageInfo:
        if not _NAME.match(name):
            raise RegistryError(self.ecosystem, name, "not a valid package name")
        project = canonicalize_name(name)
        files: list[_File] = await self._get(
            name, f"{self.index_url}{project}/", accept=ACCEPT_SIMPLE, parse=_parse_simple
        )
        if not self.json_api_missing and any(f.uploaded is None for f in files):
            try:
                dated = await self._get(
                    name,
                    f"{self.json_api_url}/{project}/json",
                    accept="application/json",
                    parse=_parse_json_api,
                )
            except RegistryError as exc:
                if not exc.not_found:
                    raise
                self.json_api_missing = True
            else:  # dates for the versions the index lists, not versions of its own
                listed = {file.version for file in files}
                files += [file for file in dated if file.version in listed]
        return PackageInfo(self.ecosystem, name, _releases(files))

    async def vulnerabilities(self, name: str, version: str) -> list[dict[str, Any]]:
        """``/pypi/<name>/<version>/json``'s ``vulnerabilities``: PyPI lists them per release.
        An index with no JSON API (pypiserver) has none to give."""
        if self.json_api_missing or not _NAME.match(name):
            return []
        try:
            parsed = Version(version)
        except InvalidVersion:
            return []
        url = f"{self.json_api_url}/{canonicalize_name(name)}/{parsed}/json"
        try:
            found: list[dict[str, Any]] = await self._get(
                name, url, accept="application/json", parse=_parse_vulnerabilities
            )
        except RegistryError as exc:
            if exc.not_found:
                return []
            raise
        return found


def _parse_vulnerabilities(_: httpx.Response, body: bytes) -> list[dict[str, Any]]:
    entries = json.loads(body).get("vulnerabilities") or []
    return [entry for entry in entries if isinstance(entry, dict)]


def _json_api_next_to(index_url: str) -> str | None:
    """``https://host/pypi`` for ``https://host/simple/``: where PyPI and devpi keep it."""
    path = urlsplit(index_url).path.rstrip("/")
    if not path.endswith("/simple"):
        return None
    return index_url.rstrip("/").removesuffix("/simple") + "/pypi"


def _releases(files: list[_File]) -> list[Release]:
    """One release per version (PEP 440 order): yanked when every file is, earliest upload."""
    by_version: dict[str, list[_File]] = {}
    for file in files:
        by_version.setdefault(file.version, []).append(file)
    releases = []
    for version, group in by_version.items():
        dates = [f.uploaded for f in group if f.uploaded is not None]
        releases.append(
            Release(
                version=version,
                published_at=min(dates) if dates else None,
                yanked=all(f.yanked for f in group),
            )
        )
    return sorted(releases, key=lambda release: Version(release.version))


def _version_of(filename: str) -> str | None:
    """The normalized version in a wheel or sdist file name; None for anything else."""
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        if filename.endswith((".tar.gz", ".zip")):
            return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return None


def _parse_simple(response: httpx.Response, body: bytes) -> list[_File]:
    if response.headers.get("Content-Type", "").split(";")[0].strip() == SIMPLE_JSON:
        return _parse_simple_json(json.loads(body))
    return _parse_simple_html(body.decode(response.encoding or "utf-8", errors="replace"))


def _parse_simple_json(document: dict[str, Any]) -> list[_File]:
    """PEP 691 (and PEP 700's ``upload-time``)."""
    files = []
    for entry in document["files"]:
        version = _version_of(str(entry["filename"]))
        if version is not None:
            yanked = entry.get("yanked", False)
            uploaded = parse_timestamp(entry.get("upload-time"))
            files.append(_File(version, yanked is not False, uploaded))
    return files


def _parse_simple_html(html: str) -> list[_File]:
    """PEP 503 anchors; ``data-yanked`` (PEP 592) marks a yanked file."""
    parser = _Anchors()
    parser.feed(html)
    files = []
    for href, yanked in parser.anchors:
        filename = unquote(urlsplit(href).path.rsplit("/", 1)[-1])
        version = _version_of(filename)
        if version is not None:
            files.append(_File(version, yanked, None))
    return files


def _parse_json_api(_: httpx.Response, body: bytes) -> list[_File]:
    """PyPI's ``/pypi/<name>/json``: ``releases`` maps each version to its files."""
    files = []
    for raw_version, entries in json.loads(body).get("releases", {}).items():
        try:
            version = str(Version(raw_version))
        except InvalidVersion:
            continue
        for entry in entries or []:
            uploaded = parse_timestamp(
                entry.get("upload_time_iso_8601") or entry.get("upload_time")
            )
            files.append(_File(version, bool(entry.get("yanked", False)), uploaded))
    return files


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        attributes = dict(attrs)
        href = attributes.get("href")
        if href:
            self.anchors.append((href, "data-yanked" in attributes))
