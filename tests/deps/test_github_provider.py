"""The GitHub provider against GitHub's own OpenAPI description (tests/github/harness.py).

prism serves ``@octokit/openapi`` with ``--errors``: a request that breaks GitHub's schema is
answered with an error, not an example, so each operation succeeding proves Forgeyard's request
is one GitHub's description accepts. ``test_validation_is_live`` shows the same client's bad
requests being refused, so those successes cannot be vacuous.

Two things the description forces:
- it gives every answer as ``application/json``; prism refuses (406) a request whose
  ``Accept`` names only ``application/vnd.github+json``, so the provider accepts both;
- GitHub's example pull request (used by create and update) breaks GitHub's own schema
  (``requested_teams[0]`` lacks ``type``), which prism reports as a 500. Those two operations
  ask prism for an answer generated from the schema instead (``Prefer: dynamic=true``).

Statuses the description does not list for an operation (5xx, 429, 401, a 403 carrying
rate-limit headers) come from an ``httpx.MockTransport`` with GitHub's documented answers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from forgeyard.deps.providers import ProviderError, PullRequestDraft
from forgeyard.deps.providers.github import ACCEPT, API_VERSION, USER_AGENT, GitHubProvider
from forgeyard.kernel.http import OutboundPolicy, outbound_client
from tests.github import harness

LOOPBACK = OutboundPolicy(allowed_hosts=["127.0.0.1"])
TOKEN = "ghp_forgeyardTestToken0123456789abcdef"
REPO = "octo-org/hello-world"
DRAFT = PullRequestDraft(
    repository=REPO,
    base="main",
    head="forgeyard/update-httpx-0.28",
    title="Update httpx to 0.28.1",
    body="Updates **httpx** from 0.27.2 to 0.28.1.",
)
OPEN_BODY = {"title": DRAFT.title, "head": DRAFT.head, "base": DRAFT.base, "body": DRAFT.body}
DYNAMIC = "dynamic=true"  # see the module docstring: GitHub's pull request example is invalid
MERGE_EXAMPLE_SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"  # the description's example

needs_prism = pytest.mark.skipif(
    not harness.runnable(), reason="the GitHub contract tests need Node.js and npm on Linux x86-64"
)


@dataclass
class Exchange:
    method: str
    path: str
    headers: httpx.Headers
    sent: Any  # the JSON body sent
    status: int
    answer: Any  # the JSON body answered (None when not JSON)


@dataclass
class Recorder:
    """Every request the provider's client sent, with GitHub's (prism's) answer."""

    exchanges: list[Exchange] = field(default_factory=list)

    async def on_response(self, response: httpx.Response) -> None:
        await response.aread()  # the provider still reads it: httpx keeps the content
        request = response.request
        try:
            answer = response.json()
        except ValueError:
            answer = None
        sent = json.loads(request.content) if request.content else None
        self.exchanges.append(
            Exchange(
                request.method,
                request.url.path,
                request.headers,
                sent,
                response.status_code,
                answer,
            )
        )

    @property
    def last(self) -> Exchange:
        return self.exchanges[-1]


@dataclass
class Contract:
    provider: GitHubProvider
    client: httpx.AsyncClient
    recorder: Recorder


@pytest.fixture(scope="session")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Prism]:
    with harness.start_prism(tmp_path_factory.mktemp("prism")) as server:
        print(f"\nprism answered {server.started_in:.1f} s after it was started")
        yield server


@asynccontextmanager
async def against(prism: harness.Prism, prefer: str | None = None) -> AsyncIterator[Contract]:
    """A provider whose client is the outbound client (loopback allowed, as in the registry
    tests); ``prefer`` is prism's ``Prefer`` header (``code=404``, ``dynamic=true``)."""
    recorder = Recorder()
    headers = {"Prefer": prefer} if prefer else {}
    client = outbound_client(
        LOOPBACK, headers=headers, event_hooks={"response": [recorder.on_response]}
    )
    async with client:
        yield Contract(
            GitHubProvider(token=TOKEN, api_url=prism.url, client=client), client, recorder
        )


def no_violations(exchange: Exchange) -> None:
    assert exchange.status < 300, (exchange.status, exchange.answer)


# --- every request Forgeyard sends is one GitHub's description accepts -------------------


@needs_prism
async def test_open_sends_a_valid_request_and_reads_the_pull_request(prism: harness.Prism) -> None:
    async with against(prism, DYNAMIC) as github:
        opened = await github.provider.open(DRAFT)
    exchange = github.recorder.last
    no_violations(exchange)
    assert (exchange.method, exchange.path, exchange.status) == (
        "POST",
        f"/repos/{REPO}/pulls",
        201,
    )
    assert exchange.sent == OPEN_BODY
    pull = exchange.answer
    assert isinstance(pull["number"], int)
    assert opened.number == pull["number"]
    assert opened.url == pull["html_url"]
    assert opened.external_id == str(pull["id"])


