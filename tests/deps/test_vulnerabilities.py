"""OSV advisories: loading an export, evaluating ranges, merging sources."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from forgeyard.deps.ecosystems import ECOSYSTEMS
from forgeyard.deps.vulnerabilities import (
    Advisory,
    AdvisoryError,
    CombinedSource,
    OsvDatabase,
    RegistryAdvisories,
    affects,
    parse_advisory,
)

PYPI, NPM = ECOSYSTEMS["pypi"], ECOSYSTEMS["npm"]

PYSEC: dict[str, Any] = {
    "id": "PYSEC-2024-1",
    "aliases": ["CVE-2024-0001"],
    "summary": "Request smuggling",
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "Fy_Alpha"},
            "ranges": [
                {
                    "type": "ECOSYSTEM",
                    "events": [{"introduced": "0"}, {"fixed": "1.1.0"}],
                }
            ],
            "versions": ["1.0.0"],
        }
    ],
}
GHSA_NPM: dict[str, Any] = {
    "id": "GHSA-aaaa-bbbb-cccc",
    "aliases": ["CVE-2024-0002"],
    "summary": "Prototype pollution",
    "database_specific": {"severity": "MODERATE"},
    "affected": [
        {
            "package": {"ecosystem": "npm", "name": "fy-left"},
            "ranges": [
                {
                    "type": "SEMVER",
                    "events": [
                        {"introduced": "1.0.0"},
                        {"fixed": "1.2.1"},
                        {"introduced": "2.0.0"},
                        {"last_affected": "2.0.3"},
                    ],
                }
            ],
        }
    ],
}


def advisory(data: dict[str, Any]) -> Advisory:
    parsed = parse_advisory(data, "test")
    assert parsed is not None
    return parsed


def test_parse_maps_ecosystems_names_severity_and_fixed_versions() -> None:
    pysec, ghsa = advisory(PYSEC), advisory(GHSA_NPM)
    assert pysec.affected[0].ecosystem == "pypi"
    assert pysec.affected[0].name == "fy-alpha"  # PEP 503
    assert pysec.severity is None  # no database_specific severity, CVSS is not scored
    assert pysec.fixed_in == ("1.1.0",)
    assert ghsa.severity == "medium"  # GHSA's MODERATE
    assert ghsa.affected[0].ecosystem == "npm"
    assert ghsa.fixed_in == ("1.2.1",)
    assert ghsa.names == {"GHSA-aaaa-bbbb-cccc", "CVE-2024-0002"}


def test_withdrawn_advisories_are_dropped() -> None:
    assert parse_advisory({**PYSEC, "withdrawn": "2024-05-01T00:00:00Z"}, "x") is None


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.9", True), ("1.0.0", True), ("1.0.5", True), ("1.1.0", False), ("2.0", False)],
)
def test_ecosystem_range_with_introduced_zero_and_fixed(version: str, expected: bool) -> None:
    assert affects(advisory(PYSEC), PYPI, version) is expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.9.0", False),  # before introduced
        ("1.0.0", True),
        ("1.2.0", True),
        ("1.2.1", False),  # fixed
        ("1.9.0", False),
        ("2.0.0", True),  # introduced again
        ("2.0.3", True),  # last_affected is inclusive
        ("2.0.4", False),
        ("3.0.0-beta.1", False),
    ],
)
def test_semver_range_with_last_affected(version: str, expected: bool) -> None:
    assert affects(advisory(GHSA_NPM), NPM, version) is expected


def test_explicit_versions_list_and_name_filter() -> None:
    data = {
        "id": "OSV-1",
        "affected": [
            {"package": {"ecosystem": "PyPI", "name": "fy-beta"}, "versions": ["0.1.0", "0.3"]}
        ],
    }
    found = advisory(data)
    assert affects(found, PYPI, "0.1")  # PEP 440 equality: 0.1 == 0.1.0
    assert not affects(found, PYPI, "0.2")
    assert affects(found, PYPI, "0.3", name="FY_Beta")
    assert not affects(found, PYPI, "0.3", name="fy-alpha")
    assert not affects(found, NPM, "0.1.0")  # another ecosystem's entry


def test_unreadable_event_versions_are_ignored() -> None:
    data = {
        "id": "OSV-2",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "x"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "not a v"}]},
                    {"type": "GIT", "events": [{"introduced": "abc123"}]},
                ],
            }
        ],
    }
    assert affects(advisory(data), PYPI, "5.0")
    assert not affects(advisory(data), PYPI, "0.5")


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


async def test_load_directory_indexes_by_ecosystem_and_normalised_name(tmp_path: Path) -> None:
    write_json(tmp_path / "PYSEC-2024-1.json", PYSEC)
    (tmp_path / "npm").mkdir()
    write_json(tmp_path / "npm" / "GHSA-aaaa-bbbb-cccc.json", GHSA_NPM)
    (tmp_path / "README.txt").write_text("not an advisory")
    database = OsvDatabase.load(tmp_path)
    assert len(database) == 2
    assert [a.id for a in await database.advisories("pypi", "FY.alpha")] == ["PYSEC-2024-1"]
    assert [a.id for a in await database.advisories("npm", "fy-left")] == ["GHSA-aaaa-bbbb-cccc"]
    assert await database.advisories("npm", "fy-alpha") == []


async def test_load_all_zip_export(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("GHSA-aaaa-bbbb-cccc.json", json.dumps(GHSA_NPM))
        out.writestr("PYSEC-2024-1.json", json.dumps(PYSEC))
    database = OsvDatabase.load(archive)
    assert len(database) == 2
    found = await database.advisories("npm", "fy-left")
    assert found[0].severity == "medium"


def test_bad_json_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "BROKEN-1.json").write_text("{not json")
    with pytest.raises(AdvisoryError, match=r"BROKEN-1\.json: not JSON"):
        OsvDatabase.load(tmp_path)


def test_advisory_without_id_is_named(tmp_path: Path) -> None:
    write_json(tmp_path / "NOID.json", {"summary": "x"})
    with pytest.raises(AdvisoryError, match=r"NOID\.json: the advisory has no 'id'"):
        OsvDatabase.load(tmp_path)


def test_bad_zip_member_and_bad_zip_are_named(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("BAD-2.json", json.dumps([1, 2]))
    with pytest.raises(AdvisoryError, match=r"all\.zip:BAD-2\.json: .*JSON object"):
        OsvDatabase.load(archive)
    fake = tmp_path / "fake.zip"
    fake.write_text("plain text")
    with pytest.raises(AdvisoryError, match=r"fake\.zip: not a zip archive"):
        OsvDatabase.load(fake)
    with pytest.raises(AdvisoryError, match="no such file"):
        OsvDatabase.load(tmp_path / "missing")


async def test_registry_advisories_in_pypi_json_api_shape() -> None:
    served = {
        "Fy_Alpha": [
            {
                "id": "PYSEC-2024-1",
                "aliases": ["CVE-2024-0001"],
                "summary": "Request smuggling",
                "fixed_in": ["1.1.0", "2.0.1"],
                "withdrawn": None,
            }
        ]
    }
    source = RegistryAdvisories("pypi", served)
    found = await source.advisories("pypi", "fy-alpha")
    assert [a.id for a in found] == ["PYSEC-2024-1"]
    # No ranges: below the lowest fixed version counts as affected.
    assert affects(found[0], PYPI, "1.0.0", name="fy-alpha")
    assert not affects(found[0], PYPI, "1.1.0", name="fy-alpha")


async def test_combined_source_deduplicates_by_id_and_alias(tmp_path: Path) -> None:
    write_json(tmp_path / "PYSEC-2024-1.json", PYSEC)
    database = OsvDatabase.load(tmp_path)
    ghsa_copy = {"id": "GHSA-xxxx-yyyy-zzzz", "aliases": ["CVE-2024-0001"], "fixed_in": ["1.1"]}
    other = {"id": "PYSEC-2024-9", "fixed_in": ["3.0"]}
    registry = RegistryAdvisories("pypi", {"fy-alpha": [ghsa_copy, PYSEC, other]})
    merged = await CombinedSource([database, registry]).advisories("pypi", "fy-alpha")
    assert [a.id for a in merged] == ["PYSEC-2024-1", "PYSEC-2024-9"]
