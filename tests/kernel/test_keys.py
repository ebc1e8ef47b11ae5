from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from forgeyard.kernel.keys import SECRET_KEY_FILE, load_or_create_secret_key


def test_first_start_generates_a_private_key_that_later_starts_reuse(tmp_path: Path) -> None:
    first = load_or_create_secret_key(tmp_path / "data")
    path = tmp_path / "data" / SECRET_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 40
    assert load_or_create_secret_key(tmp_path / "data") == first


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = set(pool.map(lambda _: load_or_create_secret_key(tmp_path), range(32)))
    assert len(keys) == 1
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_KEY_FILE]


def test_an_emptied_key_file_is_an_error_not_a_silent_new_key(tmp_path: Path) -> None:
    (tmp_path / SECRET_KEY_FILE).write_text("")
    with pytest.raises(RuntimeError, match="is empty"):
        load_or_create_secret_key(tmp_path)
