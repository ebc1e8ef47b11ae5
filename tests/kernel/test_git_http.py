"""git's smart HTTP protocol, served by git_http.serve and driven by the real git client."""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from forgeyard.kernel import git, git_http
from forgeyard.kernel.errors import ForgeyardError

TOKEN = "fy_token_for_tests"


class Served:
    """The test server's state: where its repositories are and what it answered."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = 0
        self.max_body_bytes = 64 * 1024 * 1024
        self.statuses: list[int] = []

    def url(self, repo: str, token: str = TOKEN) -> str:
        return f"http://pusher:{token}@127.0.0.1:{self.port}/{repo}"


def make_app(served: Served) -> Starlette:
    """What a Forgeyard route does: authenticate (the password is a token), then serve."""

    async def git_endpoint(request: Request) -> Response:
        user = authenticated_user(request)
        if user is None:
            served.statuses.append(401)
            return PlainTextResponse(
                "authentication required",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="Forgeyard"'},
            )
        length = request.headers.get("content-length")
        try:
            answer = await git_http.serve(
                repo=served.root / request.path_params["name"],
                method=request.method,
                path_info="/" + request.path_params["rest"],
                query_string=request.url.query,
                content_type=request.headers.get("content-type"),
                content_encoding=request.headers.get("content-encoding"),
                git_protocol=request.headers.get("git-protocol"),
                content_length=int(length) if length else None,
                body=request.stream(),
                remote_user=user,
                max_body_bytes=served.max_body_bytes,
                time_limit=60,
            )
        except ForgeyardError as error:
            served.statuses.append(error.status_code)
            return PlainTextResponse(error.message, error.status_code, headers=error.headers)
        served.statuses.append(answer.status)
        response = StreamingResponse(answer.body, status_code=answer.status)
        for name, value in answer.headers:
            response.headers.append(name, value)
        return response

    return Starlette(routes=[Route("/{name}/{rest:path}", git_endpoint, methods=["GET", "POST"])])


def authenticated_user(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(credentials).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user if user and password == TOKEN else None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = Served(tmp_path_factory.mktemp("served"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    served.port = sock.getsockname()[1]
    config = uvicorn.Config(
        make_app(served), lifespan="off", loop="asyncio", log_level="warning", access_log=False
    )
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = time.monotonic()
    while not uvicorn_server.started:
        assert time.monotonic() - started < 10, "the test server did not start"
        time.sleep(0.01)
    yield served
    uvicorn_server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def limit(server: Served) -> Iterator[Served]:
    """The server, with its body limit restored after the test."""
    before = server.max_body_bytes
    yield server
    server.max_body_bytes = before


async def git_client(
    home: Path, *args: str, cwd: Path | None = None, extra_env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """The real git client, with nothing of this machine's git config or credentials."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "T",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "T",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "LC_ALL": "C",
        **(extra_env or {}),
    }
    process = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def checked(home: Path, *args: str, cwd: Path | None = None) -> str:
    code, out, err = await git_client(home, *args, cwd=cwd)
    assert code == 0, f"git {args[0]} failed: {err}"
    return out.strip()


async def commit(home: Path, work: Path, files: dict[str, bytes]) -> str:
    """A commit of ``files`` in the local repository ``work`` (created if needed)."""
    if not (work / ".git").exists():
        await checked(home, "init", "-q", "-b", "main", str(work))
    for name, data in files.items():
        (work / name).write_bytes(data)
    await checked(home, "add", "-A", cwd=work)
    await checked(home, "commit", "-qm", f"change {sorted(files)}", cwd=work)
    return await checked(home, "rev-parse", "HEAD", cwd=work)


def object_files(repo: Path) -> set[str]:
    return {str(p.relative_to(repo)) for p in (repo / "objects").rglob("*") if p.is_file()}


async def bare(server: Served, name: str) -> Path:
    repo = server.root / name
    await git.init_bare(repo)
    return repo


