"""The PostgreSQL server a benchmark may use, and scratch databases on it.

The server is named by ``FORGEYARD_BENCH_DATABASE_URL``, else ``FORGEYARD_TEST_DATABASE_URL``;
without one that answers, the PostgreSQL rows are skipped with a line saying why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import URL, make_url

URL_VARIABLES = ("FORGEYARD_BENCH_DATABASE_URL", "FORGEYARD_TEST_DATABASE_URL")


def server_url(benchmark: str) -> URL | None:
    """The server the environment names, if it answers; None (and a line saying so) if not."""
    text = next((os.environ[name] for name in URL_VARIABLES if os.environ.get(name)), None)
    if text is None:
        print(f"{benchmark}: PostgreSQL rows skipped: set {' or '.join(URL_VARIABLES)}")
        return None
    url = make_url(text).set(drivername="postgresql")
    try:
        admin(url, "SELECT 1")
    except Exception as error:
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        shown = url.render_as_string(hide_password=True)
        print(f"{benchmark}: PostgreSQL rows skipped: {shown} is unreachable ({reason})")
        return None
    return url


def admin(url: URL, statement: str) -> None:
    import psycopg

    conninfo = url.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as connection:
        connection.execute(statement)


@contextmanager
def scratch_database(server: URL, suffix: str) -> Iterator[URL]:
    """A database of its own for this run, dropped afterwards (and first, if a killed run left
    it behind)."""
    name = f"fy_bench_{os.getpid()}_{suffix}"
    admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(server, f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name)
    finally:
        admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
