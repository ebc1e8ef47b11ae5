"""Artifact storage: the same behaviour from the local store and from S3 (a real
``moto_server`` on loopback, started once per session), then what only one of them does:
the local store never leaving its root, S3's reachability check, the configuration factory.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from forgeyard.ci.artifacts import (
    ArtifactNotFound,
    ArtifactStore,
    InvalidKey,
    LocalStore,
    S3Store,
    StorageError,
    check_endpoint,
    from_config,
)
from forgeyard.kernel.errors import InvalidInputError
from forgeyard.kernel.http import BlockedDestinationError, OutboundPolicy
from tests.processes import free_port, running

MiB = 1024 * 1024
BUCKET = "forgeyard-artifacts"
SECRET = "s3cr3t-Secret-Key-that-must-never-leak"


def _moto_server() -> str | None:
    beside_python = Path(sys.executable).with_name("moto_server")
    return str(beside_python) if beside_python.exists() else shutil.which("moto_server")


MOTO_SERVER = _moto_server()
needs_moto = pytest.mark.skipif(
    MOTO_SERVER is None, reason="moto_server is not installed (moto[server], dev extra)"
)


def _start_moto(log_dir: Path) -> Iterator[str]:
    assert MOTO_SERVER is not None
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)]
    with running(command, log_dir / "moto_server.log", f"{url}/moto-api/", timeout=60):
        yield url


def _admin_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server with the bucket made (moto checks no credentials by default)."""
    if MOTO_SERVER is None:
        pytest.skip("moto_server is not installed")
    for url in _start_moto(tmp_path_factory.mktemp("moto")):
        _admin_client(url).create_bucket(Bucket=BUCKET)
        yield url


