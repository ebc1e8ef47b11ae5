"""git's smart HTTP protocol for one bare repository, served by ``git http-backend``.

git ships the server side of its HTTP protocol as a CGI program; running it keeps every
detail (gzip request bodies, protocol v2, capabilities) git's own. This module is the CGI
host: it builds the environment, streams the request body in and the answer out, and holds
the process to a body size and a time limit. Who may push or fetch is the caller's business:
call :func:`serve` only after authenticating the request, and pass the user it names.

Errors before git answers are :mod:`forgeyard.kernel.errors` exceptions (404 for a path that
is not part of the protocol, 405, 413 for a body over the limit, 503 when the time limit
passes), so an API error handler renders them like any other; git failing without an answer
is a :class:`~forgeyard.kernel.git.GitError` (a 500).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

from forgeyard.kernel.errors import (
    ForgeyardError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
)
from forgeyard.kernel.git import GitError, config_env, git_environment

# The smart protocol and nothing else: http-backend would also serve the dumb protocol
# (loose objects, packs, alternates), which we have no reason to expose.
_ROUTES = {
    "/info/refs": "GET",
    "/git-upload-pack": "POST",
    "/git-receive-pack": "POST",
}
_SERVICES = ("git-upload-pack", "git-receive-pack")
_CHUNK_BYTES = 64 * 1024
_MAX_HEADER_LINES = 64
_STDERR_TAIL_BYTES = 4096
# Once its input is cut short, how long git gets to fail cleanly before it is killed.
_GRACE_SECONDS = 5.0
_PROTOCOL_CHARACTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=:._-"
)


class MethodNotAllowedError(ForgeyardError):
    status_code = 405
    code = "method_not_allowed"


@dataclass(frozen=True)
class GitHttpResponse:
    """What git answered: send ``status`` and ``headers``, then stream ``body`` to the end
    (or close it); the git process is reaped when ``body`` finishes either way."""

    status: int
    headers: list[tuple[str, str]]
    body: AsyncIterator[bytes]


async def serve(
    *,
    repo: Path,
    method: str,
    path_info: str,
    query_string: str,
    content_type: str | None,
    content_encoding: str | None,
    body: AsyncIterator[bytes],
    remote_user: str,
    max_body_bytes: int,
    time_limit: float,
    git_protocol: str | None = None,
    content_length: int | None = None,
) -> GitHttpResponse:
    """Answer one request of the smart HTTP protocol against the bare repository ``repo``.

    ``path_info`` is what follows the repository in the URL (``/info/refs``,
    ``/git-upload-pack``, ``/git-receive-pack``); ``git_protocol`` is the client's
    ``Git-Protocol`` header; ``content_length`` its ``Content-Length``, if it sent one.
    ``remote_user`` is the authenticated user; it is what git records as the pusher.

    The answer starts only once the whole body has been handed to git (git answers a push
    after reading it anyway), so a body over ``max_body_bytes`` gets a real 413. git then
    sees its input end early and refuses the cut-off pack; only a body that is a complete
    push followed by junk could already have been applied, which is the client's own doing.
    """
    query = check_request(method, path_info, query_string)
    if not remote_user or not remote_user.isprintable():
        raise ValueError("git http-backend needs the name of the authenticated user")
    if not (repo / "HEAD").is_file() or not (repo / "objects").is_dir():
        raise NotFoundError("no such repository")
    if content_length is not None and content_length > max_body_bytes:
        raise _too_large(max_body_bytes)

    environment = {
        # With GIT_PROJECT_ROOT set, http-backend serves ROOT + PATH_INFO; PATH_INFO is one
        # of three fixed strings, so the repository served is exactly ``repo``.
        "GIT_PROJECT_ROOT": str(repo),
        "PATH_INFO": path_info,
        "GIT_HTTP_EXPORT_ALL": "1",
        "REMOTE_USER": remote_user,
        "REQUEST_METHOD": method,
        "QUERY_STRING": query,
        "CONTENT_TYPE": content_type or "",
        **_server_config(max_body_bytes),
    }
    # No CONTENT_LENGTH: a chunked body has none, and git reads to the end of its input.
    if content_encoding:
        environment["HTTP_CONTENT_ENCODING"] = content_encoding
    if git_protocol and set(git_protocol) <= _PROTOCOL_CHARACTERS:
        environment["GIT_PROTOCOL"] = git_protocol

    process = await asyncio.create_subprocess_exec(
        "git",
        "http-backend",
        cwd=repo,
        env=git_environment(environment),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group: receive-pack, index-pack and all
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + time_limit
    # The watchdog holds the whole exchange to the limit, streaming of the answer included.
    watchdog = loop.call_at(deadline, _signal_group, process.pid, signal.SIGKILL)
    stderr_tail = bytearray()
    drain = asyncio.create_task(_keep_tail(process, stderr_tail))
    try:
        async with asyncio.timeout_at(deadline):
            await _feed(process, body, max_body_bytes)
            answer = await _read_headers(process)
            if answer is None:
                await process.wait()
                await drain  # the rest of what git said: why it did not answer
                said = stderr_tail.decode(errors="replace").strip()
                raise GitError(
                    f"git http-backend ended without an answer: {said or 'no message'}",
                    returncode=process.returncode,
                    stderr=said,
                )
    except BaseException as error:
        await _stop(process, graceful=isinstance(error, PayloadTooLargeError | TimeoutError))
        watchdog.cancel()
        drain.cancel()
        if isinstance(error, TimeoutError):
            raise ServiceUnavailableError(
                f"git ran past {time_limit:g} s and was stopped", code="git_timeout"
            ) from None
        raise
    status, headers = answer
    return GitHttpResponse(status, headers, _stream(process, watchdog, drain, deadline))


def check_request(method: str, path_info: str, query_string: str) -> str:
    """The query string to hand to git, once the request is known to be one of the protocol
    (callers check it before doing anything on the request's behalf)."""
    expected = _ROUTES.get(path_info)
    if expected is None:
        raise NotFoundError(f"{path_info!r} is not part of git's smart HTTP protocol")
    if method != expected:
        raise MethodNotAllowedError(
            f"{path_info} takes {expected}, not {method}", headers={"Allow": expected}
        )
    if path_info != "/info/refs":
        return ""
    services = parse_qs(query_string).get("service", [])
    if len(services) != 1 or services[0] not in _SERVICES:
        # Without ?service= git would fall back to the dumb protocol; we serve the smart one.
        raise InvalidInputError(
            "/info/refs needs ?service=git-upload-pack or ?service=git-receive-pack"
        )
    return f"service={services[0]}"


def _server_config(max_body_bytes: int) -> dict[str, str]:
    """Settings that win over the repository's own config (command-line scope)."""
    return config_env(
        {
            # Pushes are allowed here; whether this user may push was decided by the caller.
            "http.receivepack": "true",
            # No hook runs, wherever it would come from: a hook is a program on the server,
            # and the repository's hooks directory is not something we vouch for. git looks
            # for <hooksPath>/<name>; under the null device there is never such a file.
            "core.hooksPath": os.devnull,
            # Refuse malformed objects instead of storing them for every later reader.
            "receive.fsckObjects": "true",
            # A client does not compress a push, so its pack is no bigger than the body we
            # accept; this bounds what a gzip-compressed body may inflate to on disk.
            "receive.maxInputSize": str(max_body_bytes),
            # `gc --auto` detaches into a new session, beyond the time limit and the
            # process group kill; housekeeping belongs to a job of its own.
            "receive.autogc": "false",
        }
    )


async def _feed(
    process: asyncio.subprocess.Process, body: AsyncIterator[bytes], limit: int
) -> None:
    """Copy the request body to git's input, refusing it once it passes ``limit`` bytes."""
    stdin = process.stdin
    assert stdin is not None
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if received > limit:
                raise _too_large(limit)
            stdin.write(chunk)
            await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # git stopped reading (a refused content type, say); its answer says why
    else:
        stdin.close()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await stdin.wait_closed()


async def _read_headers(
    process: asyncio.subprocess.Process,
) -> tuple[int, list[tuple[str, str]]] | None:
    """The CGI header block: ``Status:`` becomes the status, the rest are HTTP headers;
    None if git ended first."""
    stdout = process.stdout
    assert stdout is not None
    status = 200
    headers: list[tuple[str, str]] = []
    for _ in range(_MAX_HEADER_LINES):
        try:
            line = await stdout.readline()
        except ValueError:  # a line past the reader's limit: not CGI headers
            raise GitError("git http-backend wrote a malformed header") from None
        if not line.endswith(b"\n"):
            return None
        line = line.rstrip(b"\r\n")
        if not line:
            return status, headers
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise GitError(f"git http-backend wrote a malformed header: {line[:100]!r}")
        name, value = name.strip(), value.strip()
        if name.lower() == "status":
            status = int(value.split(maxsplit=1)[0])
        else:
            headers.append((name, value))
    raise GitError("git http-backend wrote too many headers")


async def _stream(
    process: asyncio.subprocess.Process,
    watchdog: asyncio.TimerHandle,
    drain: asyncio.Task[None],
    deadline: float,
) -> AsyncIterator[bytes]:
    stdout = process.stdout
    assert stdout is not None
    finished = False
    try:
        while chunk := await stdout.read(_CHUNK_BYTES):
            yield chunk
        finished = True
    finally:
        if finished:
            # The answer is complete; git is only exiting. Give it until the deadline.
            remaining = max(deadline - asyncio.get_running_loop().time(), 0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), remaining)
        await _stop(process, graceful=False)
        watchdog.cancel()
        drain.cancel()


async def _keep_tail(process: asyncio.subprocess.Process, tail: bytearray) -> None:
    """Read git's standard error as it comes (a full pipe would stall git), keeping the end."""
    stderr = process.stderr
    assert stderr is not None
    while chunk := await stderr.read(_CHUNK_BYTES):
        tail += chunk
        del tail[:-_STDERR_TAIL_BYTES]


async def _stop(process: asyncio.subprocess.Process, *, graceful: bool) -> None:
    """End git's process group and reap it.

    ``graceful`` first ends git's input and gives it a moment: a pack cut short makes
    receive-pack fail the ordinary way, removing the quarantine directory the pack was going
    to. A signal would leave that directory behind (receive-pack has no handler for it).
    """
    if process.returncode is None and graceful:
        if process.stdin is not None:
            process.stdin.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), _GRACE_SECONDS)
    if process.returncode is None:
        _signal_group(process.pid, signal.SIGKILL)
    await process.wait()


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the request body is larger than {limit} bytes")
