"""Artifacts in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Garage, ...).

boto3 is blocking, so every call runs in a worker thread (``asyncio.to_thread``); one client
is shared, as boto3 clients are thread-safe. With an ``endpoint_url`` the client uses
path-style addressing (``http://host/bucket/key``), which every S3-compatible server accepts,
and it only sends checksums the operation requires, since several such servers refuse the
CRC headers botocore adds by default since 1.36.

Errors become :class:`StorageError` with a message built here, never boto's text alone, and
with the access and secret keys scrubbed from whatever server text is quoted.

The endpoint URL is an admin setting, hence user-given: :func:`check_endpoint` refuses one
that resolves to a private address unless the outbound policy allows it. It is a save-time
check only: boto3 opens its own connections and resolves the name again, so it is *not*
wired into them and does not close the DNS-rebinding gap that
:func:`forgeyard.kernel.http.outbound_client` closes for httpx.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import boto3
import botocore.exceptions
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from forgeyard.ci.artifacts.storage import (
    CHUNK_SIZE,
    MAX_KEY_BYTES,
    ArtifactNotFound,
    ArtifactStore,
    ArtifactStream,
    InvalidKey,
    StorageError,
    StoredObject,
    hash_file,
    source_error,
    validate_key,
)
from forgeyard.kernel.http import OutboundPolicy, Resolver, resolve_and_check

T = TypeVar("T")
MiB = 1024 * 1024
# Codes (or HTTP statuses) after which the same request may well succeed later.
_RETRYABLE_CODES = frozenset(
    {"SlowDown", "RequestTimeout", "Throttling", "ThrottlingException", "RequestLimitExceeded"}
    | {"InternalError", "ServiceUnavailable", "OperationAborted", "TooManyRequests"}
)
_CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
    | {"AccessDenied", "AllAccessDisabled", "InvalidSecurity", "403"}
)
_MISSING_BUCKET_CODES = frozenset({"NoSuchBucket"})
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


async def check_endpoint(
    url: str, policy: OutboundPolicy, *, resolve: Resolver | None = None
) -> list[str]:
    """Refuse an S3 endpoint URL whose host is, or resolves to, an address ``policy`` does not
    allow (loopback, private, link-local, metadata service...); return its addresses.

    Call it when an admin saves the setting. It does not guard boto3's own connections (boto3
    resolves the name again when it connects), so a name that later resolves elsewhere is not
    caught; operators who need that pin the endpoint to an IP address.
    """
    addresses: list[str] = await resolve_and_check(
        url, policy, field="endpoint_url", resolve=resolve
    )
    return addresses


class S3Store(ArtifactStore):
    """Artifacts as objects ``<prefix>/<key>`` in one bucket; sha256 and size as metadata."""

    def __init__(
        self,
        *,
        endpoint_url: str | None,
        bucket: str,
        region: str,
        access_key: str,
        secret_key: str,
        prefix: str = "",
        multipart_threshold: int = 8 * MiB,
        multipart_chunksize: int = 8 * MiB,
        max_attempts: int = 3,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
    ) -> None:
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        self.endpoint_url = endpoint_url or None
        self.bucket = bucket
        self.region = region
        self.prefix = prefix
        self._access_key = access_key
        self._secret_key = secret_key
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=4,
        )
        self._config = Config(
            region_name=region,
            signature_version="s3v4",
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client_lock = threading.Lock()
        self._client_instance: Any = None

    def __repr__(self) -> str:  # no credentials
        return f"S3Store(endpoint_url={self.endpoint_url!r}, bucket={self.bucket!r})"

    # -- plumbing --------------------------------------------------------------------------

    def _client(self) -> Any:
        """The shared client, made on first use (in a worker thread: it reads model files)."""
        with self._client_lock:
            if self._client_instance is None:
                session = boto3.session.Session(
                    aws_access_key_id=self._access_key,
                    aws_secret_access_key=self._secret_key,
                    region_name=self.region,
                )
                self._client_instance = session.client(
                    "s3", endpoint_url=self.endpoint_url, config=self._config
                )
            return self._client_instance

    def _object_key(self, key: str) -> str:
        key = validate_key(key)
        full = f"{self.prefix}/{key}" if self.prefix else key
        if len(full.encode()) > MAX_KEY_BYTES:
            raise InvalidKey(f"the artifact key with the prefix exceeds {MAX_KEY_BYTES} bytes")
        return full

    def _scrub(self, text: str) -> str:
        for secret in (self._secret_key, self._access_key):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _error(self, exc: BaseException, action: str, key: str | None = None) -> StorageError:
        """One :class:`StorageError` for whatever boto raised, with no credential in it."""
        details: dict[str, Any] = {"bucket": self.bucket, **({"key": key} if key else {})}
        if isinstance(exc, S3UploadFailedError):  # boto3 wraps the ClientError in text
            inner = exc.__cause__ or exc.__context__
            if inner is not None and inner is not exc:
                return self._error(inner, action, key)
        if isinstance(exc, botocore.exceptions.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "unknown"))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            details["code"] = code
            if code in _MISSING_BUCKET_CODES or (action == "check" and status == 404):
                return StorageError(
                    f"the bucket {self.bucket!r} does not exist", retryable=False, details=details
                )
            if code in _CREDENTIAL_CODES or status == 403:
                return StorageError(
                    f"S3 refused to {action}: the access key is unknown, the secret key is "
                    f"wrong, or the key lacks permission on the bucket ({code})",
                    retryable=False,
                    details=details,
                )
            server_text = self._scrub(str(error.get("Message", "")))[:300]
            return StorageError(
                f"S3 could not {action} ({code}{': ' + server_text if server_text else ''})",
                retryable=code in _RETRYABLE_CODES or status >= 500 or status == 429,
                details=details,
            )
        if isinstance(
            exc,
            botocore.exceptions.EndpointConnectionError
            | botocore.exceptions.ConnectionError
            | botocore.exceptions.HTTPClientError,
        ):
            where = self.endpoint_url or "AWS S3"
            return StorageError(
                f"cannot reach {where} to {action} (network error or timeout)",
                retryable=True,
                details=details,
            )
        if isinstance(
            exc,
            botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError,
        ):
            return StorageError("no S3 credentials are configured", details=details)
        return StorageError(
            f"S3 could not {action} ({type(exc).__name__}: {self._scrub(str(exc))[:300]})",
            retryable=isinstance(exc, botocore.exceptions.BotoCoreError),
            details=details,
        )

    async def _call(self, action: str, key: str | None, work: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(work)
        except (StorageError, ArtifactNotFound, InvalidKey, asyncio.CancelledError):
            raise
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._error(exc, action, key) from None
        except S3UploadFailedError as exc:
            raise self._error(exc, action, key) from None

    # -- the operations --------------------------------------------------------------------

    async def put(self, key: str, source: Path) -> StoredObject:
        object_key = self._object_key(key)

        def upload() -> StoredObject:
            try:
                size, sha256 = hash_file(source)
            except OSError as exc:
                raise source_error(source, exc) from None
            self._client().upload_file(
                str(source),
                self.bucket,
                object_key,
                ExtraArgs={
                    "Metadata": {"sha256": sha256, "size": str(size)},
                    "ContentType": "application/octet-stream",
                },
                Config=self._transfer,
            )
            return StoredObject(key=key, size=size, sha256=sha256)

        return await self._call("store the artifact", key, upload)

    async def open(self, key: str) -> ArtifactStream:
        object_key = self._object_key(key)

        def get() -> ArtifactStream:
            try:
                answer = self._client().get_object(Bucket=self.bucket, Key=object_key)
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _MISSING_KEY_CODES:
                    raise ArtifactNotFound(key) from None
                raise
            body = answer["Body"]

            def read() -> bytes:
                try:
                    chunk: bytes = body.read(CHUNK_SIZE)
                except Exception as exc:  # urllib3 and botocore both raise mid-stream
                    raise self._error(exc, "read the artifact", key) from None
                return chunk

            return ArtifactStream(read, body.close, answer.get("ContentLength"))

        return await self._call("read the artifact", key, get)

    async def delete(self, key: str) -> None:
        object_key = self._object_key(key)  # S3 answers 204 for a missing key too
        await self._call(
            "delete the artifact",
            key,
            lambda: self._client().delete_object(Bucket=self.bucket, Key=object_key),
        )

    async def exists(self, key: str) -> bool:
        object_key = self._object_key(key)

        def head() -> bool:
            try:
                self._client().head_object(Bucket=self.bucket, Key=object_key)
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _MISSING_KEY_CODES:
                    return False
                raise
            return True

        return await self._call("look up the artifact", key, head)

    async def check(self) -> None:
        """Reachable, the bucket exists, and a small object can be written and deleted
        (needs s3:ListBucket for the bucket, s3:PutObject and s3:DeleteObject on the prefix)."""
        probe = f".forgeyard-probe-{secrets.token_hex(8)}"
        probe_key = f"{self.prefix}/{probe}" if self.prefix else probe

        def probe_bucket() -> None:
            client = self._client()
            client.head_bucket(Bucket=self.bucket)
            client.put_object(Bucket=self.bucket, Key=probe_key, Body=b"forgeyard")
            client.delete_object(Bucket=self.bucket, Key=probe_key)

        await self._call("check", None, probe_bucket)