async def test_a_push_lands_in_the_bare_repository_and_a_second_one_updates_it(
    server: Served, tmp_path: Path
) -> None:
    repo = await bare(server, "pushed.git")
    first = await commit(tmp_path, tmp_path / "work", {"app.py": b"print('hi')\n"})
    await checked(tmp_path, "push", server.url("pushed.git"), "main", cwd=tmp_path / "work")
    assert await git.list_refs(repo) == {"refs/heads/main": first}
    assert 401 in server.statuses, "git sent its token only after the challenge"

    second = await commit(tmp_path, tmp_path / "work", {"app.py": b"print('bye')\n"})
    await checked(tmp_path, "push", server.url("pushed.git"), "main", cwd=tmp_path / "work")
    assert await git.list_refs(repo) == {"refs/heads/main": second}
    assert await checked(tmp_path, "rev-parse", "main", cwd=repo) == second


async def test_a_wrong_token_is_refused_and_changes_nothing(server: Served, tmp_path: Path) -> None:
    repo = await bare(server, "guarded.git")
    await commit(tmp_path, tmp_path / "work", {"a.txt": b"a"})
    before = object_files(repo)
    code, _, err = await git_client(
        tmp_path, "push", server.url("guarded.git", token="wrong"), "main", cwd=tmp_path / "work"
    )
    assert code != 0
    assert "Authentication failed" in err
    assert await git.list_refs(repo) == {}
    assert object_files(repo) == before


async def test_a_large_push_is_streamed_and_can_be_cloned_back(
    server: Served, tmp_path: Path
) -> None:
    repo = await bare(server, "large.git")
    payload = os.urandom(4 * 1024 * 1024)  # random: the pack stays big, so git sends it chunked
    head = await commit(tmp_path, tmp_path / "work", {"blob.bin": payload, "a.txt": b"a"})
    await checked(tmp_path, "push", server.url("large.git"), "main", cwd=tmp_path / "work")
    assert await checked(tmp_path, "rev-parse", "main", cwd=repo) == head

    await checked(tmp_path, "clone", "-q", server.url("large.git"), str(tmp_path / "clone"))
    assert (tmp_path / "clone" / "blob.bin").read_bytes() == payload
    assert await checked(tmp_path, "rev-parse", "HEAD", cwd=tmp_path / "clone") == head


async def test_ls_remote_speaks_protocol_v2(server: Served, tmp_path: Path) -> None:
    await bare(server, "listed.git")
    head = await commit(tmp_path, tmp_path / "work", {"a.txt": b"a"})
    await checked(tmp_path, "push", server.url("listed.git"), "main", cwd=tmp_path / "work")
    code, out, packets = await git_client(
        tmp_path,
        *("-c", "protocol.version=2", "ls-remote", server.url("listed.git")),
        extra_env={"GIT_TRACE_PACKET": "1"},
    )
    assert code == 0, packets
    assert f"{head}\trefs/heads/main" in out
    assert "git< version 2" in packets, "the Git-Protocol header reached git"


async def test_hooks_in_the_repository_never_run(server: Served, tmp_path: Path) -> None:
    repo = await bare(server, "hooked.git")
    marker = tmp_path / "hook-ran"
    hook = repo / "hooks" / "pre-receive"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    hook.chmod(0o755)
    head = await commit(tmp_path, tmp_path / "work", {"a.txt": b"a"})
    await checked(tmp_path, "push", server.url("hooked.git"), "main", cwd=tmp_path / "work")
    assert not marker.exists()
    assert await git.list_refs(repo) == {"refs/heads/main": head}


@pytest.mark.parametrize(
    ("payload_bytes", "limit_bytes"),
    [(64 * 1024, 16 * 1024), (3 * 1024 * 1024, 256 * 1024)],
    ids=["declared-length", "chunked"],
)
async def test_a_body_over_the_limit_is_refused_and_nothing_is_written(
    limit: Served, tmp_path: Path, payload_bytes: int, limit_bytes: int
) -> None:
    name = f"limited-{payload_bytes}.git"
    repo = await bare(limit, name)
    await commit(tmp_path, tmp_path / "work", {"small.txt": b"small"})
    await checked(tmp_path, "push", limit.url(name), "main", cwd=tmp_path / "work")
    refs, objects = await git.list_refs(repo), object_files(repo)

    limit.max_body_bytes = limit_bytes
    limit.statuses.clear()
    await commit(tmp_path, tmp_path / "work", {"big.bin": os.urandom(payload_bytes)})
    code, _, _ = await git_client(tmp_path, "push", limit.url(name), "main", cwd=tmp_path / "work")
    assert code != 0
    assert 413 in limit.statuses
    assert await git.list_refs(repo) == refs
    assert object_files(repo) == objects
    assert not any((repo / "objects").glob("*incoming-*")), "no quarantine left behind"


