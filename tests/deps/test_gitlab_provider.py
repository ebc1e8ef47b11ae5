"""The GitLab provider against GitLab's documented answers, served by ``httpx.MockTransport``.

No GitLab runs here, so these are stand-ins: every answer below is a minimal version of an
example response in GitLab's REST API documentation (the page is named above each one; the
values that matter are ours, the shapes are GitLab's), and every error body is one GitLab's
API code or documentation gives. What the tests pin down is Forgeyard's side: the exact
method, encoded path, headers and JSON body of each request, and what each answer becomes.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from forgeyard.deps.providers import ProviderError, PullRequestDraft
from forgeyard.deps.providers.gitlab import GitLabProvider

TOKEN = "glpat-forgeyardTestToken0123456789"
PROJECT = "octo-group/platform/hello-world"
ENCODED = "octo-group%2Fplatform%2Fhello-world"
API = "/api/v4"
MRS = f"{API}/projects/{ENCODED}/merge_requests"
DRAFT = PullRequestDraft(
    repository=PROJECT,
    base="main",
    head="forgeyard/update-httpx-0.28",
    title="Update httpx to 0.28.1",
    body="Updates **httpx** from 0.27.2 to 0.28.1.",
)
OPEN_BODY = {
    "source_branch": DRAFT.head,
    "target_branch": DRAFT.base,
    "title": DRAFT.title,
    "description": DRAFT.body,
}
WEB_URL = "https://gitlab.com/octo-group/platform/hello-world/-/merge_requests/7"
MERGE_SHA = "2be7ddb704c7b6b83732fdd5b9f09d5a397b5f8f"
SQUASH_SHA = "c380d3acebd181f13629a25d2e2acca46ffe1e00"
HEAD_SHA = "8888888888888888888888888888888888888888"  # the docs' source branch head


def merge_request(**changes: Any) -> dict[str, Any]:
    """A merge request as GitLab's merge requests API returns it, cut to the fields that
    matter. Shape: the example responses of "Create MR", "Update MR" and "Merge a merge
    request" on docs.gitlab.com/api/merge_requests/ (the same entity in all three)."""
    answer: dict[str, Any] = {
        "id": 84713,
        "iid": 7,
        "project_id": 3,
        "title": DRAFT.title,
        "description": DRAFT.body,
        "state": "opened",
        "target_branch": DRAFT.base,
        "source_branch": DRAFT.head,
        "draft": False,
        "merge_status": "can_be_merged",
        "merge_error": None,
        "sha": HEAD_SHA,
        "merge_commit_sha": None,
        "squash_commit_sha": None,
        "squash": False,
        "web_url": WEB_URL,
        "references": {"short": "!7", "relative": "!7", "full": f"{PROJECT}!7"},
    }
    answer.update(changes)
    return answer


# docs.gitlab.com/api/merge_requests/#create-mr: 201 and the new merge request.
CREATED = merge_request()
# docs.gitlab.com/api/merge_requests/#merge-a-merge-request: 200 and the merged merge request.
# The documented example itself has "merge_commit_sha": null (a fast-forward merge).
MERGED = merge_request(state="merged", merge_commit_sha=MERGE_SHA)
MERGED_AS_DOCUMENTED = merge_request(state="merged")
SQUASHED = merge_request(state="merged", squash=True, squash_commit_sha=SQUASH_SHA)
# docs.gitlab.com/api/merge_requests/#update-mr (state_event=close): 200 and the merge request.
CLOSED = merge_request(state="closed")
# docs.gitlab.com/api/notes/#create-new-merge-request-note: 201 and the note (the shape of
# that page's "Get single merge request note" example).
NOTE = {
    "id": 301,
    "body": "Tests passed: 212 of 212.",
    "author": {"id": 1, "username": "forgeyard-bot", "name": "Forgeyard", "state": "active"},
    "created_at": "2013-10-02T08:57:14Z",
    "updated_at": "2013-10-02T08:57:14Z",
    "system": False,
    "noteable_id": 84713,
    "noteable_type": "MergeRequest",
    "project_id": 3,
    "noteable_iid": 7,
    "resolvable": False,
    "confidential": False,
    "internal": False,
}


