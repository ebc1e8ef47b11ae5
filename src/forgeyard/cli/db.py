"""``forgeyard db``: schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from forgeyard.kernel import migrations
from forgeyard.kernel.logging import configure_logging
from forgeyard.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Database schema.")


@app.command()
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Upgrade the schema (to the newest revision by default)."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    url = settings.resolved_database_url
    migrations.upgrade(url, revision)
    typer.echo(f"database at revision {migrations.current_revision(url)}")


@app.command()
def current() -> None:
    """Print the schema revision the database is at, and whether it is the newest."""
    settings = get_settings()
    if not migrations.database_exists(settings.resolved_database_url):
        typer.echo("empty (no database yet: forgeyard db upgrade creates it)")
        return
    revision = migrations.current_revision(settings.resolved_database_url)
    head = migrations.head_revision()
    state = "up to date" if revision == head else f"behind head {head}"
    typer.echo(f"{revision or 'empty'} ({state})")
