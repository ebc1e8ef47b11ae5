"""What the install and test stages' output means: a summary, the failing tests and a short
sentence on the likely cause, read from what pip, uv, npm and the test runners print.

Pure functions over text; best effort by nature (the tools' wording is not a contract), so
each falls back to something true ("exited with code 2") when it recognises nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from forgeyard.kernel.processes import Completed

TAIL_LINES = 60
_MAX_NAMED_TESTS = 3


@dataclass(frozen=True)
class FailureReport:
    stage: str  # "install" or "test"
    command: str
    output_tail: str  # the last TAIL_LINES lines of its output
    suspected_cause: str
    failing_tests: list[str] = field(default_factory=list)


def output_tail(output: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(output.rstrip("\n").splitlines()[-lines:])


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every non-empty ``secrets`` string (a token, a password) masked."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "****")
    return text


# --- install ----------------------------------------------------------------------------------

_NOT_ON_INDEX = "the install could not find {0} on the index"
_NOT_ON_REGISTRY = "the install could not find {0} on the registry"
_WHEELS_ONLY = "a package needs a source build but only wheels are allowed"
_INSTALL_CAUSES: list[tuple[str, str]] = [
    # pip
    (r"No matching distribution found for (\S+)", _NOT_ON_INDEX),
    # uv
    (r"there is no version of (\S+?)(?: and|,|$)", _NOT_ON_INDEX),
    (r"Because (\S+?) was not found in the package registry", _NOT_ON_INDEX),
    (r"Building source distributions is disabled, but attempted to build `?([^`\s]+)",
     _WHEELS_ONLY + " ({0})"),
    (r"only has source distributions|no wheels with a matching|has no usable wheels", _WHEELS_ONLY),
    (r"Failed to resolve requirements from `build-system.requires`"
     r"|install backend dependencies|installing build dependencies",
     "the project's build backend could not be installed from the index"),
    # npm
    (r"No matching version found for (\S+?)\.?$", _NOT_ON_REGISTRY),
    (r"404 Not Found - GET \S+/(@?[^/\s]+(?:%2[fF][^/\s]+)?) - ", _NOT_ON_REGISTRY),
    (r"`npm ci` can only install packages when your package\.json and package-lock\.json",
     "package-lock.json is not in sync with package.json (npm ci refuses it)"),
    (r"code E401|code EAUTH|401 Unauthorized|403 Forbidden",
     "the registry refused the credentials"),
    # either
    (r"Connection refused|Failed to establish a new connection|ECONNREFUSED|ENOTFOUND"
     r"|Name or service not known",
     "the package index could not be reached"),
]  # fmt: skip
_INSTALL_PATTERNS = [(re.compile(p, re.M | re.I), sentence) for p, sentence in _INSTALL_CAUSES]


def install_cause(completed: Completed, time_limit: float) -> str:
    output, returncode = completed.output, completed.returncode
    if completed.timed_out:
        return f"timed out after {time_limit:g} s"
    for pattern, sentence in _INSTALL_PATTERNS:
        if match := pattern.search(output):
            name = match.group(1).replace("%2f", "/").replace("%2F", "/") if match.groups() else ""
            return sentence.format(name.rstrip(".,"))
    return f"the install exited with code {returncode}"


# --- tests ------------------------------------------------------------------------------------

# "==== 1 failed, 2 passed, 1 warning in 0.12s ====" (the equals signs go with -q)
_PYTEST_SUMMARY = re.compile(
    r"^=*\s*((?:\d+ (?:passed|failed|errors?|skipped|xfailed|xpassed|warnings?|deselected|rerun)"
    r"(?:, )?)+|no tests ran)(?: in [\d.]+s)?.*?=*\s*$",
    re.M,
)
_PYTEST_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+?)(?: - .*)?$", re.M)
# unittest: "Ran 3 tests in 0.001s" then "OK" or "FAILED (failures=1, errors=1)"
_UNITTEST_RAN = re.compile(
    r"^Ran (\d+) tests? in [\d.]+s\s*\n\s*\n(OK|FAILED)(?: \(([^)]*)\))?", re.M
)
_UNITTEST_FAILED = re.compile(r"^(?:FAIL|ERROR): (\S+) \(([^)]+)\)", re.M)
# node --test (TAP): "# pass 3" / "# fail 1", "not ok 2 - adds"
_TAP_COUNT = re.compile(r"^# (pass|fail|skipped|todo) (\d+)$", re.M)
_TAP_FAILED = re.compile(r"^\s*not ok \d+ - (.+)$", re.M)
# jest: "Tests:       1 failed, 2 passed, 3 total", "● Suite > name"
_JEST_SUMMARY = re.compile(r"^Tests:\s+(.+?), \d+ total$", re.M)
_JEST_FAILED = re.compile(r"^\s*● (.+)$", re.M)
# mocha: "2 passing (5ms)", "1 failing", "  1) suite\n       name:"
_MOCHA_COUNT = re.compile(r"^\s*(\d+) (passing|failing|pending)", re.M)


def summarize_tests(output: str) -> str | None:
    """The runner's own counts ("12 passed, 1 failed"), from the last summary it printed."""
    if found := _PYTEST_SUMMARY.findall(output):
        return str(found[-1]).strip()
    if found := _UNITTEST_RAN.findall(output):
        count, verdict, detail = found[-1]
        return f"ran {count} tests: {verdict}" + (f" ({detail})" if detail else "")
    if found := _JEST_SUMMARY.findall(output):
        return str(found[-1])
    if found := _TAP_COUNT.findall(output):
        counts = {kind: number for kind, number in found}  # the last of each wins
        shown = [(k, w) for k, w in _TAP_WORDS if k in counts]
        shown = [(k, w) for k, w in shown if k in ("pass", "fail") or counts[k] != "0"]
        return ", ".join(f"{counts[k]} {w}" for k, w in shown)
    if found := _MOCHA_COUNT.findall(output):
        counts = {kind: number for number, kind in found}
        return ", ".join(f"{number} {kind}" for kind, number in counts.items())
    return None


