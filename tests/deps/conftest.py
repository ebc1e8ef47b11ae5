"""Real package registries for the dependency-update tests, started once per session.

``pypi_index`` is a pypiserver with ``fy-alpha`` 1.0.0, 1.1.0, 2.0.0, 2.1.0rc1 and
``fy-beta`` 0.1.0 (wheels); ``npm_registry`` is a verdaccio with ``fy-left`` 1.0.0 (deprecated),
1.2.0, 2.0.0, 3.0.0-beta.1 and ``@fy/right`` 0.1.0. See tests/registries/harness.py.

For the install and test stages (tests/deps/test_build.py) the index also serves ``fy-gamma``
(1.0.0: ``add`` adds; 2.0.0: ``add`` subtracts, so a repository's tests fail on it) and
pytest with what it needs, rebuilt from this venv's own installation; the npm registry also
has ``fy-noisy`` 1.0.0, whose postinstall script would write a file.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.registries import harness

PYPI_PACKAGES = {"fy-alpha": ["1.0.0", "1.1.0", "2.0.0", "2.1.0rc1"], "fy-beta": ["0.1.0"]}
NPM_PACKAGES = {"fy-left": ["1.0.0", "1.2.0", "2.0.0", "3.0.0-beta.1"], "@fy/right": ["0.1.0"]}
# Packages with code, for the build tests; the counts above stay as they are.
PYPI_CODE_PACKAGES = {
    ("fy-gamma", "1.0.0"): "def add(a, b):\n    return a + b\n",
    ("fy-gamma", "2.0.0"): "def add(a, b):\n    return a - b\n",
}
NPM_POSTINSTALL = {
    "postinstall": "node -e \"require('fs').writeFileSync("
    "require('path').join(process.env.INIT_CWD || '.', 'postinstall-ran'), '')\""
}
NPM_DEPRECATED = {"fy-left@1.0.0": "fy-left 1.0 is unsupported, use 2.x"}


@pytest.fixture(scope="session")
def pypi_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The simple index URL (``http://127.0.0.1:PORT/simple/``) of a loaded pypiserver."""
    root = tmp_path_factory.mktemp("pypiserver")
    packages = root / "packages"
    packages.mkdir()
    for name, versions in PYPI_PACKAGES.items():
        for version in versions:
            harness.write_wheel(packages, name, version)
    for (name, version), module in PYPI_CODE_PACKAGES.items():
        harness.write_wheel(packages, name, version, module)
    harness.write_installed_wheels(packages, "pytest")
    with harness.start_pypiserver(packages, root) as url:
        yield f"{url}/simple/"


@pytest.fixture(scope="session")
def npm_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Verdaccio]:
    """A verdaccio with the packages above published by its one user."""
    root = tmp_path_factory.mktemp("verdaccio")
    work = root / "work"
    with harness.start_verdaccio(root) as verdaccio:
        for name, versions in NPM_PACKAGES.items():
            for version in versions:
                harness.publish_npm(verdaccio, work, name, version)
        for spec, message in NPM_DEPRECATED.items():
            harness.npm(verdaccio, "deprecate", spec, message)
        harness.publish_npm(verdaccio, work, "fy-noisy", "1.0.0", scripts=NPM_POSTINSTALL)
        yield verdaccio
