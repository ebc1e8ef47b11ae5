"""Python version ranges, shared by requirements files and ``pyproject.toml``: reading PEP 508
requirements and Poetry constraints, and changing one so that a chosen version is allowed.

Ranges are always evaluated by ``packaging``; the only text handled here is *where* the version
part sits in a requirement, so a rewrite replaces exactly that span and keeps the name, extras,
markers and spacing as written.
"""

from __future__ import annotations

import re

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, Specifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from forgeyard.deps.ecosystems.base import (
    Dependency,
    ManifestError,
    UnsupportedRequirement,
    dotted,
    raise_upper_bound,
    truncate,
)

ECOSYSTEM = "pypi"
_NAME_AND_EXTRAS = re.compile(r"\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?")


def parse_requirement(text: str, path: str, line: int | None) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise ManifestError(path, line, f"invalid requirement {text!r}: {exc}") from None


def requirement_dependency(
    written: str, *, path: str, group: str, line: int | None, locked: dict[str, str]
) -> Dependency:
    """The dependency a PEP 508 requirement string declares; a URL requirement is recorded
    with an empty specifier and its URL as ``reference``."""
    requirement = parse_requirement(written, path, line)
    name = canonicalize_name(requirement.name)
    start, end = specifier_span(written)
    specifier = "" if requirement.url else written[start:end]
    pin = None if requirement.url else exact_pin(requirement.specifier)
    return Dependency(
        ecosystem=ECOSYSTEM,
        name=name,
        specifier=specifier,
        manifest=path,
        group=group,
        resolved=locked.get(name, pin),
        line=line,
        markers=str(requirement.marker) if requirement.marker else None,
        reference=requirement.url,
    )


def specifier_sets(specifier: str) -> list[SpecifierSet]:
    """The alternatives a PEP 440 specifier or a Poetry constraint allows (any one will do)."""
    try:
        return [SpecifierSet(specifier)]
    except InvalidSpecifier:
        return poetry_constraint(specifier)


def poetry_constraint(constraint: str) -> list[SpecifierSet]:
    """A Poetry version constraint as PEP 440 specifier sets, one per ``||`` alternative.

    Poetry's documented semantics: ``^1.2.3`` allows changes that keep the leftmost non-zero
    component (``>=1.2.3,<2``; ``^0.2.3`` → ``>=0.2.3,<0.3``; ``^0.0`` → ``>=0.0,<0.1``);
    ``~1.2.3`` allows patch changes (``>=1.2.3,<1.3``; ``~1`` → ``>=1,<2``); a bare version
    is an exact pin, ``1.2.*`` a wildcard, ``*`` or nothing anything; commas join clauses,
    which are otherwise PEP 440. Raises :class:`~packaging.specifiers.InvalidSpecifier`.
    """
    alternatives: list[SpecifierSet] = []
    for alternative in constraint.split("||"):
        clauses: list[str] = []
        for part in (piece.strip() for piece in alternative.split(",")):
            if part in ("", "*"):
                continue
            if part.startswith("^") or (part.startswith("~") and not part.startswith("~=")):
                clauses.extend(_poetry_range(part[0], _version(part[1:].strip())))
            elif part[0].isdigit():
                clauses.append(f"=={part}")
            else:
                clauses.append(part)
        alternatives.append(SpecifierSet(",".join(clauses)))
    return alternatives


def _poetry_range(operator: str, lower: Version) -> list[str]:
    release = lower.release
    if operator == "~":
        step = 0 if len(release) == 1 else 1
    else:
        nonzero = [index for index, part in enumerate(release) if part]
        step = nonzero[0] if nonzero else len(release) - 1
    upper = list(truncate(release, step + 1))
    upper[step] += 1
    return [f">={lower}", f"<{dotted(tuple(upper))}"]


def _version(text: str) -> Version:
    try:
        return Version(text)
    except ValueError:
        raise InvalidSpecifier(f"invalid version {text!r}") from None


