"""Pull requests on GitHub (and GitHub Enterprise Server) through its REST API.

    open     POST  /repos/{owner}/{repo}/pulls                     {title, head, base, body}
    merge    PUT   /repos/{owner}/{repo}/pulls/{number}/merge      {commit_title, merge_method}
    close    PATCH /repos/{owner}/{repo}/pulls/{number}            {state: "closed"}
    comment  POST  /repos/{owner}/{repo}/issues/{number}/comments  {body}

Every request goes through the SSRF-guarded client of :mod:`forgeyard.kernel.http` with a
time limit and a size limit on the answer. Nothing is retried here: opening or merging twice is
not harmless, so a failure becomes a :class:`ProviderError` whose ``retryable`` tells the job
whether to try again later (5xx, 429, rate limits, no answer).

The token travels only in each request's ``Authorization`` header: it is not a default header
of the (possibly shared) client, not in ``repr``, not in any error message, and never logged.
The request headers are the ones GitHub documents; ``Accept`` also names ``application/json``
because that is the media type GitHub's OpenAPI description gives every answer (a client that
only accepts ``application/vnd.github+json`` is refused by a validating mock of that description).
"""

from __future__ import annotations

import json
import re
from typing import ClassVar

import httpx

from forgeyard.deps.providers.base import (
    MergeMethod,
    MergeResult,
    OpenedPullRequest,
    ProviderError,
    PullRequestDraft,
)
from forgeyard.deps.providers.rest import USER_AGENT, RestProvider

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
ACCEPT = "application/vnd.github+json, application/json"

# GitHub's rules, loosely: an owner is letters, digits and hyphens (underscores for managed
# users); a repository name is letters, digits, ".", "-" and "_". What matters here is that
# neither can leave its path segment ("/", "..", "?", "#", "%" are all refused).
_REPOSITORY = re.compile(
    r"(?P<owner>[A-Za-z0-9][A-Za-z0-9_-]{0,99})/(?P<name>[A-Za-z0-9._-]{1,100})"
)
_MERGE_METHODS = frozenset({"merge", "squash", "rebase"})


class GitHubProvider(RestProvider):
    """One GitHub API (``api_url``) and one token."""

    name: ClassVar[str] = "github"
    forge: ClassVar[str] = "GitHub"
    default_api_url: ClassVar[str] = DEFAULT_API_URL

    # --- the four operations ---------------------------------------------------------------

    async def open(self, draft: PullRequestDraft) -> OpenedPullRequest:
        path = f"{_repository_path(draft.repository)}/pulls"
        payload = {"title": draft.title, "head": draft.head, "base": draft.base, "body": draft.body}
        answer = await self.send("POST", path, payload, expect=201)
        number, url, pr_id = answer.get("number"), answer.get("html_url"), answer.get("id")
        if not isinstance(number, int) or isinstance(number, bool) or not isinstance(url, str):
            raise ProviderError(f"GitHub's answer to POST {path} has no pull request number")
        return OpenedPullRequest(
            number=number,
            url=url,
            external_id=str(pr_id) if isinstance(pr_id, int | str) else None,
        )

    async def merge(
        self, repository: str, number: int, *, method: MergeMethod = "merge", title: str
    ) -> MergeResult:
        if method not in _MERGE_METHODS:
            raise ProviderError(f"unknown merge method {method!r} (merge, squash or rebase)")
        path = f"{_pull_path(repository, number)}/merge"
        payload = {"commit_title": title, "merge_method": method}
        answer = await self.send("PUT", path, payload, expect=200, not_mergeable=True)
        if answer.get("merged") is False:  # GitHub answers 405 for this; be safe anyway
            reason = _text(answer.get("message")) or "GitHub did not merge it"
            raise ProviderError(f"pull request #{number} was not merged: {reason}", status=200)
        sha = answer.get("sha")
        return MergeResult(sha=sha if isinstance(sha, str) and sha else None)

    async def close(self, repository: str, number: int) -> None:
        await self.send("PATCH", _pull_path(repository, number), {"state": "closed"}, expect=200)

    async def comment(self, repository: str, number: int, body: str) -> None:
        path = f"{_repository_path(repository)}/issues/{_number(number)}/comments"
        await self.send("POST", path, {"body": body}, expect=201)

    # --- HTTP ------------------------------------------------------------------------------

    def refusal(
        self, what: str, response: httpx.Response, body: bytes, *, not_mergeable: bool
    ) -> ProviderError:
        return _refusal(what, response, body, not_mergeable=not_mergeable)

    def headers(self) -> dict[str, str]:
        return {
            "Accept": ACCEPT,
            "Authorization": f"Bearer {self._token}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": USER_AGENT,
        }


