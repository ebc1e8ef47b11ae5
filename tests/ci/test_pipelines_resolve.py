"""Which events start a pipeline, which steps a build gets, and the bytes the server signs."""

from __future__ import annotations

import json
import re
from textwrap import dedent

import pytest

from forgeyard.ci.pipelines import (
    ResolvedPipeline,
    TriggerEvent,
    branch_matches,
    load_pipeline,
    resolve,
)

PIPELINE = dedent(
    """\
    triggers:
      push: {branches: ["main", "release/*", "hotfix/**"]}
      pull_request: {branches: ["main"]}
      manual: true
    env: {GREETING: "hello", SHARED: "pipeline"}
    steps:
      - name: test
        commands: ["pytest -q"]
      - name: deploy
        commands: ["./deploy.sh", "echo done"]
        env: {SHARED: "step"}
        timeout: 120
        when: {branch: ["main", "release/*"], event: ["push", "manual"]}
      - name: pr-comment
        commands: "echo reviewing"
        when: {event: pull_request}
      - name: notify
        commands: "notify failed"
        when: {status: failure}
      - name: cleanup
        commands: "rm -rf build"
        when: {status: always}
    artifacts: ["dist/*.whl"]
    """
)


def push(branch: str) -> TriggerEvent:
    return TriggerEvent("push", branch=branch)


def pull(source: str, target: str) -> TriggerEvent:
    return TriggerEvent("pull_request", branch=source, target_branch=target)


@pytest.mark.parametrize(
    ("event", "started"),
    [
        (push("main"), True),
        (push("release/1.2"), True),
        (push("release/1.2/rc"), False),  # * stays within one part
        (push("hotfix/1.2/db"), True),  # ** crosses parts
        (push("feature/x"), False),
        (push("Main"), False),  # branch names are case-sensitive
        (pull("feature/x", "main"), True),  # filtered on the target branch
        (pull("main", "develop"), False),
        (TriggerEvent("manual", branch="feature/x"), True),
        (TriggerEvent("schedule", branch="main"), False),  # no schedule trigger
    ],
)
def test_triggered_by_filters_on_event_and_branch(event: TriggerEvent, started: bool) -> None:
    assert load_pipeline(PIPELINE).triggered_by(event) is started


def test_default_triggers_are_push_and_manual_on_any_branch() -> None:
    pipeline = load_pipeline("steps: [{name: a, commands: x}]\n")
    assert pipeline.triggered_by(push("any/branch/at/all"))
    assert pipeline.triggered_by(TriggerEvent("manual"))
    assert not pipeline.triggered_by(pull("feature", "main"))
    assert not pipeline.triggered_by(TriggerEvent("schedule"))


def test_a_schedule_trigger_starts_scheduled_builds_only() -> None:
    pipeline = load_pipeline(
        "triggers: {schedule: {cron: '0 3 * * *'}}\nsteps: [{name: a, commands: x}]\n"
    )
    assert pipeline.triggered_by(TriggerEvent("schedule", branch="main"))
    assert not pipeline.triggered_by(push("main"))
    assert not pipeline.triggered_by(TriggerEvent("manual"))


def test_a_branch_filter_never_matches_an_unknown_branch() -> None:
    pipeline = load_pipeline(PIPELINE)
    assert not pipeline.triggered_by(TriggerEvent("push"))
    assert not pipeline.triggered_by(TriggerEvent("pull_request", branch="x"))


@pytest.mark.parametrize(
    ("pattern", "branch", "matches"),
    [
        ("main", "main", True),
        ("release/*", "release/1.2", True),
        ("release/*", "release/1.2/rc", False),
        ("release/**", "release/1.2/rc", True),
        ("**", "a/b/c", True),
        ("**/fix", "fix", True),
        ("**/fix", "a/b/fix", True),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**/b", "a/x/y/c", False),
        ("*", "feature/x", False),
        ("v[0-9]*", "v2", True),
        ("rel-?", "rel-1", True),
    ],
)
def test_branch_patterns(pattern: str, branch: str, matches: bool) -> None:
    assert branch_matches(pattern, branch) is matches


def test_a_long_branch_against_many_double_stars_is_quick() -> None:
    assert not branch_matches("/".join(["**"] * 50 + ["x"]), "/".join(["a"] * 200))


def test_resolve_a_push_to_main_keeps_the_steps_whose_when_holds() -> None:
    resolved = resolve(load_pipeline(PIPELINE), push("main"))
    assert [s.name for s in resolved.steps] == ["test", "deploy", "notify", "cleanup"]
    assert resolved.skipped == ("pr-comment",)
    deploy = resolved.steps[1]
    assert deploy.commands == ("./deploy.sh", "echo done")
    assert deploy.timeout == 120
    assert resolved.environment(deploy) == {"GREETING": "hello", "SHARED": "step"}
    assert resolved.environment(resolved.steps[0]) == {"GREETING": "hello", "SHARED": "pipeline"}
    assert resolved.artifacts == ("dist/*.whl",)
    assert resolved.event == push("main")


