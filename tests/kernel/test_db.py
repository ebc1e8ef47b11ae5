"""The database kernel on both backends: transactions, timestamps, prefixed ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import ForeignKey, String, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from forgeyard.kernel.db import Database, TimestampMixin, UTCDateTime, async_url, sync_url
from forgeyard.kernel.ids import InvalidIdError, PrefixedId, is_valid_id, new_id


class ScratchBase(DeclarativeBase):
    """Tables that exist only inside a test's rolled-back transaction."""


class Gadget(TimestampMixin, ScratchBase):
    __tablename__ = "scratch_gadgets"
    id: Mapped[str] = mapped_column(PrefixedId("gad"), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Part(ScratchBase):
    __tablename__ = "scratch_parts"
    id: Mapped[str] = mapped_column(PrefixedId("part"), primary_key=True)
    gadget_id: Mapped[str] = mapped_column(ForeignKey("scratch_gadgets.id"))


@pytest.fixture
async def scratch(database: Database) -> Database:
    async with database.sessionmaker() as session:
        connection = await session.connection()
        await connection.run_sync(ScratchBase.metadata.create_all)
        await session.commit()
    return database


async def test_transaction_commits_on_success(scratch: Database) -> None:
    gadget_id = new_id("gad")
    async with scratch.transaction() as session:
        session.add(Gadget(id=gadget_id, name="kept"))
    async with scratch.sessionmaker() as session:
        assert (await session.get(Gadget, gadget_id)) is not None


async def test_transaction_rolls_back_on_error(scratch: Database) -> None:
    gadget_id = new_id("gad")

    async def fail_after_flushing() -> None:
        async with scratch.transaction() as session:
            session.add(Gadget(id=gadget_id, name="lost"))
            await session.flush()
            raise RuntimeError("handler failed after flushing")

    with pytest.raises(RuntimeError):
        await fail_after_flushing()
    async with scratch.sessionmaker() as session:
        assert (await session.get(Gadget, gadget_id)) is None


async def test_timestamps_are_set_and_come_back_as_aware_utc(scratch: Database) -> None:
    gadget_id = new_id("gad")
    seen = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    async with scratch.transaction() as session:
        session.add(Gadget(id=gadget_id, name="clock", seen_at=seen))
    async with scratch.sessionmaker() as session:
        gadget = (await session.scalars(select(Gadget).where(Gadget.id == gadget_id))).one()
        assert gadget.seen_at == seen
        assert gadget.seen_at is not None
        assert gadget.seen_at.utcoffset() == timedelta(0)
        assert gadget.created_at.tzinfo is not None
        assert abs(gadget.created_at - datetime.now(UTC)) < timedelta(minutes=1)
        assert gadget.updated_at >= gadget.created_at


async def test_updated_at_moves_on_update(scratch: Database) -> None:
    gadget_id = new_id("gad")
    async with scratch.transaction() as session:
        session.add(Gadget(id=gadget_id, name="v1"))
    async with scratch.transaction() as session:
        gadget = await session.get(Gadget, gadget_id)
        assert gadget is not None
        first = gadget.updated_at
        gadget.name = "v2"
    async with scratch.sessionmaker() as session:
        gadget = await session.get(Gadget, gadget_id)
        assert gadget is not None
        assert gadget.updated_at > first


async def test_naive_datetimes_are_refused(scratch: Database) -> None:
    with pytest.raises(StatementError, match="naive datetimes"):
        async with scratch.transaction() as session:
            session.add(Gadget(id=new_id("gad"), name="naive", seen_at=datetime(2026, 1, 1)))


async def test_an_id_of_another_kind_is_refused(scratch: Database) -> None:
    with pytest.raises(StatementError) as caught:
        async with scratch.transaction() as session:
            session.add(Gadget(id=new_id("repo"), name="wrong kind"))
    assert isinstance(caught.value.orig, InvalidIdError)


async def test_foreign_keys_are_enforced(scratch: Database) -> None:
    with pytest.raises(IntegrityError):
        async with scratch.transaction() as session:
            session.add(Part(id=new_id("part"), gadget_id=new_id("gad")))


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    database = Database.from_url(f"sqlite:///{tmp_path / 'wal.db'}")
    try:
        async with database.sessionmaker() as session:
            assert (await session.scalar(text("PRAGMA journal_mode"))) == "wal"
            assert (await session.scalar(text("PRAGMA foreign_keys"))) == 1
    finally:
        await database.dispose()


def test_ids_sort_by_creation_and_carry_their_prefix() -> None:
    ids = [new_id("repo") for _ in range(50)]
    assert all(is_valid_id("repo", value) for value in ids)
    assert ids == sorted(ids)
    assert not is_valid_id("job", ids[0])
    assert not is_valid_id("repo", "repo_not-a-ulid")
    with pytest.raises(ValueError, match="prefix"):
        new_id("Repo")


@pytest.mark.parametrize(
    ("given", "async_form", "sync_form"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db", "sqlite:///x.db"),
        ("postgresql://u:p@h/db", "postgresql+psycopg://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_database_urls_get_the_drivers_forgeyard_uses(
    given: str, async_form: str, sync_form: str
) -> None:
    assert async_url(given) == async_form
    assert sync_url(given) == sync_form


def test_unsupported_databases_are_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="unsupported database 'mysql'"):
        async_url("mysql://u@h/db")
