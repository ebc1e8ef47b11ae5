"""``forgeyard``: serve the API, manage the database, print the version."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
import uvicorn

from forgeyard import __version__
from forgeyard.api import create_app
from forgeyard.cli import admin, db, local_runner
from forgeyard.cli.runner import runner
from forgeyard.cli.worker import worker
from forgeyard.kernel import migrations
from forgeyard.kernel.logging import configure_logging, get_logger
from forgeyard.settings import Settings, get_settings

app = typer.Typer(no_args_is_help=True, help="Forgeyard: keep your repositories healthy.")
app.add_typer(db.app, name="db")
app.add_typer(admin.app, name="admin")
app.command()(worker)
app.command()(runner)
log = get_logger("forgeyard.cli")


@app.command()
def version() -> None:
    """Print the installed version."""
    typer.echo(__version__)


@app.command()
def serve(
    listen: Annotated[
        str | None,
        typer.Option(help="HOST:PORT to bind (default from FORGEYARD_LISTEN, 127.0.0.1:8000)."),
    ] = None,
    migrate: Annotated[
        bool | None,
        typer.Option(
            "--migrate/--no-migrate",
            help="Upgrade the schema before serving (default from FORGEYARD_MIGRATE_ON_START).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Job workers to run in this process; 0 leaves jobs to `forgeyard worker` "
            "(default from FORGEYARD_JOBS__WORKERS, 2).",
        ),
    ] = None,
    with_runner: Annotated[
        bool,
        typer.Option(
            "--runner/--no-runner",
            help="Also start one local CI runner (a child process) for the first organization.",
        ),
    ] = False,
) -> None:
    """Run the API server, with job workers beside it unless told otherwise."""
    overrides: dict[str, object] = {}
    if listen is not None:
        overrides["listen"] = listen
    if migrate is not None:
        overrides["migrate_on_start"] = migrate
    if workers is not None:
        overrides["jobs"] = {**Settings().jobs.model_dump(), "workers": workers}
    settings = Settings(**overrides) if overrides else get_settings()  # type: ignore[arg-type]
    configure_logging(settings.log_format, settings.log_level)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if settings.migrate_on_start:
        migrations.upgrade(settings.resolved_database_url)
    host, port = settings.listen_address
    _announce_setup(settings)
    log.info("serving", url=f"http://{settings.listen}", version=__version__)
    child = None
    if with_runner:
        token = asyncio.run(local_runner.registration_token(settings))
        child = local_runner.start(settings, f"http://{settings.listen}", token)
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        # Not uvloop: its subprocesses are forked without vfork, which stalls the whole loop
        # about 8 ms per git call in a server this size, against 1.5 ms here (bench ci).
        loop="asyncio",
    )
    try:
        local_runner.ServerWithRunner(config, child).run()
    finally:
        local_runner.stop(child)


def _announce_setup(settings: Settings) -> None:
    """Until setup is finished, print how to finish it (on stdout, not into the logs)."""
    token = asyncio.run(admin.issue_bootstrap_token(settings))
    if token is None:
        return
    token_file = settings.data_dir / admin.BOOTSTRAP_TOKEN_FILE
    typer.echo(
        "\nForgeyard needs first-run setup. Either run\n"
        "  forgeyard admin create-owner --email YOU --name NAME --organization ORG\n"
        f"or exchange this one-time bootstrap token (also in {token_file}, valid 60 min)\n"
        f"  {token}\n"
        f"at POST http://{settings.listen}/api/v1/setup/bootstrap-token/verify\n"
    )
