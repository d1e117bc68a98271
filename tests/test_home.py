"""One home folder for the config and the default store, with `~` expanded for both."""

from __future__ import annotations

from pathlib import Path

import pytest

from wirebridge.home import wirebridge_home
from wirebridge.provider import default_config_path, load_config
from wirebridge.store import parse_store_url


def test_config_and_store_share_the_expanded_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WIREBRIDGE_HOME", "~/wb")
    config = default_config_path()
    store = Path(parse_store_url(None).target)
    assert config == tmp_path / "wb" / "config.toml"
    assert store == tmp_path / "wb" / "responses.db"


def test_config_under_a_tilde_home_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "wb").mkdir()
    (tmp_path / "wb" / "config.toml").write_text('model = "from-home"\n', encoding="utf-8")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WIREBRIDGE_HOME", "~/wb")
    assert load_config().default_model == "from-home"


def test_home_reads_only_the_mapping_it_is_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WIREBRIDGE_HOME", str(tmp_path / "from-os-environ"))
    assert wirebridge_home({"WIREBRIDGE_HOME": str(tmp_path / "given")}) == tmp_path / "given"
    assert wirebridge_home({}) == Path("~/.wirebridge").expanduser()
    assert wirebridge_home({"WIREBRIDGE_HOME": ""}) == Path("~/.wirebridge").expanduser()


def test_home_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WIREBRIDGE_HOME", str(tmp_path))
    assert wirebridge_home() == tmp_path
    monkeypatch.delenv("WIREBRIDGE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert wirebridge_home() == tmp_path / "user" / ".wirebridge"
