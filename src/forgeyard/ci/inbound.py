"""Inbound forge webhooks: is a delivery genuine, and does it ask for a build?

``verify_github_signature`` and ``verify_gitlab_token`` check a delivery before its body is
parsed at all; ``parse_github`` and ``parse_gitlab`` turn a verified payload into a
``ForgeEvent``, or None when the event is not one that builds. Both refuse a malformed payload
with ``WebhookRefused`` naming the key, never with a KeyError or TypeError.

What maps to a ``ForgeEvent``:

- pushes (GitHub ``push``; GitLab ``Push Hook`` and ``Tag Push Hook``, which GitHub sends as
  ``push`` too). A push that deletes a branch or tag is returned with ``deleted=True`` and no
  ``branch`` or ``commit``, so a caller can cancel what still runs for that ref; it must not
  build it. A tag push has ``branch`` None and its ``ref`` (``refs/tags/…``).
- pull requests opened, synchronized (new commits) or reopened (GitHub ``pull_request``
  ``opened``/``synchronize``/``reopened``); GitLab merge requests ``open``/``reopen``, and
  ``update`` only when it carries ``oldrev``: GitLab documents that field as present exactly
  when new code was pushed, and an ``update`` without it is a title, label, draft or
  approval change, like GitHub's ``edited``/``labeled``, which do not build either.

Every other event or action is None. ``action`` is the forge's own word (GitHub ``opened``,
GitLab ``open``). For a pull request, ``repository`` and ``clone_url`` are the base
(target) repository's; its head commit can be fetched from there even for a fork
(``refs/pull/<n>/head`` on GitHub, ``refs/merge-requests/<iid>/head`` on GitLab).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

GITHUB_SIGNATURE_HEADER = "X-Hub-Signature-256"
GITLAB_TOKEN_HEADER = "X-Gitlab-Token"  # noqa: S105  (a header name, not a secret)
_SIGNATURE_PREFIX = "sha256="
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
ZERO_SHA = "0" * 40
_BRANCH_PREFIX = "refs/heads/"

GITHUB_PULL_REQUEST_ACTIONS = frozenset({"opened", "synchronize", "reopened"})
GITLAB_MERGE_REQUEST_ACTIONS = frozenset({"open", "update", "reopen"})

_T = TypeVar("_T")


class WebhookRefused(Exception):  # noqa: N818 - an answer to the forge, not a crash
    """A delivery that is not genuine or not understood; ``reason`` says which, for the log
    and the answer to the forge (it never holds the secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class ForgeEvent:
    kind: Literal["push", "pull_request"]
    repository: str  # GitHub full_name, GitLab path_with_namespace: "owner/name"
    clone_url: str | None
    branch: str | None  # push: the branch; pull request: the head (source) branch
    commit: str | None  # push: ``after``; pull request: the head commit
    pull_request: int | None = None  # GitHub number, GitLab iid
    target_branch: str | None = None  # pull request: the base branch
    action: str | None = None  # pull request: the forge's action
    deleted: bool = False  # a push that deleted its ref: never build it
    ref: str | None = None  # push: the full ref, refs/heads/… or refs/tags/…


# --- genuine deliveries -------------------------------------------------------------------


def verify_github_signature(secret: str, body: bytes, header: str | None) -> None:
    """Checks ``X-Hub-Signature-256: sha256=<hex>``, the HMAC-SHA256 of the raw body under the
    webhook's secret, in constant time. Raises ``WebhookRefused`` unless it matches."""
    if not secret:
        raise WebhookRefused("no webhook secret is configured for this integration")
    if not header:
        raise WebhookRefused(f"the {GITHUB_SIGNATURE_HEADER} header is missing")
    if not header.startswith(_SIGNATURE_PREFIX):
        raise WebhookRefused(
            f"the {GITHUB_SIGNATURE_HEADER} header must start with {_SIGNATURE_PREFIX!r}"
        )
    hex_digest = header.removeprefix(_SIGNATURE_PREFIX)
    if not _SHA256_HEX.fullmatch(hex_digest):
        raise WebhookRefused(
            f"the {GITHUB_SIGNATURE_HEADER} header must hold {_SIGNATURE_PREFIX} and 64 "
            "hexadecimal digits"
        )
    expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, bytes.fromhex(hex_digest)):
        raise WebhookRefused(
            f"the {GITHUB_SIGNATURE_HEADER} signature does not match the body and secret"
        )


def verify_gitlab_token(expected: str, header: str | None) -> None:
    """Checks ``X-Gitlab-Token`` against the configured token, in constant time."""
    if not expected:
        raise WebhookRefused("no webhook token is configured for this integration")
    if not header:
        raise WebhookRefused(f"the {GITLAB_TOKEN_HEADER} header is missing")
    if not hmac.compare_digest(expected.encode(), header.encode("utf-8", "surrogateescape")):
        raise WebhookRefused(f"the {GITLAB_TOKEN_HEADER} header does not match")


# --- GitHub -------------------------------------------------------------------------------


