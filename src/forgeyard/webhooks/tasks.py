"""The webhook jobs: fanning each domain event out to endpoints, and delivering one message.

``webhooks.deliver`` reads the delivery in one short transaction, sends the request with no
transaction open (a slow receiver must not hold a database connection, or SQLite's write
lock), then records the attempt in a second transaction. Every "now" is the engine's clock.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from forgeyard.jobs import JobContext, PermanentError, RetryLater, subscriber, task
from forgeyard.kernel.crypto import DecryptionError
from forgeyard.kernel.errors import InvalidInputError
from forgeyard.kernel.http import OutboundPolicy, outbound_client, read_limited
from forgeyard.kernel.keys import instance_secret_box
from forgeyard.kernel.logging import get_logger
from forgeyard.models.webhook import DeliveryStatus, DeliveryTrigger
from forgeyard.settings import OutboundSettings, get_settings
from forgeyard.webhooks import delivery
from forgeyard.webhooks.delivery import AttemptResult, Verdict
from forgeyard.webhooks.signing import encode_body, signed_headers

log = get_logger(__name__)
# Enough of a receiver's answer to see what went wrong; the rest is never read.
EXCERPT_BYTES = 1024
USER_AGENT = "Forgeyard-Webhooks/1"


@subscriber("webhooks", events=["*"])
async def fan_out(ctx: JobContext, message: dict[str, Any]) -> None:
    async with ctx.transaction() as session:
        created = await delivery.fan_out(session=session, message=message, now=ctx.clock.now())
    if created:
        log.info("webhook_fan_out", event_id=message["id"], deliveries=len(created))


@task(delivery.DELIVER_KIND, max_attempts=delivery.MAX_ATTEMPTS, retry=delivery.RETRY)
async def deliver(ctx: JobContext) -> None:
    delivery_id = ctx.payload["delivery_id"]
    async with ctx.transaction() as session:
        loaded = await delivery.load(session, delivery_id)
    if loaded is None:
        return  # the endpoint was deleted, and its deliveries with it
    record, endpoint = loaded
    if record.status != DeliveryStatus.PENDING:
        return
    if not endpoint.active and record.trigger == DeliveryTrigger.EVENT:
        async with ctx.transaction() as session:
            await delivery.abandon(session, delivery_id, "the endpoint is disabled")
        return

    settings = get_settings()
    now = ctx.clock.now()
    try:
        secret = instance_secret_box(settings).decrypt(endpoint.secret_encrypted)
    except DecryptionError as exc:
        result = AttemptResult(error=f"the signing secret cannot be read: {exc}", refused=True)
    else:
        body = encode_body(record.payload)
        headers = signed_headers(secret, record.message_id, now, body)
        result = await send(endpoint.url, body, headers, settings.outbound)

    last = ctx.attempt >= ctx.job.max_attempts
    retry_in = delivery.RETRY.delay(ctx.attempt)
    async with ctx.transaction() as session:
        verdict = await delivery.record_attempt(
            session=session,
            delivery=record,
            result=result,
            now=now,
            last_attempt=last,
            retry_in=retry_in,
        )
    if verdict in (Verdict.RETRY, Verdict.EXHAUSTED):
        raise RetryLater(result.describe(), delay_seconds=retry_in)
    if verdict is Verdict.FAILED:
        raise PermanentError(result.describe())


async def send(
    url: str, body: str, headers: dict[str, str], settings: OutboundSettings
) -> AttemptResult:
    """POST once through the SSRF-guarded client; redirects are answers, never followed."""
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        async with (
            outbound_client(
                OutboundPolicy.from_settings(settings),
                timeout=settings.timeout_seconds,
                headers={"user-agent": USER_AGENT},
            ) as client,
            client.stream("POST", url, content=body.encode(), headers=headers) as response,
        ):
            excerpt = await read_limited(response, min(EXCERPT_BYTES, settings.max_response_bytes))
    except InvalidInputError as exc:  # BlockedDestinationError included: nothing was sent
        return AttemptResult(error=f"{exc.code}: {exc.message}", refused=True)
    except httpx.HTTPError as exc:
        detail = str(exc) or type(exc).__name__
        return AttemptResult(error=f"{type(exc).__name__}: {detail}", duration_ms=elapsed())
    return AttemptResult(
        response_code=response.status_code,
        excerpt=excerpt.decode("utf-8", errors="replace"),
        duration_ms=elapsed(),
    )
