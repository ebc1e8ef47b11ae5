"""Looking up a package's versions, release dates, yanks and deprecations on its registry."""

from forgeyard.deps.registries.base import (
    PackageInfo,
    Registry,
    RegistryError,
    Release,
    lookup_many,
)
from forgeyard.deps.registries.cache import AnswerCache, CachedAnswer, MemoryCache
from forgeyard.deps.registries.npm import NpmRegistry
from forgeyard.deps.registries.pypi import PyPIRegistry

__all__ = [
    "AnswerCache",
    "CachedAnswer",
    "MemoryCache",
    "NpmRegistry",
    "PackageInfo",
    "PyPIRegistry",
    "Registry",
    "RegistryError",
    "Release",
    "lookup_many",
]
