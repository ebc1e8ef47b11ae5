"""Prometheus metrics shared by every part of the process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "forgeyard_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "forgeyard_http_request_duration_seconds",
    "Time from request received to response sent, by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
JOBS_FINISHED = Counter(
    "forgeyard_jobs_finished_total",
    "Job attempts ended, by kind and outcome (succeeded, retried, failed, dead, cancelled, lost).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
JOB_RUN_SECONDS = Histogram(
    "forgeyard_job_run_seconds",
    "Time a handler ran, by kind.",
    ["kind"],
    buckets=(0.001, 0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
    registry=REGISTRY,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def render() -> bytes:
    return generate_latest(REGISTRY)
