"""Secrets: detect-secrets with every plugin it ships and its default filters.

A finding must never carry the secret: the snippet shows the line with the secret cut to its
first characters, and the message names the kind of secret only. (detect-secrets' filters
look at the file name too, e.g. to skip lock files; two files with the same content but names
of different kinds are rare enough that the report is still cached per blob.)
"""

from __future__ import annotations

import re
from importlib.metadata import version as package_version
from pathlib import Path

from detect_secrets.core.potential_secret import PotentialSecret
from detect_secrets.core.secrets_collection import SecretsCollection
from detect_secrets.settings import default_settings

from forgeyard.analysis.detectors import severity
from forgeyard.analysis.detectors.base import (
    Detector,
    FileReport,
    RawFinding,
    read_text,
)

KEPT_CHARACTERS = 4
REDACTED_SUFFIX = "…"
_SLUG = re.compile(r"[^a-z0-9]+")


class SecretsDetector(Detector):
    name = "secrets"
    version = f"detect-secrets {package_version('detect-secrets')}/1"

    def applies_to(self, path: str) -> bool:
        return True  # secrets hide in configuration, scripts and docs as much as in code

    def analyse(self, root: Path, paths: list[str]) -> dict[str, FileReport]:
        collection = SecretsCollection(root=str(root))
        with default_settings():
            for path in paths:
                collection.scan_file(path)
        reports = {path: FileReport() for path in paths}
        for filename, secret in collection:
            path = Path(filename).as_posix()
            if path in reports:
                reports[path].findings.append(_finding(root / path, secret))
        return reports


def redact(secret: str) -> str:
    """The secret's first few characters and an ellipsis; never more than a quarter of it."""
    return secret[: min(KEPT_CHARACTERS, len(secret) // 4)] + REDACTED_SUFFIX


def _finding(file: Path, secret: PotentialSecret) -> RawFinding:
    line_number = max(secret.line_number, 1)
    lines = read_text(file).splitlines()
    line = lines[line_number - 1].strip() if line_number <= len(lines) else ""
    value = secret.secret_value
    # Without the value to cut out, the line is not shown at all.
    shown = line.replace(value, redact(value))[:500] if value and value in line else ""
    return RawFinding(
        rule_id=_SLUG.sub("-", secret.type.lower()).strip("-"),
        severity=severity.SECRET,
        line_start=line_number,
        line_end=line_number,
        message=f"possible secret: {secret.type}",
        snippet=shown,
        symbol=None,
    )
