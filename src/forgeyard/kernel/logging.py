"""structlog for everything: JSON lines for machines, readable lines for a terminal.

Forgeyard's own log lines go through structlog's native pipeline (no standard-library
handler on the way, JSON serialised by orjson): the access log is written for every request,
so it has to be cheap. Third-party loggers (uvicorn, alembic) are routed through the same
renderer by a ``ProcessorFormatter``, so a log shipper sees one format.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any, Literal, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["auto", "json", "console"]

# The id of the request being handled; the middleware sets it, every line carries it.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def _add_request_id(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    request_id = request_id_var.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


def _add_stdlib_logger_name(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    record = event.get("_record")
    if record is not None:
        event["logger_name"] = record.name
    return event


def _json_line(_logger: WrappedLogger, _method: str, event: EventDict) -> str:
    return orjson.dumps(event, default=str).decode()


def _renderer(log_format: LogFormat, stream: TextIO) -> Processor:
    use_console = log_format == "console" or (log_format == "auto" and stream.isatty())
    return structlog.dev.ConsoleRenderer() if use_console else _json_line


def configure_logging(
    log_format: LogFormat = "auto", level: str = "info", stream: TextIO | None = None
) -> None:
    stream = stream or sys.stderr
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Processor] = [
        _add_request_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = _renderer(log_format, stream)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _add_stdlib_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # Our middleware writes one line per request; uvicorn's access log would be a second.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


def get_logger(name: str) -> Any:
    """A structlog logger whose lines name ``name`` as their logger."""
    return structlog.get_logger(logger_name=name)