@needs_prism
async def test_githubs_own_pull_request_example_breaks_its_schema(prism: harness.Prism) -> None:
    """Why open and close ask for generated answers: with the description's example prism
    reports violations, every one of them in the *response*; the request itself passed."""
    async with against(prism) as github:
        with pytest.raises(ProviderError) as raised:
            await github.provider.open(DRAFT)
    assert raised.value.status == 500
    violations = github.recorder.last.answer["validation"]
    assert violations
    assert {v["location"][0] for v in violations} == {"response"}


@needs_prism
@pytest.mark.parametrize("method", ["merge", "squash", "rebase"])
async def test_merge_sends_a_valid_request_and_reads_the_sha(
    prism: harness.Prism, method: Any
) -> None:
    async with against(prism) as github:
        merged = await github.provider.merge(REPO, 1347, method=method, title="Update httpx")
    exchange = github.recorder.last
    no_violations(exchange)
    assert (exchange.method, exchange.path) == ("PUT", f"/repos/{REPO}/pulls/1347/merge")
    assert exchange.sent == {"commit_title": "Update httpx", "merge_method": method}
    assert merged.sha == MERGE_EXAMPLE_SHA == exchange.answer["sha"]


@needs_prism
async def test_close_sends_a_valid_request(prism: harness.Prism) -> None:
    async with against(prism, DYNAMIC) as github:
        await github.provider.close(REPO, 1347)
    exchange = github.recorder.last
    no_violations(exchange)
    assert (exchange.method, exchange.path, exchange.status) == (
        "PATCH",
        f"/repos/{REPO}/pulls/1347",
        200,
    )
    assert exchange.sent == {"state": "closed"}


@needs_prism
async def test_comment_sends_a_valid_request(prism: harness.Prism) -> None:
    async with against(prism) as github:
        await github.provider.comment(REPO, 1347, "Tests passed: 212 of 212.")
    exchange = github.recorder.last
    no_violations(exchange)
    assert (exchange.method, exchange.path, exchange.status) == (
        "POST",
        f"/repos/{REPO}/issues/1347/comments",
        201,
    )
    assert exchange.sent == {"body": "Tests passed: 212 of 212."}
    assert exchange.answer["id"] == 1  # the description's example comment


@needs_prism
async def test_validation_is_live(prism: harness.Prism) -> None:
    """The same client, the provider's headers, requests that break GitHub's schema: prism
    refuses each one, so the successes above are prism accepting, not prism ignoring."""
    headers = {
        "Accept": ACCEPT,
        "Authorization": f"Bearer {TOKEN}",
        "X-GitHub-Api-Version": API_VERSION,
        "User-Agent": USER_AGENT,
    }
    pulls = f"{prism.url}/repos/{REPO}/pulls"
    async with against(prism) as github:
        client = github.client
        no_head = await client.post(
            pulls, json={"title": "t", "base": "main", "body": "b"}, headers=headers
        )
        bad_method = await client.put(
            f"{pulls}/1347/merge",
            json={"commit_title": "t", "merge_method": "fast-forward"},
            headers=headers,
        )
        bad_state = await client.patch(f"{pulls}/1347", json={"state": "merged"}, headers=headers)
        bad_number = await client.post(
            f"{prism.url}/repos/{REPO}/issues/first/comments", json={"body": "b"}, headers=headers
        )
        no_body = await client.post(
            f"{prism.url}/repos/{REPO}/issues/1347/comments", json={}, headers=headers
        )
        only_vnd = await client.put(
            f"{pulls}/1347/merge",
            json={"commit_title": "t", "merge_method": "merge"},
            headers={**headers, "Accept": "application/vnd.github+json"},
        )
    for answer, complaint in [
        (no_head, "required property 'head'"),
        (bad_method, "merge_method must be equal to one of the allowed values"),
        (bad_state, "state must be equal to one of the allowed values"),
        (bad_number, "issue_number must be integer"),
        (no_body, "required property 'body'"),
    ]:
        assert answer.status_code in (400, 422), answer.text
        violations = json.loads(answer.headers["sl-violations"])
        assert any(complaint in v["message"] for v in violations), violations
    assert only_vnd.status_code == 406  # why ACCEPT also names application/json


# --- GitHub's refusals, as prism answers them (Prefer: code=...) ------------------------------