@pytest.fixture(scope="module")
def moto_with_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second moto server that checks credentials (it knows no access key at all)."""
    if MOTO_SERVER is None:
        pytest.skip("moto_server is not installed")
    for url in _start_moto(tmp_path_factory.mktemp("moto-auth")):
        _admin_client(url).create_bucket(Bucket=BUCKET)
        httpx.post(f"{url}/moto-api/reset-auth", content=b"0", trust_env=False).raise_for_status()
        yield url


def s3_store(endpoint: str, **overrides: Any) -> S3Store:
    options: dict[str, Any] = {
        "endpoint_url": endpoint,
        "bucket": BUCKET,
        "region": "us-east-1",
        "access_key": "test",
        "secret_key": "test",
        "prefix": f"t-{secrets.token_hex(4)}",  # each test its own corner of the bucket
        "max_attempts": 1,
    }
    return S3Store(**(options | overrides))


@pytest.fixture(params=["local", pytest.param("s3", marks=needs_moto)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return LocalStore(tmp_path / "artifacts")
    endpoint = request.getfixturevalue("moto_endpoint")
    return s3_store(endpoint, multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


async def read_all(store: ArtifactStore, key: str) -> bytes:
    async with await store.open(key) as stream:
        return b"".join([chunk async for chunk in stream])


# --- the same behaviour from every store ---------------------------------------------------


async def test_put_then_open_returns_the_same_bytes(store: ArtifactStore, tmp_path: Path) -> None:
    data = b"hello artifact\n" * 10
    stored = await store.put("org/1/builds/7/report.txt", write(tmp_path / "src", data))

    assert stored.key == "org/1/builds/7/report.txt"
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert await store.exists("org/1/builds/7/report.txt")
    assert await read_all(store, "org/1/builds/7/report.txt") == data


async def test_a_multi_mib_file_keeps_its_size_and_sha256(
    store: ArtifactStore, tmp_path: Path
) -> None:
    data = os.urandom(12 * MiB + 123)  # three 5 MiB parts for S3: a real multipart upload
    stored = await store.put("org/1/builds/7/big.bin", write(tmp_path / "big", data))

    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    stream = await store.open("org/1/builds/7/big.bin")
    assert stream.size == len(data)
    chunks = [chunk async for chunk in stream]
    assert len(chunks) > 1  # streamed, not read whole
    assert b"".join(chunks) == data
    if isinstance(store, S3Store):  # the sha256 travels with the object
        head = _admin_client(store.endpoint_url or "").head_object(
            Bucket=BUCKET, Key=f"{store.prefix}/org/1/builds/7/big.bin"
        )
        assert head["Metadata"] == {"sha256": stored.sha256, "size": str(len(data))}


async def test_put_replaces_an_existing_artifact(store: ArtifactStore, tmp_path: Path) -> None:
    await store.put("a/b.txt", write(tmp_path / "one", b"first"))
    await store.put("a/b.txt", write(tmp_path / "two", b"second"))
    assert await read_all(store, "a/b.txt") == b"second"


async def test_delete_then_exists_is_false(store: ArtifactStore, tmp_path: Path) -> None:
    await store.put("org/1/builds/2/log.txt", write(tmp_path / "src", b"x"))
    await store.delete("org/1/builds/2/log.txt")

    assert not await store.exists("org/1/builds/2/log.txt")
    await store.delete("org/1/builds/2/log.txt")  # missing: no error
    await store.delete("never/was/here")


async def test_a_missing_key_is_a_clear_error(store: ArtifactStore) -> None:
    assert not await store.exists("org/1/builds/9/nothing.zip")
    with pytest.raises(ArtifactNotFound, match=r"org/1/builds/9/nothing\.zip") as caught:
        await store.open("org/1/builds/9/nothing.zip")
    assert caught.value.status_code == 404


async def test_stopping_early_releases_the_stream(store: ArtifactStore, tmp_path: Path) -> None:
    await store.put("k/big", write(tmp_path / "src", b"z" * (3 * MiB)))
    stream = await store.open("k/big")
    assert await stream.__anext__()
    await stream.aclose()
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


BAD_KEYS = [
    "",
    "/etc/passwd",
    "../outside",
    "org/../../outside",
    "org/./x",
    "org//x",
    "org/x/",
    "org\\x",
    "a/\x00b",
    "a/.partial-1234",
    "x" * 1025,
    "a/" + "y" * 256,
]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_bad_keys_are_refused_before_any_io(key: str, tmp_path: Path) -> None:
    missing_root = tmp_path / "never-created"
    # Nothing listens on the S3 endpoint: any I/O would fail as a StorageError instead.
    dead = s3_store(f"http://127.0.0.1:{free_port()}", prefix="")
    source = write(tmp_path / "src", b"data")
    for store in (LocalStore(missing_root), dead):
        with pytest.raises(InvalidKey) as caught:
            await store.put(key, source)
        assert caught.value.status_code == 400
        for call in (store.open, store.delete, store.exists):
            with pytest.raises(InvalidKey):
                await call(key)
    assert not missing_root.exists()


async def test_a_key_that_is_not_a_string_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidKey):
        await LocalStore(tmp_path).exists(None)  # type: ignore[arg-type]


# --- the local store ---------------------------------------------------------------------


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


async def test_local_store_never_leaves_its_root_through_a_symlinked_directory(
    tmp_path: Path,
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not an artifact")
    store = LocalStore(root)
    await store.put("org/1/ok.txt", write(tmp_path / "src", b"fine"))
    (root / "org" / "2").symlink_to(outside, target_is_directory=True)
    (root / "org" / "1" / "link.txt").symlink_to(outside / "secret.txt")

    with pytest.raises(StorageError, match="symbolic link"):
        await store.put("org/2/builds/evil.txt", tmp_path / "src")
    with pytest.raises(StorageError, match="symbolic link"):
        await store.put("org/2/secret.txt", tmp_path / "src")
    with pytest.raises(StorageError, match="symbolic link"):
        await store.open("org/2/secret.txt")
    with pytest.raises(StorageError, match="symbolic link"):
        await store.open("org/1/link.txt")  # a link as the artifact itself
    with pytest.raises(StorageError, match="symbolic link"):
        await store.delete("org/2/secret.txt")
    assert not await store.exists("org/1/link.txt")

    await store.put("org/1/link.txt", tmp_path / "src")  # replaces the link, not its target
    assert await read_all(store, "org/1/link.txt") == b"fine"
    await store.delete("org/1/link.txt")
    assert tree(outside) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "not an artifact"


async def test_local_store_refuses_dot_dot_and_writes_nothing_outside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    store = LocalStore(root)
    source = write(tmp_path / "src", b"x")
    before = tree(tmp_path)
    for key in ("../escaped.txt", "org/../../escaped.txt", "/escaped.txt"):
        with pytest.raises(InvalidKey):
            await store.put(key, source)
    assert tree(tmp_path) == before


async def test_local_store_shows_no_half_written_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    store = LocalStore(root)
    await store.put("a/report.txt", write(tmp_path / "old", b"old version"))

    def disk_fails(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_fails)  # the write fails after the bytes
    with pytest.raises(StorageError, match="No space left") as caught:
        await store.put("a/report.txt", write(tmp_path / "new", b"new version" * 1000))
    assert caught.value.retryable
    with pytest.raises(StorageError):
        await store.put("a/fresh.txt", tmp_path / "new")
    monkeypatch.undo()

    assert await read_all(store, "a/report.txt") == b"old version"
    assert not await store.exists("a/fresh.txt")
    assert tree(root) == ["a", "a/report.txt"]  # no temporary file left behind


async def test_local_store_file_and_directory_in_each_others_way(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    source = write(tmp_path / "src", b"x")
    await store.put("a/file", source)
    await store.put("a/dir/inner", source)

    with pytest.raises(StorageError):
        await store.put("a/file/below", source)  # a file where a directory should be
    with pytest.raises(StorageError):
        await store.put("a/dir", source)  # a directory where the file should go
    assert not await store.exists("a/file/below")
    assert not await store.exists("a/dir")
    with pytest.raises(ArtifactNotFound):
        await store.open("a/file/below")
    with pytest.raises(ArtifactNotFound):
        await store.open("a/dir")
    assert tree(tmp_path / "root") == ["a", "a/dir", "a/dir/inner", "a/file"]


async def test_local_store_put_of_a_missing_source_is_a_storage_error(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    with pytest.raises(StorageError, match="cannot read the file"):
        await store.put("a/b", tmp_path / "nope")
    assert not (tmp_path / "root").exists()


async def test_local_store_check_creates_its_root(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "deep" / "root")
    await store.check()
    assert tree(tmp_path / "deep" / "root") == []


async def test_local_store_check_refuses_a_root_it_cannot_create(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError, match="not writable"):
        await LocalStore(tmp_path / "file" / "root").check()


# --- S3 ----------------------------------------------------------------------------------


def assert_no_secret(error: StorageError) -> None:
    for text in (str(error), error.message, repr(error.details), repr(error.args)):
        assert SECRET not in text


@needs_moto
async def test_s3_check_passes_on_a_reachable_writable_bucket(moto_endpoint: str) -> None:
    store = s3_store(moto_endpoint)
    await store.check()
    listed = _admin_client(moto_endpoint).list_objects_v2(Bucket=BUCKET, Prefix=store.prefix)
    assert listed.get("KeyCount", 0) == 0  # the probe object is gone


@needs_moto
async def test_s3_wrong_credentials_fail_check_without_leaking_the_secret(
    moto_with_auth: str,
) -> None:
    store = s3_store(moto_with_auth, access_key="AKIAWRONGWRONGWRONG", secret_key=SECRET)
    with pytest.raises(StorageError, match="refused") as caught:
        await store.check()
    assert not caught.value.retryable
    assert_no_secret(caught.value)
    assert SECRET not in repr(store)


@needs_moto
async def test_s3_missing_bucket_fails_check_and_put(moto_endpoint: str, tmp_path: Path) -> None:
    store = s3_store(moto_endpoint, bucket="no-such-bucket", secret_key=SECRET)
    with pytest.raises(StorageError, match="'no-such-bucket' does not exist") as caught:
        await store.check()
    assert not caught.value.retryable
    assert_no_secret(caught.value)
    with pytest.raises(StorageError, match="does not exist") as caught:
        await store.put("a/b", write(tmp_path / "src", b"x"))
    assert_no_secret(caught.value)


async def test_s3_unreachable_endpoint_is_retryable() -> None:
    store = s3_store(f"http://127.0.0.1:{free_port()}", secret_key=SECRET, connect_timeout=2)
    with pytest.raises(StorageError, match="cannot reach") as caught:
        await store.check()
    assert caught.value.retryable
    assert_no_secret(caught.value)


async def test_check_endpoint_refuses_private_addresses_unless_allowed() -> None:
    with pytest.raises(BlockedDestinationError, match="loopback") as caught:
        await check_endpoint("http://127.0.0.1:9000", OutboundPolicy())
    assert caught.value.details["host"] == "127.0.0.1"
    with pytest.raises(BlockedDestinationError):
        await check_endpoint("http://10.1.2.3:9000", OutboundPolicy())
    allowed = OutboundPolicy(["127.0.0.1/32"])
    assert await check_endpoint("http://127.0.0.1:9000", allowed) == ["127.0.0.1"]
    with pytest.raises(InvalidInputError, match="endpoint_url"):
        await check_endpoint("ftp://example.com", allowed)


# --- the configuration factory -----------------------------------------------------------

S3_CONFIG: dict[str, Any] = {
    "kind": "s3",
    "endpoint_url": "http://127.0.0.1:9000",
    "bucket": "artifacts",
    "region": "eu-west-3",
    "access_key": "AKIAEXAMPLE",
    "secret_key": SECRET,
    "prefix": "ci/",
}


def test_from_config_builds_each_kind(tmp_path: Path) -> None:
    local = from_config({"kind": "local", "path": str(tmp_path / "a")})
    assert isinstance(local, LocalStore)
    assert local.root == tmp_path / "a"
    default = from_config({"kind": "local"}, default_local_root=tmp_path / "d")
    assert isinstance(default, LocalStore)
    assert default.root == tmp_path / "d"
    s3 = from_config(S3_CONFIG)
    assert isinstance(s3, S3Store)
    assert (s3.bucket, s3.region, s3.prefix) == ("artifacts", "eu-west-3", "ci")
    aws = from_config(S3_CONFIG | {"endpoint_url": None, "region": None})
    assert isinstance(aws, S3Store)
    assert aws.endpoint_url is None
    assert aws.region == "us-east-1"


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({}, "kind"),
        ({"kind": "ftp"}, "kind"),
        ({"kind": "local"}, "path"),
        ({"kind": "local", "path": "relative/dir"}, "path"),
        ({"kind": "local", "path": 7}, "path"),
        ({"kind": "local", "path": "/x", "bucket": "b"}, "bucket"),
        (S3_CONFIG | {"bucket": ""}, "bucket"),
        (S3_CONFIG | {"bucket": "Has_Upper"}, "bucket"),
        (S3_CONFIG | {"bucket": "ab"}, "bucket"),
        (S3_CONFIG | {"region": "EU West"}, "region"),
        (S3_CONFIG | {"access_key": None}, "access_key"),
        (S3_CONFIG | {"secret_key": ""}, "secret_key"),
        (S3_CONFIG | {"secret_key": 12345}, "secret_key"),
        (S3_CONFIG | {"endpoint_url": "minio:9000"}, "endpoint_url"),
        (S3_CONFIG | {"endpoint_url": "file:///etc"}, "endpoint_url"),
        (S3_CONFIG | {"endpoint_url": "http://user:pw@minio:9000"}, "endpoint_url"),
        (S3_CONFIG | {"endpoint_url": "http://minio:9000/bucket"}, "endpoint_url"),
        (S3_CONFIG | {"endpoint_url": "http://minio:notaport"}, "endpoint_url"),
        (S3_CONFIG | {"prefix": "ci/../up"}, "prefix"),
        (S3_CONFIG | {"session_token": "x"}, "session_token"),
    ],
)
def test_from_config_errors_name_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        from_config(config)
    assert caught.value.details["field"] == field
    assert caught.value.message.startswith(f"{field}:")
    assert SECRET not in caught.value.message


async def test_from_config_with_moto(moto_endpoint: str, tmp_path: Path) -> None:
    """What ``PUT /settings/artifact-storage`` will do: build, check, use."""
    store = from_config(
        {
            "kind": "s3",
            "endpoint_url": moto_endpoint,
            "bucket": BUCKET,
            "access_key": "test",
            "secret_key": "test",
            "prefix": f"cfg-{secrets.token_hex(4)}",
        }
    )
    await store.check()
    stored = await store.put("org/1/x.txt", write(tmp_path / "src", b"via config"))
    assert await read_all(store, stored.key) == b"via config"
