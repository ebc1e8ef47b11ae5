"""The database: engine, sessions, declarative base and the one way to end a transaction.

Services receive an ``AsyncSession`` and only ``flush()``. A transaction ends in exactly one
of three places, all of which use :meth:`Database.transaction`: the request dependency, the
job context in a worker, and a CLI command.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import DateTime, MetaData, event, select, text
from sqlalchemy.engine import CursorResult, Dialect, Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeDecorator

from forgeyard.kernel.errors import ForgeyardError, NotFoundError
from forgeyard.kernel.ids import is_valid_id
from forgeyard.settings import DatabaseSettings

# Stable constraint names, so Alembic can alter constraints on SQLite (batch mode) and
# PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


async def rows_affected(executor: AsyncSession | AsyncConnection, statement: Executable) -> int:
    """Run an UPDATE or DELETE and say how many rows it touched."""
    result = await executor.execute(statement)
    return cast("CursorResult[Any]", result).rowcount


OwnedRow = TypeVar("OwnedRow", bound="Base")


async def get_owned(
    session: AsyncSession,
    model: type[OwnedRow],
    row_id: str,
    *,
    organization_id: str,
    kind: str,
    prefix: str,
) -> OwnedRow:
    """The row ``row_id`` of ``model`` if ``organization_id`` owns it; else 404 ``not_found``.

    Another organization's id answers exactly like an id that does not exist, and a malformed
    one never reaches the database.
    """
    found: OwnedRow | None = None
    if is_valid_id(prefix, row_id):
        columns = model.__table__.c
        rows = await session.scalars(
            select(model).where(columns.id == row_id, columns.organization_id == organization_id)
        )
        found = rows.first()
    if found is None:
        field = kind.replace(" ", "_") + "_id"
        raise NotFoundError(f"{kind} {row_id} not found", details={field: row_id})
    return found


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC, on SQLite (which stores no zone) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False
    )


def async_url(url: str) -> str:
    """The URL with the async driver Forgeyard uses for its dialect."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")


def sync_url(url: str) -> str:
    """The URL with a synchronous driver, for Alembic and one-off tools."""
    parsed = make_url(async_url(url))
    if parsed.get_backend_name() == "sqlite":
        parsed = parsed.set(drivername="sqlite")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def configure_sqlite_connection(dbapi_connection: Any, busy_timeout_ms: int) -> None:
    """WAL for concurrent readers, enforced foreign keys, a busy timeout."""
    # The stdlib driver opens transactions implicitly and late, which breaks SAVEPOINT and
    # transactional DDL; Forgeyard emits BEGIN itself (see use_sqlite_transactions).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.close()


# Execution option of a transaction that only reads: on SQLite it starts with a plain BEGIN,
# so readers never queue for the write lock.
READ_ONLY = "forgeyard_read_only"


def use_sqlite_transactions(sync_engine: Engine, busy_timeout_ms: int) -> None:
    """Every writing transaction starts with BEGIN IMMEDIATE, taking SQLite's write lock first.

    With a plain (deferred) BEGIN, a transaction that reads and then writes fails at once
    with "database is locked" when another connection wrote in between; the busy timeout
    does not apply to that upgrade. Taking the lock at BEGIN makes writers queue for up to
    the busy timeout instead. The price is one transaction at a time per database, which the
    embedded default accepts; PostgreSQL is the answer to concurrency. Transactions opened
    with ``read_only=True`` begin deferred and take no lock (WAL readers never block).
    """

    @event.listens_for(sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        configure_sqlite_connection(dbapi_connection, busy_timeout_ms)

    @event.listens_for(sync_engine, "begin")
    def _begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        connection.exec_driver_sql("BEGIN" if options.get(READ_ONLY) else "BEGIN IMMEDIATE")


def create_engine(url: str, settings: DatabaseSettings | None = None) -> AsyncEngine:
    settings = settings or DatabaseSettings()
    if is_sqlite(url):
        engine = create_async_engine(async_url(url), echo=settings.echo)
        use_sqlite_transactions(engine.sync_engine, settings.sqlite_busy_timeout_ms)
        return engine
    return create_async_engine(
        async_url(url),
        echo=settings.echo,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_pre_ping=True,
    )


def make_sessionmaker(bind: Any, **options: Any) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: responses are built from objects after the commit point.
    return async_sessionmaker(bind=bind, expire_on_commit=False, autoflush=False, **options)


class Database:
    """An engine plus the session factory that all work goes through."""

    def __init__(
        self, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession] | None = None
    ) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker or make_sessionmaker(engine)
        self._autocommit_engine: AsyncEngine | None = None

    @classmethod
    def from_url(cls, url: str, settings: DatabaseSettings | None = None) -> Database:
        return cls(create_engine(url, settings))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """A session whose work is committed if the block succeeds and rolled back if not.

        A :class:`ForgeyardError` raised with ``keep_changes=True`` commits instead: the
        refusal is an outcome worth keeping (see the error's docstring).
        """
        async with self.sessionmaker() as session:
            if read_only:
                await session.connection(execution_options={READ_ONLY: True})
            try:
                yield session
            except ForgeyardError as error:
                await (session.commit() if error.keep_changes else session.rollback())
                raise
            except BaseException:
                await session.rollback()
                raise
            if session.in_transaction():  # a request that never queried has nothing to end
                await session.commit()

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection on which each statement is its own transaction.

        For work made of single atomic statements (the job engine's claims and completions):
        no BEGIN, COMMIT or reset-on-return round trips, and no liveness ping per checkout.
        Its pool is separate from the sessions' pool, so it is created on first use.
        """
        if self._autocommit_engine is None:
            self._autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if not is_sqlite(self.engine.url.render_as_string(hide_password=False)):
                self._autocommit_engine = create_async_engine(
                    self.engine.url,
                    isolation_level="AUTOCOMMIT",
                    pool_size=self.engine.pool.size(),  # type: ignore[attr-defined]
                    pool_reset_on_return=None,
                )
        async with self._autocommit_engine.connect() as connection:
            yield connection

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query.

        Outside any transaction, so a probe never waits behind SQLite's write lock.
        """
        async with self.engine.connect() as connection:
            probe = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await probe.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self._autocommit_engine is not None:
            await self._autocommit_engine.dispose()
        await self.engine.dispose()
