"""The npm ecosystem: package.json groups, package-lock v1 and v3, npm's range semantics
through node-semver, and rewrites that change one JSON value and no other byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forgeyard.deps.ecosystems.base import (
    Dependency,
    Manifest,
    ManifestError,
    UnsupportedRequirement,
)
from forgeyard.deps.ecosystems.npm import NpmEcosystem
from tests.deps import changed_line

PACKAGE = """\
{
  "name": "web",
  "version": "1.0.0",
  "scripts": { "dependencies": "not a section" },
  "dependencies": {
    "react": "^18.2.0",
    "@scope/ui": "~1.2",
    "lodash": "4.17.21",
    "left-pad": "latest",
    "local": "file:../local"
  },
  "devDependencies": {
    "typescript": ">=5.0.0 <5.4.0",
    "jest": "29.x"
  },
  "optionalDependencies": {
    "fsevents": "^2.3.2"
  },
  "peerDependencies": {
    "react-dom": "^0.2.3"
  }
}
"""
LOCK_V3 = {
    "name": "web",
    "lockfileVersion": 3,
    "packages": {
        "": {"name": "web"},
        "node_modules/react": {"version": "18.2.0"},
        "node_modules/@scope/ui": {"version": "1.2.7"},
        "node_modules/lodash": {"version": "4.17.21"},
        "node_modules/typescript": {"version": "5.3.3"},
        "node_modules/jest/node_modules/react": {"version": "17.0.0"},
    },
}
LOCK_V1 = {
    "name": "web",
    "lockfileVersion": 1,
    "dependencies": {
        "react": {"version": "18.1.0"},
        "local": {"version": "file:../local"},
    },
}

npm = NpmEcosystem()


def write(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


def dep(name: str, specifier: str, line: int, group: str = "main", **fields: object) -> Dependency:
    values: dict[str, object] = {"resolved": None, "reference": None}
    values.update(fields)
    return Dependency(
        ecosystem="npm",
        name=name,
        specifier=specifier,
        manifest="package.json",
        group=group,
        line=line,
        **values,  # type: ignore[arg-type]
    )


def test_finds_package_json_outside_node_modules(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "package.json": PACKAGE,
            "package-lock.json": json.dumps(LOCK_V3),
            "apps/admin/package.json": "{}",
            "node_modules/react/package.json": "{}",
        },
    )
    assert npm.find_manifests(tmp_path) == [
        Manifest("npm", "apps/admin/package.json", None),
        Manifest("npm", "package.json", "package-lock.json"),
    ]


def test_parses_all_groups_with_a_v3_lock(tmp_path: Path) -> None:
    write(tmp_path, {"package.json": PACKAGE, "package-lock.json": json.dumps(LOCK_V3, indent=2)})
    assert npm.parse(tmp_path, Manifest("npm", "package.json", "package-lock.json")) == [
        dep("react", "^18.2.0", 6, resolved="18.2.0"),
        dep("@scope/ui", "~1.2", 7, resolved="1.2.7"),
        dep("lodash", "4.17.21", 8, resolved="4.17.21"),
        dep("left-pad", "latest", 9, reference="latest"),
        dep("local", "file:../local", 10, reference="file:../local"),
        dep("typescript", ">=5.0.0 <5.4.0", 13, "dev", resolved="5.3.3"),
        dep("jest", "29.x", 14, "dev"),
        dep("fsevents", "^2.3.2", 17, "optional"),
        dep("react-dom", "^0.2.3", 20, "peer"),
    ]


def test_reads_a_v1_lock(tmp_path: Path) -> None:
    write(tmp_path, {"package.json": PACKAGE, "package-lock.json": json.dumps(LOCK_V1)})
    found = npm.parse(tmp_path, Manifest("npm", "package.json", "package-lock.json"))
    resolved = {d.name: d.resolved for d in found}
    assert resolved["react"] == "18.1.0"
    assert resolved["local"] is None  # a lock "version" that is a path is no version
    assert resolved["lodash"] == "4.17.21"  # the exact range itself


@pytest.mark.parametrize(
    ("name", "target", "old", "new"),
    [
        ("react", "19.0.1", '    "react": "^18.2.0",\n', '    "react": "^19.0.1",\n'),
        ("@scope/ui", "2.0.3", '    "@scope/ui": "~1.2",\n', '    "@scope/ui": "~2.0",\n'),
        ("lodash", "4.17.22", '    "lodash": "4.17.21",\n', '    "lodash": "4.17.22",\n'),
        (
            "typescript",
            "5.5.2",
            '    "typescript": ">=5.0.0 <5.4.0",\n',
            '    "typescript": ">=5.0.0 <5.6.0",\n',
        ),
        ("jest", "30.1.0", '    "jest": "29.x"\n', '    "jest": "30.x"\n'),
        ("react-dom", "0.3.0", '    "react-dom": "^0.2.3"\n', '    "react-dom": "^0.3.0"\n'),
        ("react", "19.0.0-rc.1", '    "react": "^18.2.0",\n', '    "react": "^19.0.0-rc.1",\n'),
    ],
)
def test_rewrite_changes_one_value(
    tmp_path: Path, name: str, target: str, old: str, new: str
) -> None:
    found = {d.name: d for d in _parsed(tmp_path)}
    rewritten = npm.rewrite(PACKAGE, "package.json", found[name], target)
    assert changed_line(PACKAGE, rewritten) == (old, new)
    assert rewritten.endswith("}\n")


def test_rewrite_leaves_a_range_that_already_allows_the_target(tmp_path: Path) -> None:
    react = next(d for d in _parsed(tmp_path) if d.name == "react")
    assert npm.rewrite(PACKAGE, "package.json", react, "18.3.1") == PACKAGE


def test_rewrite_finds_the_key_in_the_right_section_of_a_compact_file() -> None:
    text = '{"devDependencies":{"a":"^1.0.0"},"dependencies":{"a":"^1.0.0"}}'
    main = Dependency("npm", "a", "^1.0.0", "package.json", "main", None, 1)
    assert npm.rewrite(text, "package.json", main, "2.1.0") == (
        '{"devDependencies":{"a":"^1.0.0"},"dependencies":{"a":"^2.1.0"}}'
    )


@pytest.mark.parametrize("specifier", ["latest", "*", "file:../local", "git+https://x/y.git"])
def test_rewrite_refuses_what_is_not_a_version_range(specifier: str) -> None:
    text = json.dumps({"dependencies": {"a": specifier}})
    dependency = Dependency("npm", "a", specifier, "package.json", "main", None, 1)
    with pytest.raises(UnsupportedRequirement, match="cannot rewrite a"):
        npm.rewrite(text, "package.json", dependency, "2.0.0")


def test_rewrite_of_an_undeclared_dependency_names_the_file() -> None:
    dependency = Dependency("npm", "vue", "^3.0.0", "package.json", "main", None, None)
    with pytest.raises(ManifestError, match=r"package\.json: vue is not declared"):
        npm.rewrite(PACKAGE, "package.json", dependency, "3.1.0")


def test_broken_json_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, {"package.json": '{\n  "dependencies": {\n    "a": "^1.0.0",\n  }\n}\n'})
    with pytest.raises(ManifestError) as error:
        npm.parse(tmp_path, Manifest("npm", "package.json", None))
    assert (error.value.path, error.value.line) == ("package.json", 4)
    write(tmp_path, {"package.json": '{"dependencies": {"a": 1}}'})
    with pytest.raises(ManifestError, match=r"package\.json:1: the range of a must be a string"):
        npm.parse(tmp_path, Manifest("npm", "package.json", None))


@pytest.mark.parametrize(
    ("specifier", "version", "allowed"),
    [
        ("^0.2.3", "0.2.9", True),
        ("^0.2.3", "0.3.0", False),
        ("^0.0.3", "0.0.4", False),
        ("^1.2.3", "1.9.0", True),
        ("^1.2.3", "1.9.0-rc.1", False),  # prereleases only on a prerelease's own tuple
        ("^1.2.3-beta.2", "1.2.3-beta.4", True),
        ("~1.2", "1.2.9", True),
        ("~1.2", "1.3.0", False),
        (">=1 <2", "1.5.0", True),
        (">=1 <2", "2.0.0", False),
        ("1.x", "1.99.0", True),
        ("*", "7.0.0", True),
        ("*", "7.0.0-alpha", False),
        ("1.2 || 2.x", "2.3.0", True),
        ("1.2 || 2.x", "1.3.0", False),
    ],
)
def test_satisfies_follows_npm(specifier: str, version: str, allowed: bool) -> None:
    assert npm.satisfies(specifier, version) is allowed


def test_versions_order_and_prereleases() -> None:
    assert npm.compare("1.0.0-rc.1", "1.0.0") == -1
    assert npm.compare("1.0.0-rc.10", "1.0.0-rc.2") == 1
    assert npm.compare("1.0.0-alpha", "1.0.0-alpha.1") == -1
    assert npm.compare("1.0.0+build.1", "1.0.0+build.2") == 0
    assert npm.is_prerelease("1.0.0-rc.1")
    assert not npm.is_prerelease("1.0.0")
    with pytest.raises(ValueError, match="not an npm version range"):
        npm.satisfies("latest", "1.0.0")
    with pytest.raises(ValueError, match="Invalid Version"):
        npm.compare("1.2", "1.3.0")


def _parsed(root: Path) -> list[Dependency]:
    write(root, {"package.json": PACKAGE})
    return npm.parse(root, Manifest("npm", "package.json", None))
