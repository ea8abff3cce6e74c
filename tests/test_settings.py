from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import PACKAGED_MODEL, Settings, load_settings


def test_defaults_are_the_packaged_model_on_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KBOT_MODEL", "KBOT_HOME", "KBOT_PORT", "KBOT_MODEL_CACHE"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.model == PACKAGED_MODEL
    assert (settings.host, settings.port) == ("127.0.0.1", 7860)
    assert settings.models_dir == settings.home / "models"


def test_environment_uses_the_kbot_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KBOT_HOME", str(tmp_path))
    monkeypatch.setenv("KBOT_MODEL", "HuggingFaceTB/SmolLM2-360M-Instruct")
    monkeypatch.setenv("KBOT_TEMPERATURE", "0.7")
    settings = Settings()
    assert settings.home == tmp_path
    assert settings.model == "HuggingFaceTB/SmolLM2-360M-Instruct"
    assert settings.temperature == 0.7


def test_flags_win_over_environment_and_none_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KBOT_PORT", "9000")
    monkeypatch.setenv("KBOT_MAX_NEW_TOKENS", "64")
    settings = load_settings(port=9100, max_new_tokens=None)
    assert settings.port == 9100
    assert settings.max_new_tokens == 64


@pytest.mark.parametrize(
    ("name", "value"), [("KBOT_PORT", "70000"), ("KBOT_TEMPERATURE", "-1"), ("KBOT_TOP_P", "0")]
)
def test_out_of_range_values_are_refused_with_the_setting_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as error:
        Settings()
    assert name.removeprefix("KBOT_").lower() in str(error.value)


def test_the_reader_leans_as_calibrated_unless_the_setting_says(tmp_path: Path) -> None:
    import json
    import shutil

    from adapters.meta import META_FILE
    from adapters.reader import PACKAGED_READER
    from bot.resources import Resources

    reader = tmp_path / "reader"
    shutil.copytree(PACKAGED_READER, reader)
    meta = json.loads((reader / META_FILE).read_text())
    (reader / META_FILE).write_text(json.dumps(meta | {"decline_bias": 1.25}))
    home = tmp_path / "home"
    assert Resources(load_settings(home=home, reader=str(reader))).decline_bias == 1.25
    chosen = load_settings(home=home, reader=str(reader), decline_bias=-0.5)
    assert Resources(chosen).decline_bias == -0.5
    assert Resources(load_settings(home=home, reader="none")).decline_bias == 0.0
