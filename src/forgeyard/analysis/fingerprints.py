"""A finding's identity across commits: what lets "new", "fixed" and "still open" mean
something.

The fingerprint hashes the detector, the rule, the file's path, the offending code with its
whitespace normalised, and the enclosing symbol: never line numbers, so lines added above a
finding leave it the same finding, while a change to the offending code makes a new one.
Two identical problems in one place are told apart by their order (``#2``, ``#3``…).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable

from forgeyard.analysis.detectors.base import RawFinding

_WHITESPACE = re.compile(r"\s+")
_SEPARATOR = "\x1f"  # cannot occur in a rule id or a path, so fields cannot run together


def normalise_code(snippet: str) -> str:
    """The code with indentation, blank lines and runs of whitespace collapsed."""
    lines = (_WHITESPACE.sub(" ", line).strip() for line in snippet.splitlines())
    return "\n".join(line for line in lines if line)


def fingerprint(detector: str, rule_id: str, path: str, snippet: str, symbol: str | None) -> str:
    """The sha256 (hex) of what identifies a finding."""
    fields = (detector, rule_id, path, normalise_code(snippet), symbol or "")
    return hashlib.sha256(_SEPARATOR.join(fields).encode()).hexdigest()


def assign_fingerprints(
    path: str, findings: Iterable[RawFinding], *, detector: str
) -> list[tuple[RawFinding, str]]:
    """Each finding of one file (one detector) with its fingerprint, in line order; the
    second and later findings sharing a fingerprint get ``#2``, ``#3``… appended."""
    ordered = sorted(findings, key=lambda f: (f.line_start, f.line_end, f.rule_id, f.message))
    seen: Counter[str] = Counter()
    assigned = []
    for finding in ordered:
        base = fingerprint(detector, finding.rule_id, path, finding.snippet, finding.symbol)
        seen[base] += 1
        assigned.append((finding, base if seen[base] == 1 else f"{base}#{seen[base]}"))
    return assigned
