from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from forgeyard.api import create_app
from forgeyard.kernel.keys import SECRET_KEY_FILE
from forgeyard.settings import DEFAULT_CORS_ORIGINS, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env from the working directory
    for name in ("DATA_DIR", "DATABASE_URL", "LISTEN", "CORS_ORIGINS", "SECRET_KEY", "REDIS_URL"):
        monkeypatch.delenv(f"FORGEYARD_{name}", raising=False)


def test_defaults_put_an_sqlite_database_in_the_data_dir() -> None:
    settings = Settings()
    assert settings.data_dir == Path(".forgeyard")
    assert (
        settings.resolved_database_url == f"sqlite:///{Path('.forgeyard/forgeyard.db').resolve()}"
    )
    assert settings.listen_address == ("127.0.0.1", 8000)
    assert settings.cors_origins == DEFAULT_CORS_ORIGINS
    assert settings.redis_url is None


def test_environment_overrides_flat_and_nested_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGEYARD_DATABASE_URL", "postgresql://fy@db/forgeyard")
    monkeypatch.setenv("FORGEYARD_LISTEN", "[::1]:9000")
    monkeypatch.setenv("FORGEYARD_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("FORGEYARD_HTTP__MAX_BODY_BYTES", "1024")
    settings = Settings()
    assert settings.resolved_database_url == "postgresql://fy@db/forgeyard"
    assert settings.listen_address == ("::1", 9000)
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.http.max_body_bytes == 1024


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FORGEYARD_LISTEN=0.0.0.0:8080\n")
    assert Settings().listen == "0.0.0.0:8080"


@pytest.mark.parametrize("listen", ["8000", "localhost", "host:port", "host:70000", ":80"])
def test_a_bad_listen_address_is_refused_with_its_value(
    monkeypatch: pytest.MonkeyPatch, listen: str
) -> None:
    monkeypatch.setenv("FORGEYARD_LISTEN", listen)
    with pytest.raises(ValidationError, match="listen address must be HOST:PORT"):
        Settings()


def test_a_given_secret_key_is_used_and_nothing_is_written(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", secret_key="operator-provided-key")
    app = create_app(settings)
    assert app.state.secret_key == "operator-provided-key"
    assert not (tmp_path / "data" / SECRET_KEY_FILE).exists()


def test_without_a_secret_key_one_is_generated_into_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = create_app(settings).state.secret_key
    assert (tmp_path / "data" / SECRET_KEY_FILE).read_text().strip() == first
    assert create_app(settings).state.secret_key == first