async def empty_body() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that yields nothing


async def serve_directly(
    repo: Path, method: str, path_info: str, query: str = "", **more: Any
) -> git_http.GitHttpResponse:
    """``serve`` without a server around it, for what is refused before git runs."""
    arguments: dict[str, Any] = {
        "content_type": None,
        "content_encoding": None,
        "body": empty_body(),
        "remote_user": "u",
        "max_body_bytes": 1024,
        "time_limit": 10,
        **more,
    }
    return await git_http.serve(
        repo=repo, method=method, path_info=path_info, query_string=query, **arguments
    )


@pytest.mark.parametrize(
    ("method", "path_info", "query", "code"),
    [
        ("GET", "/objects/info/packs", "", "not_found"),
        ("GET", "/HEAD", "", "not_found"),
        ("GET", "/../other.git/info/refs", "service=git-upload-pack", "not_found"),
        ("POST", "/info/refs", "service=git-upload-pack", "method_not_allowed"),
        ("GET", "/git-receive-pack", "", "method_not_allowed"),
        ("GET", "/info/refs", "", "invalid_input"),
        ("GET", "/info/refs", "service=git-archive", "invalid_input"),
    ],
)
async def test_only_the_smart_protocol_is_served(
    tmp_path: Path, method: str, path_info: str, query: str, code: str
) -> None:
    await git.init_bare(tmp_path / "r.git")
    with pytest.raises(ForgeyardError) as caught:
        await serve_directly(tmp_path / "r.git", method, path_info, query)
    assert caught.value.code == code


async def test_a_missing_repository_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ForgeyardError, match="no such repository"):
        await serve_directly(
            tmp_path / "absent.git", "GET", "/info/refs", "service=git-upload-pack"
        )


async def test_a_request_that_stalls_is_stopped_at_the_time_limit(tmp_path: Path) -> None:
    await git.init_bare(tmp_path / "r.git")

    async def stalling_body() -> AsyncIterator[bytes]:
        yield b"0000"
        await asyncio.sleep(30)

    started = time.monotonic()
    with pytest.raises(ForgeyardError, match="was stopped") as caught:
        await serve_directly(
            tmp_path / "r.git",
            "POST",
            "/git-receive-pack",
            content_type="application/x-git-receive-pack-request",
            body=stalling_body(),
            time_limit=0.5,
        )
    assert caught.value.status_code == 503
    assert time.monotonic() - started < 5


async def test_info_refs_answers_with_cgi_status_and_headers(tmp_path: Path) -> None:
    await git.init_bare(tmp_path / "r.git")
    assert not (tmp_path / "r.git" / "hooks").exists(), "not even sample hooks"
    answer = await serve_directly(
        tmp_path / "r.git", "GET", "/info/refs", "service=git-receive-pack"
    )
    body = b"".join([chunk async for chunk in answer.body])
    assert answer.status == 200
    assert ("Content-Type", "application/x-git-receive-pack-advertisement") in answer.headers
    assert body.startswith(b"001f# service=git-receive-pack\n")


async def test_a_declared_length_over_the_limit_is_refused_before_git_runs(
    tmp_path: Path,
) -> None:
    await git.init_bare(tmp_path / "r.git")
    with pytest.raises(ForgeyardError) as caught:
        await serve_directly(
            tmp_path / "r.git",
            "POST",
            "/git-upload-pack",
            content_type="application/x-git-upload-pack-request",
            content_length=4096,
        )
    assert caught.value.status_code == 413
