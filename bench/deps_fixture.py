"""The deps_detection benchmark's fixture: packages on two local registries and a repository
that pins old versions of them.

Every package has the same releases (``VERSIONS``) and every tenth one a prerelease too,
which no tool should propose for a stable pin. The pins cycle through the releases, so a
quarter of the dependencies is up to date, a quarter has only a major update and half has
a major update and a newer release of their own major (which Renovate proposes as a
second update; see :mod:`bench.deps_detection`).

npm packages go to verdaccio by its HTTP API, as ``npm publish`` does: one ``PUT`` of the
packument with the tarball attached. It publishes the 400-odd versions in seconds where one
``npm publish`` each (0.7 s apiece here, mostly npm starting) takes about five minutes.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from tests.registries import harness

from bench.analysis_pipeline import commit_tree

VERSIONS = ("1.0.0", "1.1.0", "1.1.1", "2.0.0")
PRERELEASE = {"pypi": "2.1.0rc1", "npm": "2.1.0-beta.1"}
PACKAGES_PER_ECOSYSTEM = 100
PYPROJECT_SHARE = 40  # of the PyPI pins go to pyproject.toml (PEP 621), the rest to requirements
DEV_SHARE = 30  # of the npm pins go to devDependencies
PUBLISH_THREADS = 8  # packages published at once; one package's versions go in order


@dataclass(frozen=True)
class Package:
    ecosystem: str  # "pypi" or "npm"
    name: str
    versions: tuple[str, ...]  # as published, in order
    pinned: str  # the version the fixture repository pins

    @property
    def newest(self) -> str | None:
        """The update a tool should find: the highest stable version, if above the pin."""
        return None if self.pinned == VERSIONS[-1] else VERSIONS[-1]


def plan() -> list[Package]:
    """100 PyPI and 100 npm packages, pins cycling through ``VERSIONS``."""
    packages = []
    for ecosystem in ("pypi", "npm"):
        for index in range(PACKAGES_PER_ECOSYSTEM):
            extra = (PRERELEASE[ecosystem],) if index % 10 == 9 else ()
            packages.append(
                Package(
                    ecosystem=ecosystem,
                    name=f"fybench-{ecosystem}-{index:03d}",
                    versions=VERSIONS + extra,
                    pinned=VERSIONS[index % len(VERSIONS)],
                )
            )
    return packages


def expected_updates(packages: list[Package]) -> set[tuple[str, str, str]]:
    return {(p.ecosystem, p.name, p.newest) for p in packages if p.newest is not None}


# --- the registries -----------------------------------------------------------------------


def write_wheels(packages: list[Package], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for package in packages:
        if package.ecosystem == "pypi":
            for version in package.versions:
                harness.write_wheel(directory, package.name, version)


def publish_npm(packages: list[Package], verdaccio: harness.Verdaccio) -> None:
    """Every npm package's versions, packages in parallel and each one's versions in order
    (verdaccio rewrites a package's storage on each publish)."""
    npm_packages = [p for p in packages if p.ecosystem == "npm"]
    headers = {"Authorization": f"Bearer {verdaccio.token}"}
    with httpx.Client(
        base_url=verdaccio.url, headers=headers, timeout=30, trust_env=False
    ) as client:

        def one(package: Package) -> None:
            for version in package.versions:
                _put_version(client, verdaccio.url, package.name, version)

        with ThreadPoolExecutor(PUBLISH_THREADS) as pool:
            list(pool.map(one, npm_packages))  # list() re-raises the first failure


def _put_version(client: httpx.Client, registry: str, name: str, version: str) -> None:
    """What ``npm publish`` sends for an unscoped package: the manifest, and the tarball as
    a base64 attachment; a prerelease is tagged ``next`` so ``latest`` stays stable."""
    manifest = {"name": name, "version": version, "main": "index.js", "license": "MIT"}
    tarball = _tarball(manifest, f"module.exports = {json.dumps(version)};\n")
    filename = f"{name}-{version}.tgz"
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    dist = {
        "integrity": integrity,
        "shasum": hashlib.sha1(tarball).hexdigest(),
        "tarball": f"{registry}/{name}/-/{filename}",
    }
    document = {
        "_id": name,
        "name": name,
        "dist-tags": {"next" if "-" in version else "latest": version},
        "versions": {version: {**manifest, "_id": f"{name}@{version}", "dist": dist}},
        "_attachments": {
            filename: {
                "content_type": "application/octet-stream",
                "data": base64.b64encode(tarball).decode(),
                "length": len(tarball),
            }
        },
    }
    answer = client.put(f"/{name}", json=document)
    if answer.status_code not in (200, 201):
        raise RuntimeError(f"publishing {name}@{version}: {answer.status_code} {answer.text}")


def _tarball(manifest: dict[str, str], index_js: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, text in (("package.json", json.dumps(manifest)), ("index.js", index_js)):
            data = text.encode()
            info = tarfile.TarInfo(f"package/{path}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# --- the repository -----------------------------------------------------------------------


def write_repository(packages: list[Package], root: Path) -> None:
    """requirements.txt and pyproject.toml (PEP 621) with ``==`` pins, package.json with exact
    versions, committed: Renovate's local platform reads a git repository."""
    root.mkdir(parents=True)
    python = [p for p in packages if p.ecosystem == "pypi"]
    in_pyproject, in_requirements = python[:PYPROJECT_SHARE], python[PYPROJECT_SHARE:]
    (root / "requirements.txt").write_text(
        "".join(f"{p.name}=={p.pinned}\n" for p in in_requirements)
    )
    listed = "".join(f'    "{p.name}=={p.pinned}",\n' for p in in_pyproject)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "fybench-app"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        f"dependencies = [\n{listed}]\n"
    )
    npm = [p for p in packages if p.ecosystem == "npm"]
    manifest = {
        "name": "fybench-app",
        "version": "0.1.0",
        "private": True,
        "dependencies": {p.name: p.pinned for p in npm[DEV_SHARE:]},
        "devDependencies": {p.name: p.pinned for p in npm[:DEV_SHARE]},
    }
    (root / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    commit_tree(root, "the deps_detection fixture")
