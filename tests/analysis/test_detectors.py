"""Every detector on real code (requests 2.20.0, see conftest.py), and dead code agreeing with
the vulture tool itself."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from forgeyard.analysis.detectors import DETECTORS
from forgeyard.analysis.detectors.base import FileReport, RawFinding, enclosing_symbols
from forgeyard.analysis.detectors.dead_code import DeadCodeDetector
from forgeyard.analysis.detectors.duplicates import DuplicatesDetector
from forgeyard.analysis.detectors.secrets import SecretsDetector, redact

Reports = dict[str, dict[str, FileReport]]


def findings(reports: Reports, detector: str, path: str, rule_id: str) -> list[RawFinding]:
    return [f for f in reports[detector][path].findings if f.rule_id == rule_id]


def test_lint_reports_ruff_rules_with_fixability(requests_reports: Reports) -> None:
    (unused,) = findings(requests_reports, "lint", "setup.py", "F401")
    assert unused.line_start == 4
    assert unused.snippet == "import re"
    assert unused.severity == "low"
    assert unused.fixable
    undefined = findings(requests_reports, "lint", "requests/compat.py", "F821")
    assert undefined, "Python 2 names (unicode, basestring…) are undefined names"
    assert {f.severity for f in undefined} == {"high"}


def test_security_maps_bandit_ratings(requests_reports: Reports) -> None:
    weak_hashes = findings(requests_reports, "security", "requests/auth.py", "B324")
    assert [f.line_start for f in weak_hashes] == [148, 154, 198]
    # HIGH severity with HIGH confidence is critical.
    assert {f.severity for f in weak_hashes} == {"critical"}
    assert weak_hashes[0].symbol == "HTTPDigestAuth.build_digest_header.md5_utf8"
    assert "hashlib.md5" in weak_hashes[0].snippet
    (exec_call,) = findings(requests_reports, "security", "setup.py", "B102")
    assert exec_call.severity == "medium"


def test_complexity_ranks_functions_and_measures_files(requests_reports: Reports) -> None:
    (send,) = findings(requests_reports, "complexity", "requests/adapters.py", "CC-D")
    assert send.symbol == "HTTPAdapter.send"
    assert send.severity == "medium"
    assert "complexity 24" in send.message
    assert send.snippet.strip().startswith("def send(")
    (mi,) = findings(requests_reports, "complexity", "tests/test_requests.py", "MI")
    assert mi.severity == "medium"
    metrics = requests_reports["complexity"]["requests/adapters.py"].metrics
    assert set(metrics) == {"loc", "complexity_total", "complexity_max", "functions", "mi"}
    assert metrics["complexity_max"] == 24
    assert all("loc" in r.metrics for r in requests_reports["complexity"].values())


def test_dead_code_combines_facts_across_files(requests_reports: Reports) -> None:
    combined = DeadCodeDetector().combine(requests_reports["dead_code"])
    found = {(f.path, f.finding.line_start, f.finding.message) for f in combined}
    assert ("requests/adapters.py", 120, "unused attribute 'config' (60% confidence)") in found
    config = next(f.finding for f in combined if f.finding.line_start == 120)
    assert (config.rule_id, config.severity, config.symbol) == (
        "V101",
        "info",
        "HTTPAdapter.__init__",
    )
    # Defined in one file and used in another: not reported.
    assert not any(
        f.finding.message.startswith("unused function 'to_native_string'") for f in combined
    )


def test_secrets_are_found_and_redacted(requests_reports: Reports) -> None:
    found = findings(requests_reports, "secrets", "tests/test_utils.py", "basic-auth-credentials")
    assert 358 in [f.line_start for f in found]
    for finding in found:
        assert finding.severity == "high"
        assert finding.message == "possible secret: Basic Auth Credentials"
        assert ":pass@" not in finding.snippet
        assert "…" in finding.snippet


def test_secrets_in_a_new_file(tmp_path: Path) -> None:
    key = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example key id
    (tmp_path / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{key}"\n')
    (finding,) = SecretsDetector().analyse(tmp_path, ["settings.py"])["settings.py"].findings
    assert finding.rule_id == "aws-access-key"
    assert key not in finding.snippet
    assert finding.snippet == f'AWS_ACCESS_KEY_ID = "{redact(key)}"'
    assert redact(key) == "AKIA…"
    assert redact("pass") == "p…"


def test_large_files_measure_every_file(requests_reports: Reports) -> None:
    reports = requests_reports["large_files"]
    (large,) = reports["HISTORY.md"].findings
    assert (large.rule_id, large.severity) == ("LARGE-LINES", "info")
    assert "1,623 lines" in large.message
    assert all({"lines", "loc", "bytes"} <= set(r.metrics) for r in reports.values())
    assert reports["LICENSE"].metrics["lines"] > 0


def test_duplicates_finds_repeated_blocks(requests_reports: Reports) -> None:
    combined = DuplicatesDetector().combine(requests_reports["duplicates"])
    auth = [f for f in combined if f.path == "requests/auth.py"]
    assert [(f.finding.line_start, f.finding.rule_id) for f in auth] == [(86, "DUP"), (298, "DUP")]
    assert "requests/auth.py:298" in auth[0].finding.message


def test_every_detector_found_something(requests_reports: Reports) -> None:
    for name, detector in DETECTORS.items():
        reports = requests_reports[name]
        combined = detector().combine(reports)
        assert combined or any(r.findings for r in reports.values()), name


def test_report_survives_json(requests_reports: Reports) -> None:
    report = requests_reports["security"]["requests/auth.py"]
    assert FileReport.from_dict(report.to_dict()) == report


def test_enclosing_symbols_names_nested_definitions() -> None:
    import ast

    source = (
        "x = 1\nclass A:\n    @property\n    def b(self):\n        def c():\n            pass\n"
    )
    assert enclosing_symbols(ast.parse(source)) == {
        2: "A",
        3: "A.b",
        4: "A.b",
        5: "A.b.c",
        6: "A.b.c",
    }


# The fixture tree for the comparison with the vulture tool: uses across files, imports in an
# __init__.py, test files, a name only vulture's unittest whitelist uses, unreachable code.
VULTURE_TREE = {
    "pkg/__init__.py": "from pkg.core import used_elsewhere\nimport os\n",
    "pkg/core.py": (
        "import csv\nimport json\n\n\ndef used_elsewhere():\n    return json.dumps(1)\n\n\n"
        "def never_called(arg):\n    return 1\n    print('unreachable')\n\n\n"
        "class Thing:\n    colour = 'red'\n\n    def method(self):\n        self.size = 3\n"
        "\n    @property\n    def shape(self):\n        return 'round'\n"
    ),
    "pkg/cli.py": "from pkg import core\n\n\ndef main():\n    return core.Thing().method()\n",
    "tests/test_core.py": (
        "import unittest\n\n\nclass TestThing(unittest.TestCase):\n"
        "    def setUp(self):\n        self.x = 1\n\n    def test_it(self):\n        pass\n"
    ),
}


def _vulture_tool(root: Path) -> set[tuple[str, int, str]]:
    done = subprocess.run(
        [sys.executable, "-m", "vulture", "."], cwd=root, capture_output=True, check=False
    )
    pattern = re.compile(r"^(.+?):(\d+): (.+)$")
    return {
        (m[1], int(m[2]), m[3])
        for line in done.stdout.decode().splitlines()
        if (m := pattern.match(line))
    }


def _ours(root: Path) -> set[tuple[str, int, str]]:
    detector = DeadCodeDetector()
    paths = [p.relative_to(root).as_posix() for p in root.rglob("*.py")]
    reports = detector.analyse(root, paths)
    direct = [(path, f) for path, r in reports.items() for f in r.findings]
    combined = [(f.path, f.finding) for f in detector.combine(reports)]
    return {(path, f.line_start, f.message) for path, f in direct + combined}


def test_dead_code_agrees_with_vulture_on_a_fixture(tmp_path: Path) -> None:
    for path, text in VULTURE_TREE.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    ours = _ours(tmp_path)
    assert ours == _vulture_tool(tmp_path)
    assert ("pkg/core.py", 11, "unreachable code after 'return' (100% confidence)") in ours
    assert ("pkg/core.py", 1, "unused import 'csv' (90% confidence)") in ours
    assert not any(path == "pkg/__init__.py" for path, _, _ in ours)


def test_dead_code_agrees_with_vulture_on_requests(requests_tree: Path) -> None:
    ours = _ours(requests_tree)
    assert len(ours) > 40
    assert ours == _vulture_tool(requests_tree)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_unparsable_files_get_an_error_note(tmp_path: Path, name: str) -> None:
    files = {
        "py2.py": b"print 'hello'\nexec 'x = 1'\n",
        "nul.py": b"x = 1\0\0\0\n",
        "latin.py": b"# -*- coding: latin-1 -*-\nname = '\xe9'\n",
        "junk.py": bytes(range(256)) * 4,
        "good.py": b"import os\n\n\ndef f(x=[]):\n    return eval(x)\n",
    }
    for path, data in files.items():
        (tmp_path / path).write_bytes(data)
    detector = DETECTORS[name]()
    paths = [path for path in files if detector.applies_to(path)]
    reports = detector.analyse(tmp_path, paths)
    assert set(reports) == set(paths)
    if name in {"lint", "security", "complexity", "dead_code"}:
        assert reports["py2.py"].error
        assert reports["junk.py"].error
        assert not reports["good.py"].error
