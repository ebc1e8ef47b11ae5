"""The package ecosystems Forgeyard updates, by name: one module each, one line here.

Adding an ecosystem means writing one :class:`~forgeyard.deps.ecosystems.base.Ecosystem`
subclass in its own module and registering an instance below; nothing else names them.
"""

from __future__ import annotations

from pathlib import Path

from forgeyard.deps.ecosystems.base import (
    Dependency,
    Ecosystem,
    Manifest,
    ManifestError,
    UnsupportedRequirement,
)
from forgeyard.deps.ecosystems.npm import NpmEcosystem
from forgeyard.deps.ecosystems.python import PythonEcosystem

ECOSYSTEMS: dict[str, Ecosystem] = {
    PythonEcosystem.name: PythonEcosystem(),
    NpmEcosystem.name: NpmEcosystem(),
}


def find_all(root: Path) -> list[Manifest]:
    """Every manifest of every ecosystem under ``root``, sorted by path then ecosystem."""
    manifests = [m for ecosystem in ECOSYSTEMS.values() for m in ecosystem.find_manifests(root)]
    return sorted(manifests, key=lambda manifest: (manifest.path, manifest.ecosystem))


__all__ = [
    "ECOSYSTEMS",
    "Dependency",
    "Ecosystem",
    "Manifest",
    "ManifestError",
    "UnsupportedRequirement",
    "find_all",
]
