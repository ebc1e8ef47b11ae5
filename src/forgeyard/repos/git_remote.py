"""The git remote of a git upload: one smart-HTTP request, from token to recorded push.

No transaction stays open while git runs (a push can take minutes, and SQLite has one
writer): the token is checked, and on a first push the repository made, in one short
transaction; the push is recorded in another once git has finished.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from forgeyard.auth.runtime import AuthRuntime
from forgeyard.kernel import git_http
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
    pushing = path_info == f"/{RECEIVE_PACK}" or request.query_params.get("service") == RECEIVE_PACK
    token = basic_password(request.headers.get("authorization"))
    async with database.transaction() as session:
        upload = await uploads.authenticate_push(
            session=session, hasher=runtime.token_hasher, upload_id=upload_id, token=token
        )
        if pushing:
            repository = await uploads.repository_for_push(
                session=session, settings=settings, upload=upload
            )
        elif upload.repository_id is None:
            raise NotFoundError("nothing has been pushed to this upload yet")
        else:
            repository = await service.get_repo_in(
                session=session,
                organization_id=upload.organization_id,
                repo_id=upload.repository_id,
            )
        mirror = service.mirror_path(settings, repository)
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
    if path_info == f"/{RECEIVE_PACK}":
        body = _then_record(body, database, runtime, upload.id)
    return StreamingResponse(body, status_code=answer.status, headers=dict(answer.headers))


async def _then_record(
    body: AsyncIterator[bytes], database: Database, runtime: AuthRuntime, upload_id: str
) -> AsyncIterator[bytes]:
    """Pass git's answer through; once git is done, record what the push changed."""
    async for chunk in body:
        yield chunk
    async with database.transaction() as session:
        upload = await uploads.load_upload(session=session, upload_id=upload_id)
        if upload is None or upload.repository_id is None:
            return
        repository = await service.get_repo_in(
            session=session, organization_id=upload.organization_id, repo_id=upload.repository_id
        )
        await uploads.record_push(
            session=session, settings=runtime.settings, upload=upload, repository=repository
        )
    log.info("git_push_recorded", upload_id=upload_id, repository_id=repository.id)
