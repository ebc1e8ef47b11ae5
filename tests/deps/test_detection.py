"""Update detection: from a dependency and its registry data to the update to propose."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from forgeyard.deps.detection import (
    MAJOR_REASON,
    UNKNOWN_AGE_REASON,
    DepSettings,
    Group,
    RepoPolicy,
    Update,
    detect,
    group_updates,
)
from forgeyard.deps.ecosystems import ECOSYSTEMS, Dependency
from forgeyard.deps.registries.base import PackageInfo, Release
from forgeyard.deps.vulnerabilities import Advisory, parse_advisory

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def dep(
    name: str, ecosystem: str = "pypi", resolved: str | None = "1.0.0", spec: str = ""
) -> Dependency:
    return Dependency(ecosystem, name, spec, "requirements.txt", "main", resolved, 1)


def pypi(name: str, *versions: str, yanked: Sequence[str] = ()) -> PackageInfo:
    """As pypiserver answers: no release dates."""
    return PackageInfo("pypi", name, [Release(v, None, v in yanked) for v in versions])


def npm(name: str, **ages: float) -> PackageInfo:
    """As verdaccio answers: a date per version (keyword: version with _ for . and -)."""
    releases = [
        Release(key.replace("__", "-").replace("_", "."), NOW - timedelta(days=age))
        for key, age in ages.items()
    ]
    return PackageInfo("npm", name, releases)


def run(
    dependency: Dependency,
    info: PackageInfo,
    *,
    advisories: Sequence[Advisory] = (),
    settings: DepSettings | None = None,
    policy: RepoPolicy | None = None,
) -> Update | None:
    return detect(
        dependency,
        info,
        ecosystem=ECOSYSTEMS[dependency.ecosystem],
        advisories=advisories,
        settings=settings or DepSettings(),
        policy=policy or RepoPolicy(),
        now=NOW,
    )


def must(update: Update | None) -> Update:
    assert update is not None
    return update


def osv(data: dict[str, Any]) -> Advisory:
    parsed = parse_advisory(data, "test")
    assert parsed is not None
    return parsed


def fixed_by(ecosystem: str, name: str, fixed: str, severity: str | None = None) -> Advisory:
    kind = "SEMVER" if ecosystem == "npm" else "ECOSYSTEM"
    data: dict[str, Any] = {
        "id": f"ADV-{name}-{fixed}",
        "affected": [
            {
                "package": {"ecosystem": {"pypi": "PyPI"}.get(ecosystem, ecosystem), "name": name},
                "ranges": [{"type": kind, "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
        ],
    }
    if severity:
        data["database_specific"] = {"severity": severity}
    return osv(data)


@pytest.mark.parametrize(
    ("versions", "candidate", "category"),
    [
        (("1.0.0", "1.0.1"), "1.0.1", "patch"),
        (("1.0.0", "1.0.1", "1.2.0"), "1.2.0", "minor"),
        (("1.0.0", "1.2.0", "2.0.0"), "2.0.0", "major"),
        (("1.0.0", "1.0.0.post1"), "1.0.0.post1", "patch"),
    ],
)
def test_categories_python(versions: tuple[str, ...], candidate: str, category: str) -> None:
    update = must(run(dep("fy-alpha"), pypi("fy-alpha", *versions)))
    assert (update.current, update.current_source) == ("1.0.0", "lock")
    assert (update.candidate, update.category, update.semver_change) == (
        candidate,
        category,
        category,
    )
    assert not update.blocked
    assert update.advisories == ()
    assert update.severity is None
    assert update.age_days is None
    assert update.released_at is None


def test_categories_npm_use_semver_components() -> None:
    info = npm("fy-left", **{"1_0_0": 30, "1_2_0": 20, "1_2_5": 10})
    update = must(run(dep("fy-left", "npm"), info))
    assert (update.candidate, update.category) == ("1.2.5", "minor")
    assert update.age_days == pytest.approx(10)
    assert update.released_at == NOW - timedelta(days=10)


def test_no_newer_release_means_no_update() -> None:
    assert run(dep("fy-alpha", resolved="2.0.0"), pypi("fy-alpha", "1.0.0", "2.0.0")) is None
    reference = Dependency("pypi", "x", "", "r.txt", "main", None, 1, reference="git+https://x")
    assert run(reference, pypi("x", "1.0", "2.0")) is None


def test_security_category_when_current_affected_and_candidate_not() -> None:
    high = fixed_by("pypi", "fy-alpha", "1.0.1", "HIGH")
    low = fixed_by("pypi", "fy-alpha", "1.0.2", "LOW")
    unfixed = fixed_by("pypi", "fy-alpha", "9.0")  # the candidate is affected too
    other = fixed_by("pypi", "fy-other", "5.0", "CRITICAL")  # another package
    update = must(
        run(
            dep("fy-alpha"),
            pypi("fy-alpha", "1.0.0", "1.0.1", "1.0.2"),
            advisories=[high, low, unfixed, other],
        )
    )
    assert (update.candidate, update.category, update.semver_change) == (
        "1.0.2",
        "security",
        "patch",
    )
    assert update.advisories == (high, low)
    assert update.severity == "high"


def test_stable_current_never_gets_a_prerelease() -> None:
    info = pypi("fy-alpha", "1.0.0", "1.1.0", "2.0.0", "2.1.0rc1")
    assert must(run(dep("fy-alpha"), info)).candidate == "2.0.0"
    assert run(dep("fy-alpha", resolved="2.0.0"), info) is None
    npm_info = npm("fy-left", **{"2_0_0": 30, "3_0_0__beta_1": 5})
    assert run(dep("fy-left", "npm", resolved="2.0.0"), npm_info) is None


def test_current_prerelease_gets_newer_prerelease_or_final() -> None:
    rc = dep("fy-alpha", resolved="2.1.0rc1")
    update = must(run(rc, pypi("fy-alpha", "2.0.0", "2.1.0rc1", "2.1.0rc2", "2.2.0a1")))
    # A prerelease of the same release only: 2.2.0a1 is not proposed.
    assert (update.candidate, update.category, update.semver_change) == (
        "2.1.0rc2",
        "prerelease",
        "patch",
    )
    final = must(run(rc, pypi("fy-alpha", "2.1.0rc1", "2.1.0rc2", "2.1.0")))
    assert (final.candidate, final.category) == ("2.1.0", "patch")
    beta = dep("fy-left", "npm", resolved="3.0.0-beta.1")
    info = npm("fy-left", **{"3_0_0__beta_1": 30, "3_0_0__beta_2": 20})
    assert must(run(beta, info)).candidate == "3.0.0-beta.2"


def test_yanked_releases_are_skipped_and_yanked_current_is_reported() -> None:
    info = pypi("fy-alpha", "1.0.0", "1.1.0", "1.2.0", yanked=("1.0.0", "1.2.0"))
    update = must(run(dep("fy-alpha"), info))
    assert update.candidate == "1.1.0"
    assert update.current_yanked
    assert run(dep("fy-alpha"), pypi("fy-alpha", "1.0.0", "1.1.0", yanked=("1.1.0",))) is None


def test_deprecation_of_the_candidate_is_carried() -> None:
    info = PackageInfo(
        "npm", "fy-left", [Release("1.0.0", NOW), Release("1.2.0", NOW, deprecated="use 2")]
    )
    assert must(run(dep("fy-left", "npm"), info)).deprecated == "use 2"


def test_without_a_lock_current_is_the_lowest_allowed_version() -> None:
    info = pypi("fy-alpha", "0.9", "1.0.0", "1.1.0", "1.5.0rc1", "2.0.0")
    update = must(run(dep("fy-alpha", resolved=None, spec=">=1.0,<2"), info))
    assert (update.current, update.current_source, update.candidate) == (
        "1.0.0",
        "lowest-allowed",
        "2.0.0",
    )
    unconstrained = must(run(dep("fy-alpha", resolved=None), info))
    assert unconstrained.current == "0.9"
    assert run(dep("fy-alpha", resolved=None, spec=">=5"), info) is None


def test_exclude_glob_and_skip_block() -> None:
    info = npm("@types/node", **{"1_0_0": 30, "1_1_0": 30})
    policy = RepoPolicy(exclude_packages=("lodash", "@types/*"))
    update = must(run(dep("@types/node", "npm"), info, policy=policy))
    assert update.blocked
    assert update.blocked_reasons == ("excluded by exclude_packages pattern '@types/*'",)
    skipped = must(run(dep("@types/node", "npm"), info, settings=DepSettings(skip=True)))
    assert skipped.blocked_reasons == ("skipped by the dependency's settings",)


def test_pin_active_violated_and_expired() -> None:
    info = npm("fy-left", **{"1_2_0": 30, "1_2_9": 30, "1_3_0": 30})
    current = dep("fy-left", "npm", resolved="1.2.0")
    until = datetime(2027, 1, 1, tzinfo=UTC)
    pin = DepSettings(pin="~1.2", pin_reason="1.3 breaks our build", pin_expires_at=until)
    update = must(run(current, info, settings=pin))
    assert update.candidate == "1.3.0"
    assert update.blocked
    assert update.blocked_reasons == ("pinned to ~1.2 until 2027-01-01: 1.3 breaks our build",)
    allowed = must(run(current, info, settings=DepSettings(pin="^1")))
    assert not allowed.blocked
    expired = DepSettings(pin="~1.2", pin_reason="old", pin_expires_at=NOW - timedelta(days=1))
    lifted = must(run(current, info, settings=expired))
    assert not lifted.blocked
    assert lifted.blocked_reasons == ()
    bad = must(run(current, info, settings=DepSettings(pin="not a range!!")))
    assert bad.blocked
    assert "not a valid version range" in bad.blocked_reasons[0]


def test_ignore_major_proposes_the_best_non_major_and_holds_the_major_back() -> None:
    info = pypi("fy-alpha", "1.0.0", "1.1.0", "1.2.0", "2.0.0")
    update = must(run(dep("fy-alpha"), info, settings=DepSettings(ignore_major=True)))
    assert (update.candidate, update.category, update.blocked) == ("1.2.0", "minor", False)
    assert update.held_back == "2.0.0"
    assert update.notes == (f"2.0.0 held back: {MAJOR_REASON}",)


def test_ignore_major_without_other_candidate_reports_the_major_blocked() -> None:
    info = pypi("fy-alpha", "1.0.0", "2.0.0")
    update = must(run(dep("fy-alpha"), info, settings=DepSettings(ignore_major=True)))
    assert (update.candidate, update.category, update.blocked) == ("2.0.0", "major", True)
    assert update.blocked_reasons == (MAJOR_REASON,)
    assert update.held_back is None


def test_cooldown_blocks_a_fresh_npm_release_but_not_a_security_fix() -> None:
    info = npm("fy-left", **{"1_0_0": 100, "1_0_1": 2})
    policy = RepoPolicy(min_release_age_days=7)
    update = must(run(dep("fy-left", "npm"), info, policy=policy))
    assert update.blocked
    assert update.blocked_reasons == (
        "released 2 days ago; the repository waits 7 days (min_release_age)",
    )
    fix = fixed_by("npm", "fy-left", "1.0.1", "CRITICAL")
    security = must(run(dep("fy-left", "npm"), info, policy=policy, advisories=[fix]))
    assert (security.category, security.blocked, security.severity) == (
        "security",
        False,
        "critical",
    )
    old_enough = must(run(dep("fy-left", "npm"), npm("fy-left", **{"1_0_1": 8}), policy=policy))
    assert not old_enough.blocked


def test_unknown_release_age_blocks_under_a_cooldown() -> None:
    info = pypi("fy-alpha", "1.0.0", "1.1.0")
    update = must(run(dep("fy-alpha"), info, policy=RepoPolicy(min_release_age_days=7)))
    assert update.age_days is None
    assert update.blocked
    assert update.blocked_reasons == (UNKNOWN_AGE_REASON,)
    assert not must(run(dep("fy-alpha"), info)).blocked  # no cooldown, nothing to check


def test_reasons_accumulate() -> None:
    info = pypi("fy-alpha", "1.0.0", "2.0.0")
    policy = RepoPolicy(exclude_packages=("fy-*",), min_release_age_days=3)
    settings = DepSettings(skip=True, ignore_major=True, pin="<2")
    update = must(run(dep("fy-alpha"), info, settings=settings, policy=policy))
    assert update.blocked_reasons == (
        "excluded by exclude_packages pattern 'fy-*'",
        "skipped by the dependency's settings",
        "pinned to <2",
        MAJOR_REASON,
        UNKNOWN_AGE_REASON,
    )


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        detect(
            dep("fy-alpha"),
            pypi("fy-alpha", "1.0.0"),
            ecosystem=ECOSYSTEMS["pypi"],
            advisories=[],
            settings=DepSettings(),
            policy=RepoPolicy(),
            now=datetime(2026, 1, 1),
        )


def test_groups_by_pattern_and_by_update_type() -> None:
    policy = RepoPolicy(
        groups=(
            Group("types", patterns=("@types/*",)),
            Group("patches", update_types=("patch",)),
            Group("security", update_types=("security",)),
        )
    )
    types = must(run(dep("@types/node", "npm"), npm("@types/node", **{"2_0_0": 30}), policy=policy))
    patch = must(run(dep("fy-left", "npm"), npm("fy-left", **{"1_0_1": 30}), policy=policy))
    minor = must(run(dep("fy-right", "npm"), npm("fy-right", **{"1_1_0": 30}), policy=policy))
    fix = fixed_by("npm", "fy-sec", "1.1.0")
    security = must(
        run(dep("fy-sec", "npm"), npm("fy-sec", **{"1_1_0": 30}), policy=policy, advisories=[fix])
    )
    assert (types.group, patch.group, minor.group, security.group) == (
        "types",
        "patches",
        None,
        "security",
    )
    grouped = group_updates([types, patch, minor, security])
    assert list(grouped) == ["types", "patches", None, "security"]
    assert grouped["patches"] == [patch]
