"""The detectors, by name. Each module wraps one tool; ``DETECTORS`` is the registry the
engine and the worker subprocess look names up in."""

from __future__ import annotations

from forgeyard.analysis.detectors.base import Detector
from forgeyard.analysis.detectors.complexity import ComplexityDetector
from forgeyard.analysis.detectors.dead_code import DeadCodeDetector
from forgeyard.analysis.detectors.duplicates import DuplicatesDetector
from forgeyard.analysis.detectors.large_files import LargeFilesDetector
from forgeyard.analysis.detectors.lint import LintDetector
from forgeyard.analysis.detectors.secrets import SecretsDetector
from forgeyard.analysis.detectors.security import SecurityDetector

DETECTORS: dict[str, type[Detector]] = {
    detector.name: detector
    for detector in (
        LintDetector,
        SecurityDetector,
        ComplexityDetector,
        DeadCodeDetector,
        SecretsDetector,
        LargeFilesDetector,
        DuplicatesDetector,
    )
}


def all_detectors() -> list[Detector]:
    return [detector() for detector in DETECTORS.values()]


def versions() -> dict[str, str]:
    """Detector name → version: the part of the report cache key that names the tools."""
    return {name: detector.version for name, detector in DETECTORS.items()}
