"""Scratch databases for the suite: a SQLite file, or a fresh PostgreSQL database."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get("FORGEYARD_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("FORGEYARD_TEST_REDIS_URL")
BACKENDS = ["sqlite", "postgresql"]
PG_SKIP_REASON = "PostgreSQL runs skipped: FORGEYARD_TEST_DATABASE_URL is not set"


def _libpq_url(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@contextmanager
def scratch_database(backend: str, folder: Path) -> Iterator[str]:
    """A new, empty database of ``backend`` that is dropped afterwards; yields its URL."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'fy_{secrets.token_hex(4)}.db'}"
        return
    assert PG_ADMIN_URL, PG_SKIP_REASON
    name = f"fy_test_{secrets.token_hex(6)}"
    with psycopg.connect(_libpq_url(PG_ADMIN_URL), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _libpq_url(PG_ADMIN_URL, name)
    finally:
        with psycopg.connect(_libpq_url(PG_ADMIN_URL), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