@dataclass
class Scripted:
    """A provider whose client answers every request with ``status``, ``headers``, ``body``."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    error: Exception | None = None
    requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        content = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        headers = {"Content-Type": "application/json", **self.headers}
        return httpx.Response(self.status, headers=headers, content=content)

    def provider(self, api_url: str = "https://gitlab.com/api/v4", **kwargs: Any) -> GitLabProvider:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self.handle))
        return GitLabProvider(token=TOKEN, api_url=api_url, client=client, **kwargs)

    def sent(self) -> list[tuple[str, str, Any]]:
        """(method, raw path as sent, JSON body) of every request."""
        return [(r.method, r.url.raw_path.decode(), json.loads(r.content)) for r in self.requests]


OPERATIONS: dict[str, Callable[[GitLabProvider], Any]] = {
    "open": lambda p: p.open(DRAFT),
    "merge": lambda p: p.merge(PROJECT, 7, title="Update httpx"),
    "close": lambda p: p.close(PROJECT, 7),
    "comment": lambda p: p.comment(PROJECT, 7, "hello"),
}


# --- the four requests, exactly ----------------------------------------------------------------


def assert_gitlab_headers(request: httpx.Request) -> None:
    assert request.url.host == "gitlab.com"
    assert request.headers["PRIVATE-TOKEN"] == TOKEN
    assert "Authorization" not in request.headers
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith("forgeyard/")
    assert request.headers["Content-Type"] == "application/json"


async def test_open_posts_the_merge_request_and_reads_iid_url_and_id() -> None:
    script = Scripted(status=201, body=CREATED)
    opened = await script.provider().open(DRAFT)
    assert script.sent() == [("POST", MRS, OPEN_BODY)]
    assert_gitlab_headers(script.requests[0])
    assert opened.number == 7  # the iid: !7 in GitLab's interface
    assert opened.url == WEB_URL
    assert opened.external_id == "84713"  # the instance-wide id, as webhooks name it


@pytest.mark.parametrize(
    ("method", "answer", "body", "sha"),
    [
        ("merge", MERGED, {"merge_commit_message": "Update httpx", "squash": False}, MERGE_SHA),
        (
            "squash",
            SQUASHED,
            {
                "merge_commit_message": "Update httpx",
                "squash": True,
                "squash_commit_message": "Update httpx",
            },
            SQUASH_SHA,
        ),
        # GitLab merges with the project's method; "rebase" is sent like "merge".
        ("rebase", MERGED, {"merge_commit_message": "Update httpx", "squash": False}, MERGE_SHA),
        # The documented answer: no merge commit (fast-forward), so the source head it names.
        (
            "merge",
            MERGED_AS_DOCUMENTED,
            {"merge_commit_message": "Update httpx", "squash": False},
            HEAD_SHA,
        ),
    ],
    ids=["merge", "squash", "rebase", "fast-forward"],
)
async def test_merge_puts_the_merge_and_reads_the_sha(
    method: Any, answer: dict[str, Any], body: dict[str, Any], sha: str
) -> None:
    script = Scripted(status=200, body=answer)
    merged = await script.provider().merge(PROJECT, 7, method=method, title="Update httpx")
    assert script.sent() == [("PUT", f"{MRS}/7/merge", body)]
    assert_gitlab_headers(script.requests[0])
    assert merged.sha == sha


async def test_a_merge_answer_without_any_sha_is_a_merge_without_one() -> None:
    body = merge_request(state="merged", sha=None)
    merged = await Scripted(status=200, body=body).provider().merge(PROJECT, 7, title="t")
    assert merged.sha is None


async def test_close_puts_the_close_state_event() -> None:
    script = Scripted(status=200, body=CLOSED)
    await script.provider().close(PROJECT, 7)
    assert script.sent() == [("PUT", f"{MRS}/7", {"state_event": "close"})]
    assert_gitlab_headers(script.requests[0])


async def test_comment_posts_a_note() -> None:
    script = Scripted(status=201, body=NOTE)
    await script.provider().comment(PROJECT, 7, "Tests passed: 212 of 212.")
    assert script.sent() == [("POST", f"{MRS}/7/notes", {"body": "Tests passed: 212 of 212."})]
    assert_gitlab_headers(script.requests[0])


@pytest.mark.parametrize(
    ("project", "encoded"),
    [
        ("octo-group/hello", "octo-group%2Fhello"),
        ("a/b/c/d/e", "a%2Fb%2Fc%2Fd%2Fe"),
        ("my_group/my.project-2", "my_group%2Fmy.project-2"),
    ],
)
async def test_every_slash_of_the_project_path_is_encoded(project: str, encoded: str) -> None:
    script = Scripted(status=201, body=NOTE)
    await script.provider().comment(project, 3, "hi")
    assert (
        script.requests[0].url.raw_path
        == f"{API}/projects/{encoded}/merge_requests/3/notes".encode()
    )


async def test_a_self_managed_api_url_keeps_its_path() -> None:
    script = Scripted(status=201, body=NOTE)
    await script.provider("https://git.example.com/gitlab/api/v4/").comment(PROJECT, 3, "hi")
    assert str(script.requests[0].url) == (
        f"https://git.example.com/gitlab/api/v4/projects/{ENCODED}/merge_requests/3/notes"
    )


# --- GitLab's refusals ---------------------------------------------------------------------------

# The merge endpoint's documented failures (docs.gitlab.com/api/merge_requests/
# #merge-a-merge-request); "Branch cannot be merged" is 406 on older GitLab, 422 on newer
# (GitLab's lib/api/merge_requests.rb).
MERGE_REFUSALS = [
    (405, {"message": "405 Method Not Allowed"}, "405 Method Not Allowed"),
    (406, {"message": "Branch cannot be merged"}, "Branch cannot be merged"),
    (
        409,
        {"message": f"SHA does not match HEAD of source branch: {HEAD_SHA}"},
        "SHA does not match HEAD of source branch",
    ),
    (422, {"message": "Branch cannot be merged"}, "Branch cannot be merged"),
]


@pytest.mark.parametrize(
    ("status", "body", "says"), MERGE_REFUSALS, ids=["405", "406", "409", "422"]
)
async def test_merge_refusals_say_why_and_are_not_retryable(
    status: int, body: Any, says: str
) -> None:
    with pytest.raises(ProviderError) as raised:
        await Scripted(status=status, body=body).provider().merge(PROJECT, 7, title="t")
    error = raised.value
    assert (error.status, error.retryable) == (status, False)
    assert "cannot merge" in error.message
    assert says in error.message
    assert TOKEN not in error.message


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        # The REST API docs' status codes (docs.gitlab.com/api/rest/): "<status> <reason>".
        (401, {"message": "401 Unauthorized"}, "refused the token"),
        (401, {"message": "401 Unauthorized"}, "401 Unauthorized"),
        (
            401,
            {
                "error": "invalid_token",
                "error_description": "Token is expired. You can either do re-authorization "
                "or token refresh.",
            },
            "invalid_token; Token is expired.",
        ),
        (403, {"message": "403 Forbidden"}, "may not"),
        (404, {"message": "404 Project Not Found"}, "404 Project Not Found"),
        (404, {"message": "404 Project Not Found"}, "or the token cannot see it"),
        # Create MR with a branch that already has one open (GitLab's lib/api/merge_requests.rb).
        (
            409,
            {"message": ["Another open merge request already exists for this source branch: !7"]},
            "Another open merge request already exists for this source branch: !7",
        ),
        (400, {"error": "title is missing"}, "title is missing"),
        (422, {"message": {"source_branch": ["is invalid"]}}, "source_branch is invalid"),
    ],
)
async def test_client_errors_are_not_retryable_and_carry_gitlabs_message(
    status: int, body: Any, says: str
) -> None:
    with pytest.raises(ProviderError) as raised:
        await Scripted(status=status, body=body).provider().open(DRAFT)
    assert (raised.value.status, raised.value.retryable) == (status, False)
    assert says in raised.value.message
    assert TOKEN not in raised.value.message


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("status", [401, 404])
async def test_every_operation_maps_auth_and_missing(operation: str, status: int) -> None:
    body = {"message": f"{status} {'Unauthorized' if status == 401 else 'Not found'}"}
    with pytest.raises(ProviderError) as raised:
        await OPERATIONS[operation](Scripted(status=status, body=body).provider())
    assert (raised.value.status, raised.value.retryable) == (status, False)
    assert body["message"] in raised.value.message
    assert "cannot merge" not in raised.value.message


@pytest.mark.parametrize(
    ("status", "headers", "body", "says"),
    [
        (500, {}, {"message": "500 Internal Server Error"}, "answered 500"),
        (502, {}, b"<html>502 Whoops, GitLab is taking too much time to respond.</html>", "502"),
        (503, {}, b"", "answered 503"),
        # An endpoint's own rate limit (GitLab's API rate limiter), with Retry-After.
        (
            429,
            {"Retry-After": "60"},
            {"message": "This endpoint has been requested too many times. Try again later."},
            "retry after 60 s",
        ),
        # User and IP rate limits (docs.gitlab.com/administration/settings/
        # user_and_ip_rate_limits/): a plain-text "Retry later" and RateLimit-* headers.
        (
            429,
            {
                "RateLimit-Limit": "600",
                "RateLimit-Reset": "1700000000",
                "Content-Type": "text/plain",
            },
            b"Retry later\n",
            "resets at 1700000000",
        ),
    ],
)
async def test_server_errors_and_rate_limits_are_retryable(
    status: int, headers: dict[str, str], body: Any, says: str
) -> None:
    with pytest.raises(ProviderError) as raised:
        await (
            Scripted(status=status, headers=headers, body=body)
            .provider()
            .merge(PROJECT, 7, title="t")
        )
    assert (raised.value.status, raised.value.retryable) == (status, True)
    assert says in raised.value.message
    assert "cannot merge" not in raised.value.message
    assert TOKEN not in raised.value.message


@pytest.mark.parametrize(
    "error",
    [httpx.ReadTimeout("timed out"), httpx.ConnectTimeout("timed out"), httpx.ConnectError("no")],
    ids=["read-timeout", "connect-timeout", "unreachable"],
)
async def test_no_answer_is_retryable(error: Exception) -> None:
    with pytest.raises(ProviderError) as raised:
        await Scripted(error=error).provider(timeout=5.0).comment(PROJECT, 1, "hi")
    assert (raised.value.status, raised.value.retryable) == (None, True)
    if isinstance(error, httpx.TimeoutException):
        assert "did not answer" in raised.value.message
        assert "5 s" in raised.value.message


async def test_a_merge_gitlab_reports_as_not_done_is_an_error() -> None:
    body = merge_request(state="opened", merge_error="Something went wrong during merge")
    with pytest.raises(ProviderError, match="Something went wrong during merge") as raised:
        await Scripted(status=200, body=body).provider().merge(PROJECT, 7, title="t")
    assert (raised.value.status, raised.value.retryable) == (200, False)


@pytest.mark.parametrize(
    "body", [b"<html>captive portal</html>", b"[]", b'"merged"', b""], ids=repr
)
async def test_an_answer_that_is_not_a_json_object_is_an_error(body: bytes) -> None:
    with pytest.raises(ProviderError, match="not a JSON object") as raised:
        await Scripted(status=201, body=body).provider().open(DRAFT)
    assert (raised.value.status, raised.value.retryable) == (201, False)


async def test_an_answer_without_an_iid_is_an_error() -> None:
    body = {k: v for k, v in CREATED.items() if k != "iid"}
    with pytest.raises(ProviderError, match="no merge request iid"):
        await Scripted(status=201, body=body).provider().open(DRAFT)


@pytest.mark.parametrize("status", [201, 500])
async def test_an_oversized_answer_is_refused(status: int) -> None:
    body = {**CREATED, "description": "x" * 5000}
    with pytest.raises(ProviderError, match="larger than 1024 bytes") as raised:
        await Scripted(status=status, body=body).provider(max_bytes=1024).open(DRAFT)
    assert (raised.value.status, raised.value.retryable) == (status, False)


async def test_the_outbound_guard_applies() -> None:
    """Without loopback allowed by policy, a provider aimed at 127.0.0.1 sends nothing."""
    gitlab = GitLabProvider(token=TOKEN, api_url="http://127.0.0.1:9/api/v4")
    async with gitlab:
        with pytest.raises(ProviderError, match="loopback") as raised:
            await gitlab.comment(PROJECT, 1, "hi")
    assert (raised.value.status, raised.value.retryable) == (None, False)
    assert TOKEN not in raised.value.message


# --- refused before anything is sent ------------------------------------------------------------


@pytest.mark.parametrize(
    "project",
    [
        "hello-world",
        "",
        "octo-group/",
        "/hello",
        "octo-group//hello",
        "../hello",
        "octo-group/..",
        "octo-group/.",
        "octo-group/..hidden",
        "octo-group/hello..world",
        "octo-group/.hidden",
        "-octo/hello",
        "octo-group/hel lo",
        "octo-group/hello?x=1",
        "octo-group/hello#x",
        "octo-group/%2e%2e",
        "octo-group%2Fhello",
        "octo-group\\hello",
        "octo-group/hello/",
        "octo-group/héllo",
        "42",
        "/".join(["g"] * 22),
    ],
)
async def test_a_bad_project_path_is_refused_before_sending(project: str) -> None:
    script = Scripted(status=201, body=CREATED)
    gitlab = script.provider()
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: gitlab.open(PullRequestDraft(project, "main", "x", "t", "b")),
        lambda: gitlab.merge(project, 1, title="t"),
        lambda: gitlab.close(project, 1),
        lambda: gitlab.comment(project, 1, "b"),
    ]
    for call in calls:
        with pytest.raises(ProviderError, match="not a GitLab project path") as raised:
            await call()
        assert raised.value.retryable is False
    assert script.requests == []


@pytest.mark.parametrize("number", [0, -1, True, False, 1.0, "7"])
async def test_an_iid_must_be_a_positive_int(number: Any) -> None:
    script = Scripted()
    gitlab = script.provider()
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: gitlab.merge(PROJECT, number, title="t"),
        lambda: gitlab.close(PROJECT, number),
        lambda: gitlab.comment(PROJECT, number, "b"),
    ]
    for call in calls:
        with pytest.raises(ProviderError, match="not a merge request iid"):
            await call()
    assert script.requests == []


async def test_an_unknown_merge_method_is_refused_before_sending() -> None:
    script = Scripted()
    with pytest.raises(ProviderError, match="unknown merge method"):
        await script.provider().merge(PROJECT, 7, method="fast-forward", title="t")  # type: ignore[arg-type]
    assert script.requests == []


# --- the token ----------------------------------------------------------------------------------


def test_the_token_stays_out_of_sight() -> None:
    client = httpx.AsyncClient()
    gitlab = GitLabProvider(token=TOKEN, client=client)
    assert TOKEN not in repr(gitlab)
    assert repr(gitlab) == "GitLabProvider(api_url='https://gitlab.com/api/v4')"
    assert "PRIVATE-TOKEN" not in client.headers  # sent per request, never a shared default
    assert gitlab.name == "gitlab"


def test_a_token_is_required() -> None:
    with pytest.raises(ValueError, match="token is required"):
        GitLabProvider(token="")


async def test_a_provider_closes_only_the_client_it_made() -> None:
    shared = httpx.AsyncClient()
    async with GitLabProvider(token=TOKEN, client=shared):
        pass
    assert not shared.is_closed
    await shared.aclose()
    owned = GitLabProvider(token=TOKEN)
    await owned.aclose()
    assert owned._client.is_closed
