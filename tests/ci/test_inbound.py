"""Inbound forge webhooks: signature and token checks, and which deliveries ask for a build.

GitHub payloads are the real ones of npm ``@octokit/webhooks-examples`` (pinned in
webhook_examples/package.json, installed with ``npm ci`` on first use; the tests that need
them are skipped without Node.js and npm). Its layout: one ``api.github.com/index.json``, a
list of ``{"name": <event>, "actions": [...], "examples": [<payload>, ...]}``.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from forgeyard.ci.inbound import (
    ForgeEvent,
    WebhookRefused,
    parse_github,
    parse_gitlab,
    verify_github_signature,
    verify_gitlab_token,
)
from tests.processes import node_available, npm_ci_once

EXAMPLES = Path(__file__).resolve().parent / "webhook_examples"
ZERO_SHA = "0" * 40

# GitHub's docs, "Validating webhook deliveries" (testing the webhook payload validation).
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

needs_node = pytest.mark.skipif(not node_available(), reason="needs Node.js and npm")


# --- X-Hub-Signature-256 ------------------------------------------------------------------


def test_githubs_published_test_vector_verifies() -> None:
    verify_github_signature(GITHUB_SECRET, GITHUB_BODY, GITHUB_SIGNATURE)


def test_an_uppercase_hex_signature_verifies() -> None:
    upper = "sha256=" + GITHUB_SIGNATURE.removeprefix("sha256=").upper()
    verify_github_signature(GITHUB_SECRET, GITHUB_BODY, upper)


@pytest.mark.parametrize(
    ("secret", "body", "header", "reason"),
    [
        (GITHUB_SECRET, GITHUB_BODY, None, "header is missing"),
        (GITHUB_SECRET, GITHUB_BODY, "", "header is missing"),
        (GITHUB_SECRET, GITHUB_BODY, "sha1=" + "0" * 40, "must start with 'sha256='"),
        (GITHUB_SECRET, GITHUB_BODY, GITHUB_SIGNATURE.removeprefix("sha256="), "must start"),
        (GITHUB_SECRET, GITHUB_BODY, "sha256=" + "zz" * 32, "64 hexadecimal digits"),
        (GITHUB_SECRET, GITHUB_BODY, GITHUB_SIGNATURE[:-2], "64 hexadecimal digits"),
        (GITHUB_SECRET, GITHUB_BODY, GITHUB_SIGNATURE + " ", "64 hexadecimal digits"),
        (GITHUB_SECRET, GITHUB_BODY + b" ", GITHUB_SIGNATURE, "does not match"),
        (GITHUB_SECRET + "!", GITHUB_BODY, GITHUB_SIGNATURE, "does not match"),
        ("", GITHUB_BODY, GITHUB_SIGNATURE, "no webhook secret"),
    ],
)
def test_a_bad_github_signature_is_refused(
    secret: str, body: bytes, header: str | None, reason: str
) -> None:
    with pytest.raises(WebhookRefused, match=reason) as refused:
        verify_github_signature(secret, body, header)
    assert GITHUB_SECRET not in refused.value.reason


# --- X-Gitlab-Token -----------------------------------------------------------------------


def test_the_gitlab_token_is_checked() -> None:
    verify_gitlab_token("s3cret-token", "s3cret-token")
    for header, reason in [
        (None, "missing"),
        ("", "missing"),
        ("s3cret-toke", "does not match"),
        ("s3cret-tokén", "does not match"),  # non-ASCII text must not crash compare_digest
    ]:
        with pytest.raises(WebhookRefused, match=reason):
            verify_gitlab_token("s3cret-token", header)
    with pytest.raises(WebhookRefused, match="no webhook token"):
        verify_gitlab_token("", "")


# --- GitHub payloads from @octokit/webhooks-examples ---------------------------------------


@pytest.fixture(scope="module")
def github_examples() -> dict[str, list[dict[str, Any]]]:
    if not node_available():
        pytest.skip("needs Node.js and npm")
    npm_ci_once(EXAMPLES)
    index = EXAMPLES / "node_modules" / "@octokit" / "webhooks-examples" / "api.github.com"
    events = json.loads((index / "index.json").read_text())
    return {event["name"]: event["examples"] for event in events}


def example(
    examples: dict[str, list[dict[str, Any]]],
    event: str,
    wanted: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    for payload in examples[event]:
        if wanted(payload):
            return copy.deepcopy(payload)
    raise AssertionError(f"@octokit/webhooks-examples has no such {event} example")


@needs_node
def test_a_github_branch_push_triggers(github_examples: dict[str, list[dict[str, Any]]]) -> None:
    payload = example(
        github_examples, "push", lambda p: p["ref"].startswith("refs/heads/") and not p["deleted"]
    )
    assert parse_github("push", payload) == ForgeEvent(
        kind="push",
        repository=payload["repository"]["full_name"],
        clone_url=payload["repository"]["clone_url"],
        branch=payload["ref"].removeprefix("refs/heads/"),
        commit=payload["after"],
        ref=payload["ref"],
    )
    assert payload["repository"]["full_name"] == "Codertocat/Hello-World"
    assert payload["ref"] == "refs/heads/master"


@needs_node
def test_a_github_tag_push_has_no_branch(github_examples: dict[str, list[dict[str, Any]]]) -> None:
    payload = example(
        github_examples, "push", lambda p: p["ref"].startswith("refs/tags/") and not p["deleted"]
    )
    event = parse_github("push", payload)
    assert event is not None
    assert (event.branch, event.commit, event.ref) == (None, payload["after"], payload["ref"])
    assert not event.deleted


@needs_node
def test_a_github_tag_deletion_is_marked_deleted(
    github_examples: dict[str, list[dict[str, Any]]],
) -> None:
    payload = example(github_examples, "push", lambda p: p["deleted"])
    assert payload["after"] == ZERO_SHA
    event = parse_github("push", payload)
    assert event is not None
    assert event.deleted
    assert event.commit is None
    assert event.branch is None
    assert event.ref == payload["ref"]


@needs_node
def test_a_github_branch_deletion_is_marked_deleted(
    github_examples: dict[str, list[dict[str, Any]]],
) -> None:
    # The package has deletions of tags only: a branch push turned into its deletion the way
    # GitHub sends one (deleted true, after all zeros).
    payload = example(github_examples, "push", lambda p: p["ref"].startswith("refs/heads/"))
    payload.update(deleted=True, created=False, before=payload["after"], after=ZERO_SHA)
    event = parse_github("push", payload)
    assert event is not None
    assert event.deleted
    assert event.branch is None
    assert event.commit is None
    # all zeros alone is enough, should the flag be absent
    del payload["deleted"]
    deleted = parse_github("push", payload)
    assert deleted is not None
    assert deleted.deleted


@needs_node
@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened"])
def test_a_github_pull_request_triggers(
    github_examples: dict[str, list[dict[str, Any]]], action: str
) -> None:
    payload = example(github_examples, "pull_request", lambda p: p["action"] == action)
    pull = payload["pull_request"]
    assert parse_github("pull_request", payload) == ForgeEvent(
        kind="pull_request",
        repository="Codertocat/Hello-World",
        clone_url=payload["repository"]["clone_url"],
        branch=pull["head"]["ref"],
        commit=pull["head"]["sha"],
        pull_request=payload["number"],
        target_branch=pull["base"]["ref"],
        action=action,
    )


@needs_node
@pytest.mark.parametrize("action", ["closed", "labeled", "assigned", "converted_to_draft"])
def test_other_github_pull_request_actions_do_not_trigger(
    github_examples: dict[str, list[dict[str, Any]]], action: str
) -> None:
    payload = example(github_examples, "pull_request", lambda p: p["action"] == action)
    assert parse_github("pull_request", payload) is None


@needs_node
def test_every_github_example_parses_without_error(
    github_examples: dict[str, list[dict[str, Any]]],
) -> None:
    triggered: dict[str, int] = {}
    for event, payloads in github_examples.items():
        for payload in payloads:
            result = parse_github(event, payload)
            if result is not None:
                triggered[event] = triggered.get(event, 0) + 1
                assert result.kind == event
    assert set(triggered) == {"push", "pull_request"}
    assert triggered["push"] == len(github_examples["push"])


@needs_node
def test_a_malformed_github_payload_names_the_key(
    github_examples: dict[str, list[dict[str, Any]]],
) -> None:
    push = example(github_examples, "push", lambda p: p["ref"].startswith("refs/heads/"))
    pull = example(github_examples, "pull_request", lambda p: p["action"] == "opened")

    without_repo = {k: v for k, v in push.items() if k != "repository"}
    with pytest.raises(WebhookRefused, match="no 'repository'"):
        parse_github("push", without_repo)
    with pytest.raises(WebhookRefused, match="'after' must be a string, not a number"):
        parse_github("push", {**push, "after": 123})
    with pytest.raises(WebhookRefused, match="'deleted' must be a boolean"):
        parse_github("push", {**push, "deleted": "yes"})
    with pytest.raises(WebhookRefused, match="'repository' must be a JSON object, not an array"):
        parse_github("push", {**push, "repository": []})

    with pytest.raises(WebhookRefused, match="'number' must be an integer, not a boolean"):
        parse_github("pull_request", {**pull, "number": True})
    del pull["pull_request"]["head"]["sha"]
    with pytest.raises(WebhookRefused, match=r"no 'pull_request.head.sha'"):
        parse_github("pull_request", pull)


def test_github_events_that_do_not_build_are_none() -> None:
    assert parse_github("ping", {"zen": "Design for failure."}) is None
    assert parse_github("issues", {}) is None
    with pytest.raises(WebhookRefused, match="payload must be a JSON object, not an array"):
        parse_github("push", [])  # type: ignore[arg-type]
    with pytest.raises(WebhookRefused, match="no 'action'"):
        parse_github("pull_request", {})


# --- GitLab payloads ----------------------------------------------------------------------
# Trimmed from the payload examples of GitLab's docs page "Webhook events"
# (user/project/integrations/webhook_events: "Push events", "Tag events", "Merge request
# events"), keeping the keys Forgeyard reads and a few around them.

GITLAB_PROJECT = {
    "id": 15,
    "name": "Diaspora",
    "web_url": "http://example.com/mike/diaspora",
    "git_ssh_url": "git@example.com:mike/diaspora.git",
    "git_http_url": "http://example.com/mike/diaspora.git",
    "namespace": "Mike",
    "path_with_namespace": "mike/diaspora",
    "default_branch": "master",
}

GITLAB_PUSH = {
    "object_kind": "push",
    "event_name": "push",
    "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
    "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
    "ref": "refs/heads/master",
    "ref_protected": True,
    "checkout_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
    "user_username": "jsmith",
    "project_id": 15,
    "project": GITLAB_PROJECT,
    "commits": [
        {
            "id": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
            "message": "fixed readme",
            "title": "fixed readme",
        }
    ],
    "total_commits_count": 4,
}

GITLAB_TAG_PUSH = {
    "object_kind": "tag_push",
    "event_name": "tag_push",
    "before": ZERO_SHA,
    "after": "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
    "ref": "refs/tags/v1.0.0",
    "checkout_sha": "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
    "project_id": 1,
    "project": {
        "id": 1,
        "git_http_url": "http://example.com/jsmith/example.git",
        "path_with_namespace": "jsmith/example",
    },
    "commits": [],
    "total_commits_count": 0,
}

GITLAB_MERGE_REQUEST = {
    "object_kind": "merge_request",
    "event_type": "merge_request",
    "user": {"id": 1, "username": "root"},
    "project": {
        "id": 1,
        "name": "Gitlab Test",
        "git_http_url": "http://example.com/gitlabhq/gitlab-test.git",
        "path_with_namespace": "gitlabhq/gitlab-test",
        "default_branch": "master",
    },
    "object_attributes": {
        "id": 99,
        "iid": 1,
        "target_branch": "master",
        "source_branch": "ms-viewport",
        "source_project_id": 14,
        "target_project_id": 14,
        "title": "MS-Viewport",
        "state": "opened",
        "draft": False,
        "last_commit": {
            "id": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
            "message": "fixed readme",
        },
        "action": "open",
    },
    "changes": {},
}


def merge_request(**attributes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(GITLAB_MERGE_REQUEST)
    payload["object_attributes"].update(attributes)
    return payload


def test_a_gitlab_push_triggers() -> None:
    assert parse_gitlab("Push Hook", GITLAB_PUSH) == ForgeEvent(
        kind="push",
        repository="mike/diaspora",
        clone_url="http://example.com/mike/diaspora.git",
        branch="master",
        commit="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        ref="refs/heads/master",
    )


def test_a_gitlab_branch_deletion_is_marked_deleted() -> None:
    payload = {**GITLAB_PUSH, "after": ZERO_SHA, "checkout_sha": None, "commits": []}
    event = parse_gitlab("Push Hook", payload)
    assert event is not None
    assert event.deleted
    assert event.branch is None
    assert event.commit is None
    assert event.ref == "refs/heads/master"


def test_a_gitlab_tag_push_has_no_branch() -> None:
    event = parse_gitlab("Tag Push Hook", GITLAB_TAG_PUSH)
    assert event is not None
    assert event.kind == "push"
    assert event.repository == "jsmith/example"
    assert (event.branch, event.commit, event.ref) == (
        None,
        "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
        "refs/tags/v1.0.0",
    )
    gone = parse_gitlab("Tag Push Hook", {**GITLAB_TAG_PUSH, "after": ZERO_SHA})
    assert gone is not None
    assert gone.deleted


def test_a_gitlab_merge_request_opened_triggers() -> None:
    assert parse_gitlab("Merge Request Hook", GITLAB_MERGE_REQUEST) == ForgeEvent(
        kind="pull_request",
        repository="gitlabhq/gitlab-test",
        clone_url="http://example.com/gitlabhq/gitlab-test.git",
        branch="ms-viewport",
        commit="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        pull_request=1,
        target_branch="master",
        action="open",
    )
    reopened = parse_gitlab("Merge Request Hook", merge_request(action="reopen"))
    assert reopened is not None
    assert reopened.action == "reopen"


def test_a_gitlab_merge_request_update_triggers_only_with_new_code() -> None:
    # The docs: "object_attributes.oldrev is only available when there are actual code
    # changes, like new code is pushed".
    pushed = merge_request(action="update", oldrev="95790bf891e76fee5e1747ab589903a6a1f80f22")
    event = parse_gitlab("Merge Request Hook", pushed)
    assert event is not None
    assert event.action == "update"
    assert parse_gitlab("Merge Request Hook", merge_request(action="update")) is None


@pytest.mark.parametrize(
    "action", ["close", "merge", "approved", "unapproved", "approval", "unapproval"]
)
def test_other_gitlab_merge_request_actions_do_not_trigger(action: str) -> None:
    assert parse_gitlab("Merge Request Hook", merge_request(action=action)) is None


def test_other_gitlab_events_do_not_trigger() -> None:
    assert parse_gitlab("Issue Hook", {"object_kind": "issue"}) is None
    assert parse_gitlab("Pipeline Hook", {}) is None


def test_a_malformed_gitlab_payload_names_the_key() -> None:
    without_project = {k: v for k, v in GITLAB_PUSH.items() if k != "project"}
    with pytest.raises(WebhookRefused, match="no 'project'"):
        parse_gitlab("Push Hook", without_project)
    with pytest.raises(WebhookRefused, match="no 'ref'"):
        parse_gitlab("Push Hook", {**GITLAB_PUSH, "ref": None})
    with pytest.raises(WebhookRefused, match=r"no 'object_attributes.last_commit.id'"):
        parse_gitlab("Merge Request Hook", merge_request(last_commit={}))
    with pytest.raises(WebhookRefused, match=r"'object_attributes.iid' must be an integer"):
        parse_gitlab("Merge Request Hook", merge_request(iid="1"))
    with pytest.raises(WebhookRefused, match="'object_attributes' must be a JSON object"):
        parse_gitlab("Merge Request Hook", {**GITLAB_MERGE_REQUEST, "object_attributes": "x"})


def test_the_github_vector_is_plain_hmac_sha256() -> None:
    # The same vector computed here, so a failure above points at the parsing, not the HMAC.
    digest = hmac.new(GITHUB_SECRET.encode(), GITHUB_BODY, hashlib.sha256).hexdigest()
    assert f"sha256={digest}" == GITHUB_SIGNATURE
