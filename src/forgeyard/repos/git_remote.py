"""The git remote of a git upload: one smart-HTTP request, from token to recorded push.

No transaction stays open while git runs (a push can take minutes, and SQLite has one
writer): the token is checked, and on a first push the repository row made, in one short
transaction; git then runs; what the push changed is recorded in another short transaction,
even when the client hangs up before reading git's answer to the end.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from forgeyard.auth.runtime import AuthRuntime
from forgeyard.kernel import git, git_http
from forgeyard.kernel.db import Database
from forgeyard.kernel.errors import NotFoundError
from forgeyard.kernel.logging import get_logger
from forgeyard.repos import service, uploads

log = get_logger(__name__)
RECEIVE_PACK = "git-receive-pack"


def basic_password(header: str | None) -> str | None:
    """The password of an ``Authorization: Basic`` header (the user name is not checked)."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


async def serve(
    *, request: Request, database: Database, runtime: AuthRuntime, upload_id: str, operation: str
) -> Response:
    settings = runtime.settings
    path_info = "/" + operation
    git_http.check_request(request.method, path_info, request.url.query)
    pushing = path_info == f"/{RECEIVE_PACK}" or request.query_params.get("service") == RECEIVE_PACK
    token = basic_password(request.headers.get("authorization"))
    async with database.transaction() as session:
        upload = await uploads.authenticate_push(
            session=session,
            hasher=runtime.token_hasher,
            upload_id=upload_id,
            token=token,
            for_update=pushing,
        )
        if pushing:
            repository = await uploads.repository_for_push(session=session, upload=upload)
        elif upload.repository_id is None:
            raise NotFoundError("nothing has been pushed to this upload yet")
        else:
            repository = await service.get_repo_in(
                session=session,
                organization_id=upload.organization_id,
                repo_id=upload.repository_id,
            )
        mirror = service.mirror_path(settings, repository)
    if pushing:
        await git.init_bare(mirror)
    refs_before = await git.list_refs(mirror) if path_info == f"/{RECEIVE_PACK}" else None
    length = request.headers.get("content-length")
    answer = await git_http.serve(
        repo=mirror,
        method=request.method,
        path_info=path_info,
        query_string=request.url.query,
        content_type=request.headers.get("content-type"),
        content_encoding=request.headers.get("content-encoding"),
        body=request.stream(),
        remote_user=upload.id,
        max_body_bytes=settings.analysis.max_push_bytes,
        time_limit=settings.analysis.git_time_limit_seconds,
        git_protocol=request.headers.get("git-protocol"),
        content_length=int(length) if length and length.isdigit() else None,
    )
    body = answer.body
    if refs_before is not None:
        body = _then_record(body, database, upload.id, mirror, refs_before)
    return StreamingResponse(body, status_code=answer.status, headers=dict(answer.headers))


async def _then_record(
    body: AsyncIterator[bytes],
    database: Database,
    upload_id: str,
    mirror: Path,
    refs_before: dict[str, str],
) -> AsyncIterator[bytes]:
    """Pass git's answer through; once git is done, record the push if it changed a ref
    (a rejected push changes none, and is not analysed)."""
    try:
        async for chunk in body:
            yield chunk
    finally:
        # Shielded: a client that hangs up cancels the response, not what its push did.
        with anyio.CancelScope(shield=True):
            if await git.list_refs(mirror) != refs_before:
                state = await uploads.read_push(mirror)
                async with database.transaction() as session:
                    await uploads.record_push(session=session, upload_id=upload_id, state=state)
                log.info("git_push_recorded", upload_id=upload_id, commit=state.head)
