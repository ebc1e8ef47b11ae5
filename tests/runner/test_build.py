"""What a runner accepts to run: only a spec whose signature verifies, for the build it
claimed; and how a build's end is worked out from its steps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from forgeyard.client.runner import RunnerClient
from forgeyard.kernel.signing import SignatureInvalid, generate_key, key_id, public_key_text, sign
from forgeyard.protocol.resolved import ResolvedPipeline, ResolvedStep, TriggerEvent
from forgeyard.protocol.runner import BuildSpec, ClaimedBuild
from forgeyard.runner.build import BuildControl, final_status, run_build
from forgeyard.runner.spec import read_spec
from forgeyard.runner.steps import StepOutcome
from tests.processes import free_port

KEY = generate_key()
PUBLIC = public_key_text(KEY)


def _spec_text(
    build_id: str = "bld_1", command: str = "echo hi", run: list[int] | None = None
) -> str:
    step = ResolvedStep(name="only", commands=(command,), env={}, timeout=60, status="success")
    pipeline = ResolvedPipeline(
        source=".forgeyard.yml",
        event=TriggerEvent("manual", branch="main"),
        env={},
        steps=(step,),
        skipped=(),
        artifacts=(),
    )
    spec = BuildSpec(
        build_id=build_id,
        commit="0123abcd",
        repository="demo",
        pipeline=pipeline.to_dict(),
        run=[0] if run is None else run,
        max_log_bytes=4 * 1024 * 1024,
    )
    return spec.model_dump_json()


def _claimed(spec: str, signature: str, build_id: str = "bld_1") -> ClaimedBuild:
    return ClaimedBuild(
        build_id=build_id,
        lease_expires_at=datetime.now(UTC),
        lease_seconds=60,
        spec=spec,
        signature=signature,
        key_id=key_id(PUBLIC),
    )


def test_a_signed_spec_is_read() -> None:
    text = _spec_text()
    spec, pipeline = read_spec(_claimed(text, sign(KEY, text.encode())), PUBLIC)
    assert spec.build_id == "bld_1"
    assert pipeline.steps[0].commands == ("echo hi",)


def test_a_spec_altered_after_signing_is_refused() -> None:
    text = _spec_text()
    altered = text.replace("echo hi", "touch /tmp/pwned")
    with pytest.raises(SignatureInvalid, match="altered"):
        read_spec(_claimed(altered, sign(KEY, text.encode())), PUBLIC)


def test_a_spec_signed_with_another_key_is_refused_naming_both_keys() -> None:
    text = _spec_text()
    other = generate_key()
    claimed = _claimed(text, sign(other, text.encode())).model_copy(
        update={"key_id": key_id(public_key_text(other))}
    )
    with pytest.raises(SignatureInvalid) as refused:
        read_spec(claimed, PUBLIC)
    assert key_id(PUBLIC) in str(refused.value)
    assert f"the server signs with key {key_id(public_key_text(other))}" in str(refused.value)


def test_a_genuine_spec_replayed_for_another_build_is_refused() -> None:
    text = _spec_text(build_id="bld_old")
    with pytest.raises(ValueError, match="bld_old"):
        read_spec(_claimed(text, sign(KEY, text.encode()), build_id="bld_new"), PUBLIC)


def test_a_spec_naming_a_step_the_pipeline_lacks_is_refused() -> None:
    text = _spec_text(run=[0, 5])
    with pytest.raises(ValueError, match="the pipeline has 1"):
        read_spec(_claimed(text, sign(KEY, text.encode())), PUBLIC)


async def test_an_altered_spec_runs_nothing(tmp_path: Path) -> None:
    planted = tmp_path / "pwned"
    text = _spec_text()
    altered = text.replace("echo hi", f"touch {planted}")
    claimed = _claimed(altered, sign(KEY, text.encode()))
    work_dir = tmp_path / "work"
    # No server listens: the refusal cannot be reported, and nothing else may happen.
    async with RunnerClient(
        f"http://127.0.0.1:{free_port()}", runner_id="rnr_1", token="fyr_token"
    ) as client:
        ended = await run_build(
            client, claimed, work_dir=work_dir, public_key=PUBLIC, grace_seconds=1
        )
    assert ended is None
    assert not planted.exists()
    assert not (work_dir / "builds").exists()


def _ended(*statuses: str) -> list[StepOutcome]:
    return [StepOutcome(status, None) for status in statuses]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcomes", "cancelled", "expected"),
    [
        (_ended("succeeded", "succeeded"), False, "succeeded"),
        (_ended(), False, "succeeded"),
        (_ended("succeeded", "failed"), False, "failed"),
        (_ended("failed", "timed_out", "succeeded"), False, "timed_out"),
        (_ended("failed", "cancelled"), True, "cancelled"),
    ],
)
def test_a_builds_end_follows_its_steps(
    outcomes: list[StepOutcome], cancelled: bool, expected: str
) -> None:
    control = BuildControl()
    if cancelled:
        control.stop("cancelled")
    assert final_status(control, outcomes) == expected
