"""Alembic environment: synchronous drivers, one code path for SQLite and PostgreSQL.

A caller that already holds a connection (the test suite, pytest-alembic) passes it in
``config.attributes["connection"]``; otherwise the URL in the config is used.
"""

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

from forgeyard.models import metadata

config = context.config


def _configure(**options: object) -> None:
    context.configure(target_metadata=metadata, compare_type=True, **options)


def _run_on(connection: Connection) -> None:
    # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
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
    try:
        with engine.connect() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


run_migrations()