_TAP_WORDS = (("pass", "passed"), ("fail", "failed"), ("skipped", "skipped"), ("todo", "todo"))


def find_failing_tests(output: str) -> list[str]:
    """The failing tests' names as the runner gave them (``tests/test_x.py::test_add``)."""
    names = _PYTEST_FAILED.findall(output)
    if not names:
        names = [f"{where}.{name}" if "." not in where else where for name, where in
                 _UNITTEST_FAILED.findall(output)]  # fmt: skip
    if not names:
        names = [name.strip() for name in _TAP_FAILED.findall(output)]
        names = [name for name in names if not _is_tap_file_entry(name, names)]
    if not names:
        names = [name.strip() for name in _JEST_FAILED.findall(output)]
    return list(dict.fromkeys(names))


def _is_tap_file_entry(name: str, names: list[str]) -> bool:
    """node --test also reports the test file as a failing test; keep the tests inside."""
    return (name.endswith((".js", ".mjs", ".cjs", ".ts")) or "/" in name) and len(names) > 1


def tests_cause(tests: list[str], completed: Completed, time_limit: float) -> str:
    returncode = completed.returncode
    if completed.timed_out:
        return f"timed out after {time_limit:g} s"
    if len(tests) == 1:
        return f"test {tests[0]} failed"
    if tests:
        named = ", ".join(tests[:_MAX_NAMED_TESTS])
        more = f" and {len(tests) - _MAX_NAMED_TESTS} more" if len(tests) > _MAX_NAMED_TESTS else ""
        return f"{len(tests)} tests failed: {named}{more}"
    if returncode == 127:
        return "the test command was not found"
    return f"the tests exited with code {returncode}"
