"""Pipeline files: each value's rules, and YAML that is refused, each at its line."""

from __future__ import annotations

import pytest

from forgeyard.ci.pipelines import load_pipeline
from tests.ci import issues, only


def test_a_blank_command_in_a_list() -> None:
    issue = only("steps:\n  - name: build\n    commands:\n      - make\n      - '  '\n")
    assert (issue.line, issue.path, issue.message) == (
        5,
        "steps[0].commands[1]",
        "steps[0].commands[1]: must not be empty",
    )


@pytest.mark.parametrize("name", ["bad/name", "", "x" * 101, "tab\tname"])
def test_bad_step_names(name: str) -> None:
    issue = only(f"steps:\n  - name: {name!r}\n    commands: x\n".replace("\\t", "\t"))
    assert (issue.line, issue.path) == (2, "steps[0].name")
    assert "a step name is 1 to 100 letters, digits, spaces, '.', '_' or '-'" in issue.message


@pytest.mark.parametrize(
    ("timeout", "message"),
    [
        ("0", "must be between 1 and 86400 seconds, not 0"),
        ("86401", "must be between 1 and 86400 seconds, not 86401"),
        ("10m", "must be a whole number, not the string '10m'"),
        ("1.5", "must be a whole number, not the number 1.5"),
        ("true", "must be a whole number, not true"),
    ],
)
def test_bad_timeouts(timeout: str, message: str) -> None:
    text = f"steps:\n  - name: a\n    commands: x\n    timeout: {timeout}\n"
    issue = only(text)
    assert (issue.line, issue.column, issue.path) == (4, 14, "steps[0].timeout")
    assert issue.message == f"steps[0].timeout: {message}"


def test_timeout_bounds_are_allowed() -> None:
    for timeout in (1, 86400):
        text = f"steps:\n  - name: a\n    commands: x\n    timeout: {timeout}\n"
        assert load_pipeline(text).steps[0].timeout == timeout


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 3 * *", "a cron expression has five fields"),
        ("0 0 3 * * *", "a cron expression has five fields"),
        ("@daily", "a cron expression has five fields"),
        ("61 * * * *", "'61 * * * *' is not a valid cron expression: bad minute"),
        ("0 24 * * *", "'0 24 * * *' is not a valid cron expression: bad hour"),
        ("0 0 30 2 *", "'0 0 30 2 *' is not a valid cron expression: bad day-of-month"),
    ],
)
def test_bad_cron(cron: str, message: str) -> None:
    text = f"triggers:\n  schedule:\n    cron: {cron!r}\nsteps: [{{name: a, commands: x}}]\n"
    issue = only(text)
    assert (issue.line, issue.column, issue.path) == (3, 11, "triggers.schedule.cron")
    assert message in issue.message


@pytest.mark.parametrize("cron", ["0 3 * * *", "*/15 9-17 * * MON-FRI", "0 0 1,15 JAN *"])
def test_good_cron(cron: str) -> None:
    pipeline = load_pipeline(
        f"triggers: {{schedule: {{cron: '{cron}'}}}}\nsteps: [{{name: a, commands: x}}]"
    )
    assert pipeline.triggers.schedule == cron
    assert pipeline.triggers.push is None
    assert not pipeline.triggers.manual


def test_env_values_must_be_strings_and_names_variable_names() -> None:
    found = issues(
        """\
        env:
          VERSION: 1.10
          1BAD: x
          OK: "1.10"
        steps: [{name: a, commands: x}]
        """
    )
    assert found == [
        (
            2,
            12,
            "env.VERSION",
            ("env.VERSION: must be a string, not the number 1.1; put the value in quotes"),
        ),
        (
            3,
            3,
            'env["1BAD"]',
            (
                "env: '1BAD' is not a variable name "
                "(letters, digits and '_', not starting with a digit)"
            ),
        ),
    ]


def test_artifacts_stay_inside_the_work_directory() -> None:
    found = issues(
        'steps: [{name: a, commands: x}]\nartifacts: ["dist/*", "../up", "/etc/passwd"]\n'
    )
    assert [(line, path) for line, _, path, _ in found] == [
        (2, "artifacts[1]"),
        (2, "artifacts[2]"),
    ]
    assert "must be a path inside the work directory" in found[0][3]


def test_when_values_are_checked_with_suggestions() -> None:
    found = issues(
        """\
        steps:
          - name: a
            commands: x
            when:
              event: [push, pull-request]
              status: sucess
              branch: []
        """
    )
    assert found == [
        (
            5,
            21,
            "steps[0].when.event[1]",
            (
                "steps[0].when.event[1]: must be one of push, pull_request, manual, schedule, "
                "not 'pull-request'; did you mean 'pull_request'?"
            ),
        ),
        (
            6,
            15,
            "steps[0].when.status",
            (
                "steps[0].when.status: must be one of success, failure, always, not 'sucess'; "
                "did you mean 'success'?"
            ),
        ),
        (7, 15, "steps[0].when.branch", "steps[0].when.branch: must not be an empty list"),
    ]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "the pipeline is empty: it needs at least 'steps'"),
        ("# only a comment\n", 1, "the pipeline is empty: it needs at least 'steps'"),
        ("- name: a\n", 1, "a pipeline is a mapping with 'steps'"),
        ("just text\n", 1, "a pipeline is a mapping with 'steps'"),
    ],
)
def test_a_file_that_is_not_a_mapping(text: str, line: int, message: str) -> None:
    issue = only(text)
    assert (issue.line, issue.column, issue.path) == (line, 1, "")
    assert issue.message.startswith(message)


def test_two_documents_are_refused_at_the_second() -> None:
    issue = only("steps: [{name: a, commands: x}]\n---\nsteps: []\n")
    assert issue.line == 2
    assert issue.message.startswith("bad YAML at line 2")


def test_python_tags_are_refused_not_run() -> None:
    issue = only("steps:\n  - name: a\n    commands: !!python/object/apply:os.system [id]\n")
    assert (issue.line, issue.path) == (3, "steps[0].commands")
    assert issue.message == (
        "steps[0].commands: the YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' "
        "is not supported"
    )


def test_an_alias_bomb_is_refused() -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    issue = only("\n".join(lines) + "\n")
    assert issue.message == "the document expands to more than 100000 values (aliases)"


def test_the_yaml_1_1_on_key_is_a_string_key() -> None:
    issue = only("on: {push: true}\nsteps: [{name: a, commands: x}]\n")
    assert (
        issue.message == "unknown key 'on' at the top level; expected one of: "
        "artifacts, env, steps, triggers"
    )


def test_a_control_character_names_its_line() -> None:
    issue = only("steps:\n  - name: a\n    commands: \x07\n")
    assert (issue.line, issue.column) == (3, 15)
    assert issue.message == "bad YAML at line 3 column 15: the character U+0007 is not allowed"