def exact_pin(specifier: SpecifierSet) -> str | None:
    """The version an exact ``==`` (not wildcard) or ``===`` specifier pins, else None."""
    specs = list(specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    return None


def poetry_pin(constraint: str) -> str | None:
    alternatives = poetry_constraint(constraint)
    return exact_pin(alternatives[0]) if len(alternatives) == 1 else None


def specifier_span(written: str) -> tuple[int, int]:
    """Where the version part of a (non-URL) requirement sits: after the name and extras,
    before the ``;`` of markers, inside the optional parentheses."""
    match = _NAME_AND_EXTRAS.match(written)
    end = written.find(";", match.end() if match else 0)
    start, end = _strip_span(written, match.end() if match else 0, len(written) if end < 0 else end)
    if written[start : start + 1] == "(" and written[end - 1 : end] == ")":
        return _strip_span(written, start + 1, end - 1)
    return start, end


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    part = text[start:end]
    return start + len(part) - len(part.lstrip()), end - len(part) + len(part.rstrip())


def rewrite_requirement(written: str, name: str, target: str) -> str:
    """A PEP 508 requirement string with its version part changed to allow ``target``."""
    if Requirement(written).url:
        raise UnsupportedRequirement(name, written, "a URL requirement has no version")
    start, end = specifier_span(written)
    changed = rewrite_specifier(written[start:end], name, target)
    return written if changed is None else written[:start] + changed + written[end:]


def rewrite_specifier(written: str, name: str, target: str) -> str | None:
    """The PEP 440 specifier ``written`` changed minimally so that ``target`` is allowed, or
    None when it already is. Only the clauses that exclude ``target`` change, each keeping its
    operator: ``==`` pins ``target``, ``~=`` and ``==x.*`` keep their precision, ``<`` is raised
    at its own granularity (:func:`~forgeyard.deps.ecosystems.base.raise_upper_bound`),
    ``<=``/``>=``/``>`` move to ``target``; a ``!=`` that excludes ``target`` is refused."""
    version = Version(target)
    if SpecifierSet(written).contains(version, prereleases=True):
        return None
    changed = ",".join(_rewrite_clause(clause, name, target) for clause in written.split(","))
    if not SpecifierSet(changed).contains(version, prereleases=True):
        raise UnsupportedRequirement(name, written, f"no minimal change allows {target}")
    return changed


def _rewrite_clause(clause: str, name: str, target: str) -> str:
    spec, version = Specifier(clause.strip()), Version(target)
    if spec.contains(version, prereleases=True):
        return clause
    operator, written = spec.operator, spec.version
    if operator == "!=":
        raise UnsupportedRequirement(name, clause.strip(), f"{target} is explicitly excluded")
    if operator == "<":
        new = dotted(raise_upper_bound(Version(written).release, version.release))
    elif operator == "~=" or (operator == "==" and written.endswith(".*")):
        new = _same_precision(operator, written.removesuffix(".*"), target)
    else:
        new = target
    start, end = _strip_span(clause, 0, len(clause))
    if operator == ">":
        return f"{clause[:start]}>={new}{clause[end:]}"
    at = clause.rindex(written)
    return clause[:at] + new + clause[at + len(written) :]


def _same_precision(operator: str, written: str, target: str) -> str:
    """``target`` cut to as many components as ``written`` (``~=1.4`` and 2.1.3 → ``2.1``;
    ``==1.*`` and 2.3 → ``2.*``), or whole when the cut would no longer allow it."""
    version = Version(target)
    suffix = ".*" if operator == "==" else ""
    cut = dotted(truncate(version.release, len(Version(written).release))) + suffix
    return cut if Specifier(f"{operator}{cut}").contains(version, prereleases=True) else target


def rewrite_poetry(written: str, name: str, target: str) -> str | None:
    """A Poetry constraint changed to allow ``target``, or None when it already does.

    ``^``, ``~`` and bare versions keep their operator and precision (``^1.2`` and 2.3.1 →
    ``^2.3``); comma-joined PEP 440 clauses follow :func:`rewrite_specifier`; ``||`` is
    refused (which alternative to move is a choice for a person)."""
    version = Version(target)
    if any(spec.contains(version, prereleases=True) for spec in poetry_constraint(written)):
        return None
    start, end = _strip_span(written, 0, len(written))
    constraint = written[start:end]
    if "||" in constraint:
        raise UnsupportedRequirement(name, written, "alternatives (||) are not rewritten")
    operator = constraint[:1] if constraint[:1] in ("^", "~") and constraint[1:2] != "=" else ""
    body = constraint[len(operator) :].strip()
    if operator or (body[:1].isdigit() and "," not in body):
        new = target
        if operator or body.endswith(".*"):
            precision = len(Version(body.removesuffix(".*")).release)
            cut = dotted(truncate(version.release, precision)) + (".*" if "*" in body else "")
            allowed = poetry_constraint(f"{operator}{cut}")[0].contains(version, prereleases=True)
            new = cut if allowed else target
        at = written.rindex(body)
        return written[:at] + new + written[at + len(body) :]
    return rewrite_specifier(written, name, target)
