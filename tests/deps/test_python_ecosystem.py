"""The Python ecosystem: requirements files, pyproject.toml (PEP 621 and Poetry), uv and
Poetry locks, PEP 440 and Poetry range semantics, and one-line rewrites."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgeyard.deps.ecosystems import ECOSYSTEMS, find_all
from forgeyard.deps.ecosystems.base import (
    Dependency,
    Manifest,
    ManifestError,
    UnsupportedRequirement,
)
from forgeyard.deps.ecosystems.python import PythonEcosystem, poetry_constraint
from tests.deps import changed_line

REQUIREMENTS = """\
# Production requirements
--index-url https://pypi.example.org/simple
-r requirements/base.txt
-c constraints.txt

requests[socks] >= 2.28, <3  # HTTP client
Django==4.2.7 ; python_version >= "3.10"
rich~=13.4
numpy==1.26.2 \\
    --hash=sha256:0a2bde65f1b9f0e1 \\
    --hash=sha256:5ef58f9a3c2ba1e2
mylib @ git+https://git.example.org/mylib.git@v1.0
./vendor-free/localpkg
-e ./editable
attrs
"""
BASE = "Click>=8.0\n-r ../requirements.txt\n"  # includes its includer: a cycle
CONSTRAINTS = "attrs==23.1.0\n"

PEP621 = """\
[project]
name = "service"
version = "1.0.0"
dependencies = [
    "httpx>=0.27,<1",  # the HTTP client
    'PyYAML ~= 6.0 ; platform_system != "Windows"',
    "uvicorn[standard]==0.30.1",
]

[project.optional-dependencies]
# Extras
postgres = ["psycopg[binary]>=3.1"]
docs = [
  "mkdocs==1.5.3",
]

[dependency-groups]
dev = ["pytest>=8", {include-group = "lint"}]
lint = ["ruff"]
"""
UV_LOCK = """\
version = 1
requires-python = ">=3.11"

[[package]]
name = "httpx"
version = "0.27.2"
source = { registry = "https://index.example/simple" }

[[package]]
name = "pyyaml"
version = "6.0.1"

[[package]]
name = "psycopg"
version = "3.1.18"

[[package]]
name = "pytest"
version = "8.0.0"

[[package]]
name = "pytest"
version = "7.4.0"
"""
POETRY = """\
[tool.poetry]
name = "app"
version = "0.1.0"

[tool.poetry.dependencies]
python = "^3.11"
fastapi = "^0.110"  # web framework
SQLAlchemy = { version = "~2.0.25", extras = ["asyncio"] }
pydantic = '2.6.1'
internal = { git = "https://git.example.org/internal.git", tag = "v2" }

[tool.poetry.group.test.dependencies]
pytest = ">=7.4,<9"
"""
POETRY_LOCK = """\
[[package]]
name = "fastapi"
version = "0.110.3"