def parse_github(event: str, payload: dict[str, Any]) -> ForgeEvent | None:
    """The build-triggering event in a GitHub delivery (``X-GitHub-Event`` is ``event``)."""
    if event == "push":
        return _github_push(_object(payload, ""))
    if event == "pull_request":
        return _github_pull_request(_object(payload, ""))
    return None


def _github_push(payload: Mapping[str, Any]) -> ForgeEvent:
    ref = _get(payload, "ref", str)
    after = _get(payload, "after", str)
    flagged = _get(payload, "deleted", bool, optional=True)
    deleted = bool(flagged) or after == ZERO_SHA
    return ForgeEvent(
        kind="push",
        repository=_get(payload, "repository.full_name", str),
        clone_url=_get(payload, "repository.clone_url", str, optional=True),
        branch=None if deleted else _branch(ref),
        commit=None if deleted else after,
        deleted=deleted,
        ref=ref,
    )


def _github_pull_request(payload: Mapping[str, Any]) -> ForgeEvent | None:
    action = _get(payload, "action", str)
    if action not in GITHUB_PULL_REQUEST_ACTIONS:
        return None
    return ForgeEvent(
        kind="pull_request",
        repository=_get(payload, "repository.full_name", str),
        clone_url=_get(payload, "repository.clone_url", str, optional=True),
        branch=_get(payload, "pull_request.head.ref", str),
        commit=_get(payload, "pull_request.head.sha", str),
        pull_request=_get(payload, "number", int),
        target_branch=_get(payload, "pull_request.base.ref", str),
        action=action,
    )


# --- GitLab -------------------------------------------------------------------------------


def parse_gitlab(event: str, payload: dict[str, Any]) -> ForgeEvent | None:
    """The build-triggering event in a GitLab delivery (``X-Gitlab-Event`` is ``event``)."""
    if event in ("Push Hook", "Tag Push Hook"):
        return _gitlab_push(_object(payload, ""))
    if event == "Merge Request Hook":
        return _gitlab_merge_request(_object(payload, ""))
    return None


def _gitlab_push(payload: Mapping[str, Any]) -> ForgeEvent:
    ref = _get(payload, "ref", str)
    after = _get(payload, "after", str)
    deleted = after == ZERO_SHA  # GitLab has no ``deleted`` flag; checkout_sha is null then
    return ForgeEvent(
        kind="push",
        repository=_get(payload, "project.path_with_namespace", str),
        clone_url=_get(payload, "project.git_http_url", str, optional=True),
        branch=None if deleted else _branch(ref),
        commit=None if deleted else after,
        deleted=deleted,
        ref=ref,
    )


def _gitlab_merge_request(payload: Mapping[str, Any]) -> ForgeEvent | None:
    action = _get(payload, "object_attributes.action", str, optional=True)
    if action not in GITLAB_MERGE_REQUEST_ACTIONS:
        return None
    if action == "update" and not _get(payload, "object_attributes.oldrev", str, optional=True):
        return None  # no new code: a title, label, draft or approval change
    return ForgeEvent(
        kind="pull_request",
        repository=_get(payload, "project.path_with_namespace", str),
        clone_url=_get(payload, "project.git_http_url", str, optional=True),
        branch=_get(payload, "object_attributes.source_branch", str),
        commit=_get(payload, "object_attributes.last_commit.id", str),
        pull_request=_get(payload, "object_attributes.iid", int),
        target_branch=_get(payload, "object_attributes.target_branch", str),
        action=action,
    )


# --- reading payloads ---------------------------------------------------------------------


def _branch(ref: str) -> str | None:
    return ref.removeprefix(_BRANCH_PREFIX) if ref.startswith(_BRANCH_PREFIX) else None


def _object(value: object, path: str) -> Mapping[str, Any]:
    """``value`` if it is a JSON object; ``path`` is where it is ("" for the payload)."""
    if not isinstance(value, Mapping):
        where = f"the payload's {path!r}" if path else "the payload"
        raise WebhookRefused(f"{where} must be a JSON object, not {_json_type(value)}")
    return value


@overload
def _get(payload: Mapping[str, Any], path: str, kind: type[_T]) -> _T: ...


@overload
def _get(
    payload: Mapping[str, Any], path: str, kind: type[_T], *, optional: Literal[True]
) -> _T | None: ...


def _get(
    payload: Mapping[str, Any], path: str, kind: type[_T], *, optional: bool = False
) -> _T | None:
    """The value at the dotted ``path``, of type ``kind``; with ``optional``, None when it or
    an object on the way is absent or null. Anything else refuses the delivery, naming the
    key."""
    value: object = payload
    walked: list[str] = []
    for key in path.split("."):
        mapping = _object(value, ".".join(walked)) if walked else payload
        walked.append(key)
        value = mapping.get(key)
        if value is None:
            if optional:
                return None
            raise WebhookRefused(f"the payload has no {'.'.join(walked)!r}")
    # bool is an int in Python, not in JSON: a number field must not accept true/false
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise WebhookRefused(
            f"the payload's {path!r} must be {_json_name(kind)}, not {_json_type(value)}"
        )
    return value


def _json_name(kind: type) -> str:
    names = {str: "a string", int: "an integer", bool: "a boolean"}
    return names.get(kind, kind.__name__)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