# --- what GitHub's refusals mean -------------------------------------------------------------


def _refusal(
    what: str, response: httpx.Response, body: bytes, *, not_mergeable: bool
) -> ProviderError:
    status = response.status_code
    detail = _detail(body)
    if 500 <= status < 600:
        return ProviderError(
            f"GitHub answered {status} to {what}{detail}", status=status, retryable=True
        )
    if status == 429 or (status == 403 and _rate_limited(response, body)):
        wait = _wait_hint(response)
        return ProviderError(
            f"GitHub's rate limit stopped {what}{wait}{detail}", status=status, retryable=True
        )
    if not_mergeable and status in (405, 409):
        return ProviderError(f"GitHub cannot merge it ({what}){detail}", status=status)
    if status == 401:
        return ProviderError(f"GitHub refused the token for {what}{detail}", status=status)
    if status == 403:
        return ProviderError(f"the token may not {what}{detail}", status=status)
    if status == 404:
        # GitHub also answers 404 for a private repository the token cannot see.
        return ProviderError(
            f"GitHub found nothing at {what} (or the token cannot see it){detail}", status=status
        )
    if status == 422:
        return ProviderError(f"GitHub refused {what}{detail}", status=status)
    return ProviderError(f"GitHub answered {status} to {what}{detail}", status=status)


def _rate_limited(response: httpx.Response, body: bytes) -> bool:
    """A 403 that is a (primary or secondary) rate limit, not a missing permission."""
    headers = response.headers
    if headers.get("X-RateLimit-Remaining", "").strip() == "0" or "Retry-After" in headers:
        return True
    return "rate limit" in _message(body).lower()


def _wait_hint(response: httpx.Response) -> str:
    retry_after = response.headers.get("Retry-After", "").strip()
    if retry_after.isdigit():
        return f" (retry after {retry_after} s)"
    reset = response.headers.get("X-RateLimit-Reset", "").strip()
    return f" (the limit resets at {reset}, seconds since the epoch)" if reset.isdigit() else ""


def _message(body: bytes) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        return ""
    return _text(answer.get("message")) if isinstance(answer, dict) else ""


def _detail(body: bytes) -> str:
    """``: message (error; error)`` from GitHub's error body, or nothing."""
    try:
        answer = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(answer, dict):
        return ""
    parts = [_text(answer.get("message"))]
    errors = answer.get("errors")
    if isinstance(errors, list):
        reasons = [r for r in (_error_text(e) for e in errors[:5]) if r]
        if reasons:
            parts.append(f"({'; '.join(reasons)})")
    text = " ".join(p for p in parts if p)
    return f": {text}" if text else ""


def _error_text(error: object) -> str:
    """One entry of GitHub's ``errors``: a string, or {resource, field, code, message}."""
    if isinstance(error, str):
        return _text(error)
    if not isinstance(error, dict):
        return ""
    if message := _text(error.get("message")):
        return message
    where = ".".join(_text(error.get(k)) for k in ("resource", "field") if _text(error.get(k)))
    code = _text(error.get("code"))
    return f"{where} {code}".strip() if where or code else ""


def _text(value: object, limit: int = 300) -> str:
    return " ".join(value.split())[:limit] if isinstance(value, str) else ""


# --- paths -------------------------------------------------------------------------------------


def _repository_path(repository: str) -> str:
    match = _REPOSITORY.fullmatch(repository)
    if match is None or match["name"] in (".", ".."):
        raise ProviderError(f"{repository!r} is not a GitHub repository name (owner/name)")
    return f"/repos/{match['owner']}/{match['name']}"


def _number(number: int) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ProviderError(f"{number!r} is not a pull request number")
    return number


def _pull_path(repository: str, number: int) -> str:
    return f"{_repository_path(repository)}/pulls/{_number(number)}"