@pytest.mark.parametrize(
    ("event", "steps"),
    [
        (push("feature/x"), ["test", "notify", "cleanup"]),
        (push("release/2.0"), ["test", "deploy", "notify", "cleanup"]),
        # when.branch is evaluated on a pull request's target branch: main, but the event is not
        (pull("feature/x", "main"), ["test", "pr-comment", "notify", "cleanup"]),
        (TriggerEvent("manual", branch="main"), ["test", "deploy", "notify", "cleanup"]),
        (TriggerEvent("manual"), ["test", "notify", "cleanup"]),  # no branch: no branch match
    ],
)
def test_resolve_by_event(event: TriggerEvent, steps: list[str]) -> None:
    assert [s.name for s in resolve(load_pipeline(PIPELINE), event).steps] == steps


def test_status_conditions_are_left_for_the_runner() -> None:
    resolved = resolve(load_pipeline(PIPELINE), push("main"))
    test, _, notify, cleanup = resolved.steps
    assert (test.status, notify.status, cleanup.status) == ("success", "failure", "always")
    assert test.should_run(earlier_failed=False)
    assert not test.should_run(earlier_failed=True)
    assert notify.should_run(earlier_failed=True)
    assert not notify.should_run(earlier_failed=False)
    assert cleanup.should_run(earlier_failed=True)
    assert cleanup.should_run(earlier_failed=False)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    text = "env: {NAME: 'Grüße'}\nsteps: [{name: a, commands: 'echo ✓'}]\n"
    data = resolve(load_pipeline(text), push("main")).canonical_json()
    assert (
        data
        == (
            '{"artifacts":[],"env":{"NAME":"Grüße"},'
            '"event":{"branch":"main","kind":"push","target_branch":null},'
            '"skipped":[],"source":".forgeyard.yml",'
            '"steps":[{"commands":["echo ✓"],"env":{},"name":"a","status":"success",'
            '"timeout":3600}],"version":1}'
        ).encode()
    )
    value = json.loads(data)
    assert (
        data
        == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )


def test_canonical_json_does_not_depend_on_key_order_in_the_file() -> None:
    one = dedent(
        """\
        env: {B: "2", A: "1"}
        steps:
          - name: build
            commands: [make]
            env: {Y: "y", X: "x"}
            timeout: 60
            when: {event: push, status: always}
        artifacts: [dist]
        """
    )
    other = dedent(
        """\
        artifacts: [dist]
        steps:
          - when: {status: always, event: [push]}
            timeout: 60
            env: {X: "x", Y: "y"}
            commands: make
            name: build
        env: {A: "1", B: "2"}
        """
    )
    event = push("main")
    first = resolve(load_pipeline(one), event).canonical_json()
    assert first == resolve(load_pipeline(other), event).canonical_json()
    assert first == resolve(load_pipeline(one), event).canonical_json()


def test_canonical_json_round_trips() -> None:
    for event in (push("main"), pull("feature/ü", "main"), TriggerEvent("manual")):
        resolved = resolve(load_pipeline(PIPELINE), event)
        data = resolved.canonical_json()
        again = ResolvedPipeline.from_json(data)
        assert again == resolved
        assert again.canonical_json() == data


def test_from_json_refuses_what_canonical_json_does_not_write() -> None:
    good = json.loads(resolve(load_pipeline(PIPELINE), push("main")).canonical_json())

    def changed(**top: object) -> bytes:
        return json.dumps({**good, **top}).encode()

    step = good["steps"][0]
    cases = {
        b"not json": "not a resolved pipeline",
        changed(version=2): "unsupported resolved pipeline version 2",
        changed(extra=1): "unexpected ['extra']",
        changed(event={**good["event"], "kind": "tag"}): "event.kind",
        changed(steps=[{**step, "timeout": 0}]): "steps[0].timeout",
        changed(steps=[{**step, "timeout": True}]): "steps[0].timeout",
        changed(steps=[{**step, "commands": "make"}]): "steps[0].commands",
        changed(steps=[{**step, "env": {"A": 1}}]): "steps[0].env.A",
        changed(steps=[{**step, "status": "maybe"}]): "steps[0].status",
    }
    for data, message in cases.items():
        with pytest.raises(ValueError, match=re.escape(message)):
            ResolvedPipeline.from_json(data)


def test_an_unknown_event_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event kind 'tag'"):
        TriggerEvent("tag")  # type: ignore[arg-type]
