"""Merge requests on GitLab (gitlab.com or a self-managed instance) through its REST API v4.

    open     POST  /projects/:id/merge_requests              {source_branch, target_branch,
                                                              title, description}
    merge    PUT   /projects/:id/merge_requests/:iid/merge   {merge_commit_message, squash,
                                                              squash_commit_message (squash)}
    close    PUT   /projects/:id/merge_requests/:iid         {state_event: "close"}
    comment  POST  /projects/:id/merge_requests/:iid/notes   {body}

``:id`` is the project's full path, URL-encoded as one path segment (``group/sub/project`` is
sent as ``group%2Fsub%2Fproject``); ``:iid`` is the merge request's number inside its project
(the ``!7`` of the web interface), which is what :class:`OpenedPullRequest` calls ``number``.

Every request goes through the SSRF-guarded client of :mod:`forgeyard.kernel.http` with a
time limit and a size limit on the answer. Nothing is retried here: opening or merging twice is
not harmless, so a failure becomes a :class:`ProviderError` whose ``retryable`` tells the job
whether to try again later (5xx, 429, no answer).

The token travels only in each request's ``PRIVATE-TOKEN`` header (GitLab accepts personal,
project and group access tokens there): it is not a default header of the (possibly shared)
client, not in ``repr``, not in any error message, and never logged.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from forgeyard.deps.providers.base import (
    MergeMethod,
    MergeResult,
    OpenedPullRequest,
    ProviderError,
    PullRequestDraft,
)
from forgeyard.deps.providers.rest import USER_AGENT, RestProvider

DEFAULT_API_URL = "https://gitlab.com/api/v4"
ACCEPT = "application/json"

# GitLab's rules, loosely: a group or project path is letters, digits, "_", "." and "-", and
# does not start with "-" or "."; subgroups nest at most 20 deep. What matters here is that no
# segment can leave the one encoded path segment it becomes ("?", "#", "%", "\\" and ".." are
# all refused), so quoting only ever turns "/" into "%2F".
_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}"
_PROJECT = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT}){{1,20}}")
_MERGE_METHODS = frozenset({"merge", "squash", "rebase"})
# The merge endpoint's refusals of a merge request that cannot be merged (as opposed to a token
# that may not): 405 draft, closed or pipeline not (yet) green; 406 (older GitLab) and 422
# "Branch cannot be merged" (conflicts, or the merge itself failed); 409 SHA mismatch.
_NOT_MERGEABLE = frozenset({405, 406, 409, 422})


class GitLabProvider(RestProvider):
    """One GitLab API (``api_url``, ending in ``/api/v4``) and one token."""

    name: ClassVar[str] = "gitlab"
    forge: ClassVar[str] = "GitLab"
    default_api_url: ClassVar[str] = DEFAULT_API_URL

    # --- the four operations ---------------------------------------------------------------

    async def open(self, draft: PullRequestDraft) -> OpenedPullRequest:
        path = f"{_project_path(draft.repository)}/merge_requests"
        payload = {
            "source_branch": draft.head,
            "target_branch": draft.base,
            "title": draft.title,
            "description": draft.body,
        }
        answer = await self.send("POST", path, payload, expect=201)
        iid, url, mr_id = answer.get("iid"), answer.get("web_url"), answer.get("id")
        if not isinstance(iid, int) or isinstance(iid, bool) or not isinstance(url, str):
            raise ProviderError(f"GitLab's answer to POST {path} has no merge request iid")
        return OpenedPullRequest(
            number=iid,
            url=url,
            external_id=str(mr_id) if isinstance(mr_id, int | str) else None,
        )

    async def merge(
        self, repository: str, number: int, *, method: MergeMethod = "merge", title: str
    ) -> MergeResult:
        """Merge merge request ``!number``; ``title`` becomes the commit message.

        GitLab has no per-request merge method: it merges the way the project is configured
        (merge commit, merge commit with semi-linear history, or fast-forward). ``"squash"``
        asks GitLab to squash the commits first (``squash: true``, and ``title`` as the squash
        commit's message too); ``"rebase"`` is treated exactly like ``"merge"`` (a project set
        to fast-forward merges already needs the branch rebased, which the update job does).
        ``squash: false`` cannot turn off squashing a project requires.

        The result's sha is ``merge_commit_sha``; a fast-forward merge has none, so then it is
        ``squash_commit_sha`` or, failing that, ``sha`` (the source branch head, which the
        target branch now points at).
        """
        if method not in _MERGE_METHODS:
            raise ProviderError(f"unknown merge method {method!r} (merge, squash or rebase)")
        path = f"{_merge_request_path(repository, number)}/merge"
        payload: dict[str, Any] = {"merge_commit_message": title, "squash": method == "squash"}
        if method == "squash":
            payload["squash_commit_message"] = title
        answer = await self.send("PUT", path, payload, expect=200, not_mergeable=True)
        state = answer.get("state")
        if isinstance(state, str) and state != "merged":  # e.g. left to auto-merge; be safe
            reason = _text(answer.get("merge_error")) or f"its state is {state!r}"
            raise ProviderError(f"merge request !{number} was not merged: {reason}", status=200)
        for key in ("merge_commit_sha", "squash_commit_sha", "sha"):
            sha = answer.get(key)
            if isinstance(sha, str) and sha:
                return MergeResult(sha=sha)
        return MergeResult(sha=None)

    async def close(self, repository: str, number: int) -> None:
        path = _merge_request_path(repository, number)
        await self.send("PUT", path, {"state_event": "close"}, expect=200)

    async def comment(self, repository: str, number: int, body: str) -> None:
        path = f"{_merge_request_path(repository, number)}/notes"
        await self.send("POST", path, {"body": body}, expect=201)

    # --- HTTP ------------------------------------------------------------------------------

    def refusal(
        self, what: str, response: httpx.Response, body: bytes, *, not_mergeable: bool
    ) -> ProviderError:
        return _refusal(what, response, body, not_mergeable=not_mergeable)

    def headers(self) -> dict[str, str]:
        return {"Accept": ACCEPT, "PRIVATE-TOKEN": self._token, "User-Agent": USER_AGENT}


# --- what GitLab's refusals mean -------------------------------------------------------------


def _refusal(
    what: str, response: httpx.Response, body: bytes, *, not_mergeable: bool
) -> ProviderError:
    status = response.status_code
    detail = _detail(body)
    if 500 <= status < 600:
        return ProviderError(
            f"GitLab answered {status} to {what}{detail}", status=status, retryable=True
        )
    if status == 429:
        wait = _wait_hint(response)
        return ProviderError(
            f"GitLab's rate limit stopped {what}{wait}{detail}", status=status, retryable=True
        )
    if not_mergeable and status in _NOT_MERGEABLE:
        return ProviderError(f"GitLab cannot merge it ({what}){detail}", status=status)
    if status == 401:
        # Also the merge endpoint's answer to a user who may not merge into the target branch.
        return ProviderError(
            f"GitLab refused the token for {what} (invalid, expired or not allowed){detail}",
            status=status,
        )
    if status == 403:
        return ProviderError(f"the token may not {what}{detail}", status=status)
    if status == 404:
        # GitLab also answers 404 for a private project the token cannot see.
        return ProviderError(
            f"GitLab found nothing at {what} (or the token cannot see it){detail}", status=status
        )
    if status in (400, 409, 422):
        return ProviderError(f"GitLab refused {what}{detail}", status=status)
    return ProviderError(f"GitLab answered {status} to {what}{detail}", status=status)


def _wait_hint(response: httpx.Response) -> str:
    retry_after = response.headers.get("Retry-After", "").strip()
    if retry_after.isdigit():
        return f" (retry after {retry_after} s)"
    reset = response.headers.get("RateLimit-Reset", "").strip()
    return f" (the limit resets at {reset}, seconds since the epoch)" if reset.isdigit() else ""


def _detail(body: bytes) -> str:
    """``: message`` from GitLab's error body, or nothing.

    GitLab's ``message`` is a string (``"404 Project Not Found"``), a list of strings
    (``["Another open merge request already exists for this source branch: !7"]``) or an
    object of field errors (``{"title": ["can't be blank"]}``); a refused parameter or token
    comes as ``error`` (and ``error_description``) instead.
    """
    try:
        answer = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(answer, dict):
        return ""
    parts = [
        _message_text(answer.get("message")),
        _text(answer.get("error")),
        _text(answer.get("error_description")),
    ]
    text = "; ".join(p for p in parts if p)
    return f": {text[:500]}" if text else ""


def _message_text(message: object) -> str:
    if isinstance(message, list):
        return "; ".join(t for t in (_text(m) for m in message[:5]) if t)
    if isinstance(message, dict):
        fields = []
        for field, errors in list(message.items())[:5]:
            reasons = _message_text(errors if isinstance(errors, list) else [errors])
            fields.append(f"{_text(field, 50)} {reasons}".strip())
        return "; ".join(f for f in fields if f)
    return _text(message)


def _text(value: object, limit: int = 300) -> str:
    return " ".join(value.split())[:limit] if isinstance(value, str) else ""


# --- paths -------------------------------------------------------------------------------------


def _project_path(repository: str) -> str:
    if _PROJECT.fullmatch(repository) is None or ".." in repository:
        raise ProviderError(f"{repository!r} is not a GitLab project path (group/project)")
    return f"/projects/{quote(repository, safe='')}"


def _iid(number: int) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ProviderError(f"{number!r} is not a merge request iid")
    return number


def _merge_request_path(repository: str, number: int) -> str:
    return f"{_project_path(repository)}/merge_requests/{_iid(number)}"