@needs_prism
@pytest.mark.parametrize(
    ("status", "says"),
    [
        (405, "Pull Request is not mergeable"),
        (409, "Head branch was modified. Review and try the merge again."),
    ],
)
async def test_merge_refusals_say_why(prism: harness.Prism, status: int, says: str) -> None:
    async with against(prism, f"code={status}") as github:
        with pytest.raises(ProviderError) as raised:
            await github.provider.merge(REPO, 1347, method="squash", title="Update httpx")
    error = raised.value
    assert (error.status, error.retryable) == (status, False)
    assert "cannot merge" in error.message
    assert says in error.message


@needs_prism
@pytest.mark.parametrize(
    ("operation", "status"),
    [
        ("open", 403),
        ("open", 422),
        ("merge", 404),
        ("merge", 422),
        ("close", 422),
        ("comment", 404),
        ("comment", 410),
    ],
)
async def test_client_errors_are_not_retryable(
    prism: harness.Prism, operation: str, status: int
) -> None:
    calls: dict[str, Callable[[GitHubProvider], Any]] = {
        "open": lambda p: p.open(DRAFT),
        "merge": lambda p: p.merge(REPO, 1347, title="Update httpx"),
        "close": lambda p: p.close(REPO, 1347),
        "comment": lambda p: p.comment(REPO, 1347, "hello"),
    }
    async with against(prism, f"code={status}") as github:
        with pytest.raises(ProviderError) as raised:
            await calls[operation](github.provider)
    exchange = github.recorder.last
    assert exchange.status == status
    assert (raised.value.status, raised.value.retryable) == (status, False)
    # GitHub's message (the description's placeholder here) is carried into the error.
    assert exchange.answer["message"] in raised.value.message
    assert TOKEN not in raised.value.message


@needs_prism
async def test_validation_failed_carries_githubs_errors(prism: harness.Prism) -> None:
    async with against(prism, "code=422") as github:
        with pytest.raises(ProviderError) as raised:
            await github.provider.open(DRAFT)
    answer = github.recorder.last.answer
    assert f": {answer['message']} ({answer['errors'][0]['message']})" in raised.value.message


# --- what prism cannot answer: scripted with GitHub's documented answers ----------------------


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

    def provider(self, api_url: str = "https://api.github.com") -> GitHubProvider:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self.handle))
        return GitHubProvider(token=TOKEN, api_url=api_url, client=client)


PULL = {"number": 7, "id": 1296269, "html_url": "https://github.com/octo-org/hello-world/pull/7"}


async def test_headers_and_bodies_are_the_ones_github_documents() -> None:
    """What the description does not check (it declares no security scheme and no header
    parameters): the headers GitHub's REST documentation asks for, on every request."""
    script = Scripted(status=201, body=PULL)
    github = script.provider()
    opened = await github.open(DRAFT)
    script.status, script.body = 200, {"sha": "abc123", "merged": True, "message": "merged"}
    merged = await github.merge(REPO, 7, method="rebase", title="Update httpx")
    script.body = PULL
    await github.close(REPO, 7)
    script.status, script.body = 201, {"id": 1}
    await github.comment(REPO, 7, "done")
    assert opened.number == 7
    assert opened.url == PULL["html_url"]
    assert opened.external_id == "1296269"
    assert merged.sha == "abc123"
    sent = [(r.method, r.url.path, json.loads(r.content)) for r in script.requests]
    assert sent == [
        ("POST", f"/repos/{REPO}/pulls", OPEN_BODY),
        (
            "PUT",
            f"/repos/{REPO}/pulls/7/merge",
            {"commit_title": "Update httpx", "merge_method": "rebase"},
        ),
        ("PATCH", f"/repos/{REPO}/pulls/7", {"state": "closed"}),
        ("POST", f"/repos/{REPO}/issues/7/comments", {"body": "done"}),
    ]
    for request in script.requests:
        assert request.url.host == "api.github.com"
        assert request.headers["Accept"].split(",")[0] == "application/vnd.github+json"
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
        assert request.headers["User-Agent"].startswith("forgeyard/")
        assert request.headers["Content-Type"] == "application/json"


async def test_an_enterprise_api_url_keeps_its_path() -> None:
    script = Scripted(status=201, body={"id": 1})
    await script.provider("https://github.example.com/api/v3/").comment(REPO, 3, "hi")
    assert str(script.requests[0].url) == (
        f"https://github.example.com/api/v3/repos/{REPO}/issues/3/comments"
    )


