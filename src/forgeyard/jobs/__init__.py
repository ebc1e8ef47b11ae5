"""The job engine: a durable queue, domain events, wake-ups, a scheduler and the worker loop.

Domains use :func:`enqueue`, :func:`emit`, :func:`task` and :func:`subscriber`; the entry
points run :class:`~forgeyard.jobs.pool.WorkerPool`.
"""

from forgeyard.jobs.context import Cancelled, JobContext, PermanentError, RetryLater
from forgeyard.jobs.events import emit
from forgeyard.jobs.queue import Enqueued, enqueue, request_cancel
from forgeyard.jobs.registry import RetryPolicy, subscriber, task

__all__ = [
    "Cancelled",
    "Enqueued",
    "JobContext",
    "PermanentError",
    "RetryLater",
    "RetryPolicy",
    "emit",
    "enqueue",
    "request_cancel",
    "subscriber",
    "task",
]