[[package]]
name = "sqlalchemy"
version = "2.0.29"
"""

python = PythonEcosystem()


def write(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


def dep(name: str, specifier: str, line: int | None, **fields: object) -> Dependency:
    values: dict[str, object] = {
        "ecosystem": "pypi",
        "manifest": "requirements.txt",
        "group": "main",
        "resolved": None,
        "markers": None,
        "reference": None,
    }
    values.update(fields)
    return Dependency(name=name, specifier=specifier, line=line, **values)  # type: ignore[arg-type]


@pytest.fixture
def requirements_root(tmp_path: Path) -> Path:
    return write(
        tmp_path,
        {
            "requirements.txt": REQUIREMENTS,
            "requirements/base.txt": BASE,
            "constraints.txt": CONSTRAINTS,
            "tools/requirements-dev.txt": "-r common.in\n",
            "tools/common.in": "black==24.1.0\n",
            "node_modules/pkg/requirements.txt": "ignored==1\n",
            ".venv/lib/requirements.txt": "ignored==1\n",
        },
    )


def test_finds_requirements_files_includes_but_not_constraints(requirements_root: Path) -> None:
    assert python.find_manifests(requirements_root) == [
        Manifest("pypi", "requirements.txt", None),
        Manifest("pypi", "requirements/base.txt", None),
        Manifest("pypi", "tools/common.in", None),
        Manifest("pypi", "tools/requirements-dev.txt", None),
    ]


def test_parses_a_requirements_file(requirements_root: Path) -> None:
    manifest = Manifest("pypi", "requirements.txt", None)
    assert python.parse(requirements_root, manifest) == [
        dep("requests", ">= 2.28, <3", 6),
        dep("django", "==4.2.7", 7, resolved="4.2.7", markers='python_version >= "3.10"'),
        dep("rich", "~=13.4", 8),
        dep("numpy", "==1.26.2", 9, resolved="1.26.2"),
        dep("mylib", "", 12, reference="git+https://git.example.org/mylib.git@v1.0"),
        dep("attrs", "", 15, resolved="23.1.0"),  # resolved by the constraints file's pin
    ]
    included = python.parse(requirements_root, Manifest("pypi", "requirements/base.txt", None))
    assert included == [dep("click", ">=8.0", 1, manifest="requirements/base.txt")]


@pytest.mark.parametrize(
    ("name", "target", "old", "new"),
    [
        (
            "requests",
            "3.1.0",
            "requests[socks] >= 2.28, <3  # HTTP client\n",
            "requests[socks] >= 2.28, <4  # HTTP client\n",
        ),
        (
            "django",
            "5.0.1",
            'Django==4.2.7 ; python_version >= "3.10"\n',
            'Django==5.0.1 ; python_version >= "3.10"\n',
        ),
        ("rich", "14.2.1", "rich~=13.4\n", "rich~=14.2\n"),
    ],
)
def test_rewrite_changes_one_line(
    requirements_root: Path, name: str, target: str, old: str, new: str
) -> None:
    text = REQUIREMENTS
    found = python.parse(requirements_root, Manifest("pypi", "requirements.txt", None))
    dependency = next(d for d in found if d.name == name)
    assert changed_line(text, python.rewrite(text, "requirements.txt", dependency, target)) == (
        old,
        new,
    )


def test_rewrite_leaves_a_range_that_already_allows_the_target() -> None:
    dependency = dep("requests", ">= 2.28, <3", 6)
    assert python.rewrite(REQUIREMENTS, "requirements.txt", dependency, "2.31.0") is REQUIREMENTS


@pytest.mark.parametrize(
    ("dependency", "reason"),
    [
        (dep("numpy", "==1.26.2", 9), "pinned by hash"),
        (dep("mylib", "", 12, reference="git+https://x/y.git"), "not from a version range"),
    ],
)
def test_rewrite_refuses_hashes_and_urls(dependency: Dependency, reason: str) -> None:
    with pytest.raises(UnsupportedRequirement, match=reason):
        python.rewrite(REQUIREMENTS, "requirements.txt", dependency, "2.0.0")


def test_rewrite_refuses_an_excluded_version() -> None:
    with pytest.raises(UnsupportedRequirement, match="explicitly excluded"):
        python.rewrite("lib>=1,!=1.5\n", "requirements.txt", dep("lib", ">=1,!=1.5", 1), "1.5")


def test_an_invalid_requirement_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "# ok\nrequests\nflask >>= 2\n"})
    with pytest.raises(ManifestError) as error:
        python.parse(tmp_path, Manifest("pypi", "requirements.txt", None))
    assert (error.value.path, error.value.line) == ("requirements.txt", 3)
    assert str(error.value).startswith("requirements.txt:3: invalid requirement 'flask >>= 2'")


def test_a_missing_or_escaping_include_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "-r missing.txt\n", "r2/requirements.txt": "-r ../../x\n"})
    with pytest.raises(ManifestError, match=r"requirements.txt:1: missing.txt not found"):
        python.parse(tmp_path, Manifest("pypi", "requirements.txt", None))
    with pytest.raises(ManifestError, match="outside the repository"):
        python.parse(tmp_path, Manifest("pypi", "r2/requirements.txt", None))


def test_parses_pep621_with_extras_groups_and_uv_lock(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": PEP621, "uv.lock": UV_LOCK})
    [manifest] = python.find_manifests(tmp_path)
    assert manifest == Manifest("pypi", "pyproject.toml", "uv.lock")
    pyproject = {"manifest": "pyproject.toml"}
    assert python.parse(tmp_path, manifest) == [
        dep("httpx", ">=0.27,<1", 5, resolved="0.27.2", **pyproject),
        dep(
            "pyyaml",
            "~= 6.0",
            6,
            resolved="6.0.1",
            markers='platform_system != "Windows"',
            **pyproject,
        ),
        dep("uvicorn", "==0.30.1", 7, resolved="0.30.1", **pyproject),
        dep("psycopg", ">=3.1", 12, group="optional:postgres", resolved="3.1.18", **pyproject),
        dep("mkdocs", "==1.5.3", 14, group="optional:docs", resolved="1.5.3", **pyproject),
        # pytest is locked at two versions (a forked resolution): not guessed
        dep("pytest", ">=8", 18, group="group:dev", **pyproject),
        dep("ruff", "", 19, group="group:lint", **pyproject),
    ]


def test_pep621_rewrite_keeps_comments_and_quoting(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": PEP621})
    found = {d.name: d for d in python.parse(tmp_path, python.find_manifests(tmp_path)[0])}
    rewritten = python.rewrite(PEP621, "pyproject.toml", found["httpx"], "1.2.0")
    assert changed_line(PEP621, rewritten) == (
        '    "httpx>=0.27,<1",  # the HTTP client\n',
        '    "httpx>=0.27,<2",  # the HTTP client\n',
    )
    rewritten = python.rewrite(PEP621, "pyproject.toml", found["pyyaml"], "7.1")
    assert changed_line(PEP621, rewritten)[1] == (
        "    'PyYAML ~= 7.1 ; platform_system != \"Windows\"',\n"
    )
    rewritten = python.rewrite(PEP621, "pyproject.toml", found["mkdocs"], "1.6.0")
    assert changed_line(PEP621, rewritten)[1] == '  "mkdocs==1.6.0",\n'


def test_parses_poetry_groups_and_lock(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": POETRY, "poetry.lock": POETRY_LOCK})
    [manifest] = python.find_manifests(tmp_path)
    assert manifest.lock_path == "poetry.lock"
    poetry = {"manifest": "pyproject.toml"}
    assert python.parse(tmp_path, manifest) == [
        dep("fastapi", "^0.110", 7, resolved="0.110.3", **poetry),
        dep("sqlalchemy", "~2.0.25", 8, resolved="2.0.29", **poetry),
        dep("pydantic", "2.6.1", 9, resolved="2.6.1", **poetry),
        dep("internal", "", 10, reference="https://git.example.org/internal.git", **poetry),
        dep("pytest", ">=7.4,<9", 13, group="poetry-group:test", **poetry),
    ]


@pytest.mark.parametrize(
    ("name", "target", "new"),
    [
        ("fastapi", "0.111.2", 'fastapi = "^0.111"  # web framework\n'),
        ("fastapi", "1.0.0", 'fastapi = "^1.0"  # web framework\n'),
        ("sqlalchemy", "2.1.3", 'SQLAlchemy = { version = "~2.1.3", extras = ["asyncio"] }\n'),
        ("pydantic", "2.7.0", "pydantic = '2.7.0'\n"),
        ("pytest", "9.0.1", 'pytest = ">=7.4,<10"\n'),
    ],
)
def test_poetry_rewrite_keeps_operator_precision_and_quoting(
    tmp_path: Path, name: str, target: str, new: str
) -> None:
    write(tmp_path, {"pyproject.toml": POETRY})
    found = {d.name: d for d in python.parse(tmp_path, python.find_manifests(tmp_path)[0])}
    assert changed_line(POETRY, python.rewrite(POETRY, "pyproject.toml", found[name], target))[
        1
    ] == (new)


def test_poetry_rewrite_leaves_a_satisfied_constraint(tmp_path: Path) -> None:
    dependency = dep("fastapi", "^0.110", 7, manifest="pyproject.toml")
    assert python.rewrite(POETRY, "pyproject.toml", dependency, "0.110.9") is POETRY


def test_broken_toml_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[project]\nname = "x"\ndependencies = [\n  "a" "b"\n]\n'})
    with pytest.raises(ManifestError) as error:
        python.parse(tmp_path, Manifest("pypi", "pyproject.toml", None))
    assert error.value.path == "pyproject.toml"
    assert error.value.line == 4


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        ("^1.2.3", [">=1.2.3,<2"]),
        ("^1.2", [">=1.2,<2"]),
        ("^0.2.3", [">=0.2.3,<0.3"]),
        ("^0.0.3", [">=0.0.3,<0.0.4"]),
        ("^0.0", [">=0.0,<0.1"]),
        ("^0", [">=0,<1"]),
        ("~1.2.3", [">=1.2.3,<1.3"]),
        ("~1", [">=1,<2"]),
        ("1.2.3", ["==1.2.3"]),
        ("1.2.*", ["==1.2.*"]),
        ("*", [""]),
        (">=1.0,<2 || ^3.1", [">=1.0,<2", ">=3.1,<4"]),
    ],
)
def test_poetry_constraints_follow_poetry_semantics(constraint: str, expected: list[str]) -> None:
    from packaging.specifiers import SpecifierSet

    assert poetry_constraint(constraint) == [SpecifierSet(spec) for spec in expected]


@pytest.mark.parametrize(
    ("specifier", "version", "allowed"),
    [
        ("~=1.4", "1.9", True),
        ("~=1.4", "2.0", False),
        ("~=1.4.2", "1.5.0", False),
        ("==1.4.*", "1.4.99", True),
        (">=1.0", "2.0rc1", True),  # an explicitly chosen prerelease inside the range
        ("<2.0", "2.0rc1", False),  # PEP 440: <V excludes V's own prereleases
        ("~=1.4", "2.0.dev1", False),
        (">=2.0rc1", "2.0rc2", True),
        ("", "3.0", True),
        ("^0.2.3", "0.3.0", False),  # a Poetry constraint
        ("^0.2.3", "0.2.9", True),
        ("1.2.3", "1.2.3", True),
    ],
)
def test_satisfies_follows_pep440(specifier: str, version: str, allowed: bool) -> None:
    assert python.satisfies(specifier, version) is allowed


def test_versions_order_and_prereleases() -> None:
    assert python.compare("1.0rc1", "1.0") == -1
    assert python.compare("1.0.post1", "1.0") == 1
    assert python.compare("1.0", "1.0.0") == 0
    assert python.compare("1.10", "1.9") == 1
    assert python.is_prerelease("1.0rc1")
    assert python.is_prerelease("2.0.dev3")
    assert not python.is_prerelease("1.0.post1")
    with pytest.raises(ValueError, match="Invalid version"):
        python.compare("not a version", "1.0")


def test_find_all_covers_every_ecosystem(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": PEP621, "web/package.json": "{}\n"})
    assert [(m.ecosystem, m.path) for m in find_all(tmp_path)] == [
        ("pypi", "pyproject.toml"),
        ("npm", "web/package.json"),
    ]
    assert set(ECOSYSTEMS) == {"pypi", "npm"}
