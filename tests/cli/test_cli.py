"""The ``forgeyard`` command as a user runs it."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from forgeyard import __version__
from forgeyard.cli.main import app
from forgeyard.kernel import migrations
from tests.databases import scratch_database

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FORGEYARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FORGEYARD_LOG_FORMAT", "json")
    monkeypatch.delenv("FORGEYARD_DATABASE_URL", raising=False)
    return tmp_path / "data"


def _reset_settings_cache() -> None:
    from forgeyard.settings import get_settings

    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    _reset_settings_cache()
    yield
    _reset_settings_cache()


def test_version_prints_the_package_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == __version__


def test_db_upgrade_then_current_on_each_backend(
    data_dir: Path, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = migrations.head_revision()
    with scratch_database(backend, tmp_path) as url:
        monkeypatch.setenv("FORGEYARD_DATABASE_URL", url)
        assert runner.invoke(app, ["db", "current"]).stdout.strip() == f"empty (behind head {head})"
        upgraded = runner.invoke(app, ["db", "upgrade"])
        assert upgraded.exit_code == 0, upgraded.output
        assert f"database at revision {head}" in upgraded.stdout
        assert runner.invoke(app, ["db", "current"]).stdout.strip() == f"{head} (up to date)"


def test_db_upgrade_defaults_to_sqlite_in_the_data_dir(data_dir: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (data_dir / "forgeyard.db").is_file()


def test_serve_refuses_a_bad_listen_address(data_dir: Path) -> None:
    result = runner.invoke(app, ["serve", "--listen", "nonsense"])
    assert result.exit_code != 0
    assert "listen address must be HOST:PORT" in str(result.exception)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, server: subprocess.Popen[bytes], timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited before it was ready"
        try:
            return httpx.get(url, timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def test_serve_migrates_an_empty_data_dir_and_answers_ready(tmp_path: Path) -> None:
    """What ``make run`` does on a fresh machine."""
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("FORGEYARD_")} | {
        "FORGEYARD_DATA_DIR": str(tmp_path / "data"),
        "FORGEYARD_LOG_FORMAT": "json",
    }
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "forgeyard", "serve", "--listen", f"127.0.0.1:{port}"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            response = _wait_ready(f"http://127.0.0.1:{port}/readyz", server)
            assert response.status_code == 200
            assert response.json()["status"] == "ready"
        finally:
            server.terminate()
            server.wait(timeout=15)
    data = tmp_path / "data"
    assert (data / "forgeyard.db").is_file()
    assert stat.S_IMODE((data / "secret.key").stat().st_mode) == 0o600
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    request_lines = [line for line in lines if line.get("event") == "request"]
    assert request_lines[-1]["route"] == "/readyz"
    assert request_lines[-1]["status"] == 200
