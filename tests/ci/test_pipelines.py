"""Pipeline files: loading with defaults, and validation errors that name the line."""

from __future__ import annotations

from textwrap import dedent

import pytest
from jsonschema import Draft202012Validator

from forgeyard.ci.pipelines import (
    DEFAULT_TIMEOUT,
    PIPELINE_SCHEMA,
    BranchFilter,
    PipelineInvalid,
    Triggers,
    When,
    load_pipeline,
    validate_pipeline,
)
from tests.ci import issues, only

FULL = dedent(
    """\
    triggers:
      push: {branches: ["main", "release/*"]}
      pull_request: {branches: ["main"]}
      manual: true
      schedule: {cron: "0 3 * * *"}
    env: {KEY: value}
    steps:
      - name: test
        commands: ["pytest -q"]
        env: {K: v}
        timeout: 600
        when: {branch: ["main"], event: ["push"], status: "success"}
      - name: lint
        commands: ruff check .
    artifacts: ["dist/*.whl", "reports/**"]
    """
)


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(PIPELINE_SCHEMA)
    assert PIPELINE_SCHEMA["$schema"].endswith("/2020-12/schema")


def test_a_full_pipeline_loads_with_every_value() -> None:
    assert validate_pipeline(FULL) == []
    pipeline = load_pipeline(FULL, source="ci/build.yml")
    assert pipeline.source == "ci/build.yml"
    assert pipeline.triggers == Triggers(
        push=BranchFilter(("main", "release/*")),
        pull_request=BranchFilter(("main",)),
        manual=True,
        schedule="0 3 * * *",
    )
    assert pipeline.env == {"KEY": "value"}
    test, lint = pipeline.steps
    assert (test.name, test.commands, test.env, test.timeout) == (
        "test",
        ("pytest -q",),
        {"K": "v"},
        600,
    )
    assert test.when == When(branch=("main",), event=("push",), status="success")
    assert pipeline.artifacts == ("dist/*.whl", "reports/**")
    # A single command is a list of one; defaults are filled.
    assert lint.commands == ("ruff check .",)
    assert (lint.env, lint.timeout, lint.when) == ({}, DEFAULT_TIMEOUT, When())


def test_a_minimal_pipeline_gets_the_default_triggers_and_step_values() -> None:
    pipeline = load_pipeline("steps:\n  - {name: build, commands: make}\n")
    assert pipeline.source == ".forgeyard.yml"
    assert pipeline.triggers == Triggers(push=BranchFilter(None), pull_request=None, manual=True)
    assert pipeline.env == {}
    assert pipeline.artifacts == ()
    (step,) = pipeline.steps
    assert step.timeout == 3600
    assert step.when == When(branch=None, event=None, status="success")


def test_a_multi_line_command_stays_one_command() -> None:
    pipeline = load_pipeline(
        dedent(
            """\
            steps:
              - name: script
                commands: |
                  set -e
                  make test
            """
        )
    )
    assert pipeline.steps[0].commands == ("set -e\nmake test\n",)


def test_triggers_written_as_true_or_false() -> None:
    pipeline = load_pipeline(
        "triggers: {push: true, pull_request: false}\nsteps: [{name: a, commands: x}]\n"
    )
    assert pipeline.triggers == Triggers(push=BranchFilter(), pull_request=None, manual=False)
    pipeline = load_pipeline("triggers: {pull_request: {}}\nsteps: [{name: a, commands: x}]\n")
    assert pipeline.triggers == Triggers(push=None, pull_request=BranchFilter(), manual=False)
    pipeline = load_pipeline(
        "triggers: {push: {branches: main}}\nsteps: [{name: a, commands: x}]\n"
    )
    assert pipeline.triggers.push == BranchFilter(("main",))


def test_merge_keys_and_aliases_are_read() -> None:
    text = dedent(
        """\
        env: &common {A: "1"}
        steps:
          - name: a
            commands: x
            env: {<<: *common, B: "2"}
        """
    )
    assert load_pipeline(text).steps[0].env == {"A": "1", "B": "2"}


def test_bad_yaml_is_one_error_at_the_parsers_line_and_column() -> None:
    text = """\
        steps:
          - name: test
            commands: ["pytest"
          - name: lint
        """
    (issue,) = validate_pipeline(dedent(text))
    assert (issue.line, issue.column, issue.path) == (4, 3, "")
    assert issue.message.startswith("bad YAML at line 4 column 3: ")


def test_a_tab_for_indentation_names_its_line() -> None:
    issue = only("steps:\n  - name: a\n\tcommands: x\n")
    assert issue.line == 3
    assert issue.message.startswith("bad YAML at line 3 column 1: ")


def test_an_unknown_key_names_its_line_and_column_and_the_key_meant() -> None:
    issue = only(
        """\
        steps:
          - name: test
            comands: ["pytest -q"]
            commands: ["pytest -q"]
        """
    )
    assert (issue.line, issue.column, issue.path) == (3, 5, "steps[0].comands")
    assert issue.message == "unknown key 'comands' in steps[0]; did you mean 'commands'?"


