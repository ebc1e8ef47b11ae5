"""Alembic environment: synchronous drivers, one code path for SQLite and PostgreSQL.

A caller that already holds a connection (the test suite, pytest-alembic) passes it in
``config.attributes["connection"]``; otherwise the URL in the config is used.
"""

from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from forgeyard.kernel.db import use_sqlite_transactions
from forgeyard.models import metadata
from forgeyard.settings import DatabaseSettings

config = context.config
MIGRATION_LOCK = 0x466F726765  # any constant shared by every Forgeyard process


def _render_item(kind: str, item: Any, autogen: AutogenContext) -> str | bool:
    """Migrations spell out plain column types, never the application's own type classes:
    a migration must keep working after those classes change or move."""
    if kind == "type" and isinstance(item, TypeDecorator):
        return f"sa.{item.impl!r}"
    return False


def _configure(**options: Any) -> None:
    context.configure(
        target_metadata=metadata, compare_type=True, render_item=_render_item, **options
    )


def _run_on(connection: Connection) -> None:
    # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead. Its
    # DDL is transactional once the driver stops managing transactions itself, so a failed
    # migration leaves nothing half-built on either database.
    sqlite = connection.dialect.name == "sqlite"
    _configure(connection=connection, render_as_batch=sqlite, transactional_ddl=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Replicas starting together queue here instead of migrating at once.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        _configure(url=url, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url, poolclass=NullPool)
    if engine.dialect.name == "sqlite":
        use_sqlite_transactions(engine, DatabaseSettings().sqlite_busy_timeout_ms)
    try:
        with engine.connect() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


run_migrations()