@pytest.mark.parametrize(
    ("status", "headers", "body", "says"),
    [
        (500, {}, {"message": "Server Error"}, "answered 500"),
        (502, {}, b"<html>Bad Gateway</html>", "answered 502"),
        (503, {}, {"message": "Service Unavailable"}, "answered 503"),
        (429, {"Retry-After": "60"}, {"message": "Too many requests"}, "retry after 60 s"),
        (
            403,
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000000"},
            {"message": "API rate limit exceeded for user ID 1."},
            "resets at 1700000000",
        ),
        (
            403,
            {},
            {"message": "You have exceeded a secondary rate limit. Please wait a few minutes."},
            "rate limit",
        ),
    ],
)
async def test_server_errors_and_rate_limits_are_retryable(
    status: int, headers: dict[str, str], body: Any, says: str
) -> None:
    github = Scripted(status=status, headers=headers, body=body).provider()
    with pytest.raises(ProviderError) as raised:
        await github.open(DRAFT)
    assert (raised.value.status, raised.value.retryable) == (status, True)
    assert says in raised.value.message
    assert TOKEN not in raised.value.message


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        (401, {"message": "Bad credentials"}, "refused the token"),
        (
            403,
            {"message": "Resource not accessible by personal access token"},
            "Resource not accessible by personal access token",
        ),
        (
            422,
            {
                "message": "Validation Failed",
                "errors": [
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": "A pull request already exists for octo-org:forgeyard/x.",
                    }
                ],
                "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
            },
            "Validation Failed (A pull request already exists for octo-org:forgeyard/x.)",
        ),
        (
            422,
            {
                "message": "Validation Failed",
                "errors": [{"resource": "PullRequest", "field": "base", "code": "invalid"}],
            },
            "Validation Failed (PullRequest.base invalid)",
        ),
    ],
)
async def test_refusals_are_not_retryable(status: int, body: Any, says: str) -> None:
    github = Scripted(status=status, body=body).provider()
    with pytest.raises(ProviderError) as raised:
        await github.open(DRAFT)
    assert (raised.value.status, raised.value.retryable) == (status, False)
    assert says in raised.value.message


@pytest.mark.parametrize(
    "error",
    [httpx.ReadTimeout("timed out"), httpx.ConnectError("connection refused")],
    ids=["timeout", "unreachable"],
)
async def test_no_answer_is_retryable(error: Exception) -> None:
    github = Scripted(error=error).provider()
    with pytest.raises(ProviderError) as raised:
        await github.comment(REPO, 1, "hi")
    assert (raised.value.status, raised.value.retryable) == (None, True)


async def test_a_merge_github_reports_as_not_done_is_an_error() -> None:
    body = {"sha": "", "merged": False, "message": "Base branch was modified."}
    github = Scripted(status=200, body=body).provider()
    with pytest.raises(ProviderError, match="Base branch was modified"):
        await github.merge(REPO, 7, title="t")


async def test_an_answer_that_is_not_a_pull_request_is_an_error() -> None:
    github = Scripted(status=201, body=b"<html>captive portal</html>").provider()
    with pytest.raises(ProviderError, match="not a JSON object"):
        await github.open(DRAFT)


async def test_the_outbound_guard_applies() -> None:
    """Without loopback allowed by policy, a provider aimed at 127.0.0.1 sends nothing."""
    github = GitHubProvider(token=TOKEN, api_url="http://127.0.0.1:9")
    async with github:
        with pytest.raises(ProviderError, match="loopback") as raised:
            await github.comment(REPO, 1, "hi")
    assert (raised.value.status, raised.value.retryable) == (None, False)


@pytest.mark.parametrize(
    "repository",
    [
        "octo-org",
        "octo-org/",
        "/hello",
        "octo-org/hello/extra",
        "../hello",
        "octo-org/..",
        "octo-org/.",
        "octo-org/hel lo",
        "octo-org/hello?x=1",
        "octo-org/hello#x",
        "octo-org/%2e%2e",
        "-octo/hello",
        "",
        "octo-org\\hello",
    ],
)
async def test_a_repository_that_is_not_owner_slash_name_is_refused_before_sending(
    repository: str,
) -> None:
    script = Scripted(status=201, body=PULL)
    github = script.provider()
    with pytest.raises(ProviderError, match="not a GitHub repository name"):
        await github.open(PullRequestDraft(repository, "main", "x", "t", "b"))
    with pytest.raises(ProviderError, match="not a GitHub repository name"):
        await github.comment(repository, 1, "b")
    assert script.requests == []


@pytest.mark.parametrize("number", [0, -1, True])
async def test_a_pull_request_number_must_be_positive(number: int) -> None:
    script = Scripted()
    with pytest.raises(ProviderError, match="not a pull request number"):
        await script.provider().close(REPO, number)
    assert script.requests == []


def test_the_token_stays_out_of_sight() -> None:
    client = httpx.AsyncClient()
    github = GitHubProvider(token=TOKEN, client=client)
    assert TOKEN not in repr(github)
    assert "Authorization" not in client.headers  # sent per request, never a shared default