def test_unknown_keys_at_every_level() -> None:
    found = issues(
        """\
        trigers: {push: true}
        steps:
          - name: a
            commands: x
            when: {branches: [main]}
        artifact: [x]
        """
    )
    assert found == [
        (1, 1, "trigers", "unknown key 'trigers' at the top level; did you mean 'triggers'?"),
        (
            5,
            12,
            "steps[0].when.branches",
            ("unknown key 'branches' in steps[0].when; did you mean 'branch'?"),
        ),
        (6, 1, "artifact", "unknown key 'artifact' at the top level; did you mean 'artifacts'?"),
    ]


def test_an_unknown_key_with_no_close_match_lists_the_keys_allowed() -> None:
    issue = only("triggers: {nightly: true}\nsteps: [{name: a, commands: x}]\n")
    assert (issue.line, issue.column) == (1, 12)
    assert issue.message == (
        "unknown key 'nightly' in triggers; expected one of: manual, pull_request, push, schedule"
    )


def test_a_step_with_no_commands_names_the_steps_line() -> None:
    text = """\
        steps:
          - name: build
            commands: make
          - name: test
            timeout: 60
        """
    issue = only(text)
    assert (issue.line, issue.column, issue.path) == (4, 5, "steps[1]")
    assert issue.message == "steps[1]: a step needs at least one command"


@pytest.mark.parametrize("empty", ["[]", "''", "null", ""])
def test_empty_commands_name_the_commands_line(empty: str) -> None:
    text = f"steps:\n  - name: build\n    commands: {empty}\n"
    issue = only(text)
    assert (issue.line, issue.path) == (3, "steps[0].commands")
    assert issue.message == "steps[0]: a step needs at least one command"


def test_a_step_needs_a_name_and_a_pipeline_a_step() -> None:
    assert issues("steps:\n  - commands: x\n") == [
        (2, 5, "steps[0]", "steps[0]: a step needs a name")
    ]
    assert issues("# nothing yet\nsteps: []\n") == [
        (2, 8, "steps", "a pipeline needs at least one step")
    ]
    assert issues("env: {A: b}\n") == [
        (1, 1, "", "missing key 'steps': a pipeline needs at least one step")
    ]


def test_duplicate_step_names_name_the_second_and_the_first() -> None:
    text = """\
        steps:
          - name: test
            commands: a
          - name: build
            commands: b
          - name: test
            commands: c
        """
    issue = only(text)
    assert (issue.line, issue.column, issue.path) == (6, 11, "steps[2].name")
    assert issue.message == "steps[2].name: duplicate step name 'test' (first used at line 2)"


def test_a_key_written_twice_is_an_error() -> None:
    issue = only("steps:\n  - name: a\n    commands: x\n    name: b\n")
    assert (issue.line, issue.column, issue.message) == (4, 5, "steps[0]: duplicate key 'name'")


def test_several_errors_are_all_reported_in_line_order() -> None:
    text = """\
        triggers:
          push: {branch: main}
          schedule: {cron: "99 * * * *"}
        steps:
          - name: build
            comands: make
          - name: build
            commands: [make]
            timeout: 0
          - name: deploy
            commands: 5
        artifacts: [dist]
        """
    found = issues(text)
    assert [(line, path) for line, _, path, _ in found] == [
        (2, "triggers.push.branch"),
        (3, "triggers.schedule.cron"),
        (5, "steps[0]"),  # no commands
        (6, "steps[0].comands"),
        (7, "steps[1].name"),  # duplicate
        (9, "steps[1].timeout"),
        (11, "steps[2].commands"),
    ]
    with pytest.raises(PipelineInvalid) as raised:
        load_pipeline(dedent(text))
    assert len(raised.value.errors) == 7
    assert raised.value.details["errors"][0] == found_dict(found[0])


def found_dict(found: tuple[int, int, str, str]) -> dict[str, object]:
    line, column, path, message = found
    return {"line": line, "column": column, "path": path, "message": message}


def test_pipeline_invalid_is_an_invalid_input_error_with_every_issue() -> None:
    with pytest.raises(PipelineInvalid) as raised:
        load_pipeline("steps: 3\n", source="ci.yml")
    error = raised.value
    assert error.status_code == 400
    assert error.code == "invalid_input"
    assert error.message == (
        "ci.yml is not a valid pipeline (1 error); line 1, column 8: "
        "steps: must be a list, not the number 3"
    )
    assert error.details == {
        "source": "ci.yml",
        "errors": [
            {
                "line": 1,
                "column": 8,
                "path": "steps",
                "message": "steps: must be a list, not the number 3",
            }
        ],
    }
    assert error.errors[0].to_dict() == error.details["errors"][0]
