"""What a trained artifact records about itself (`kbot_meta.json`): how it was trained, on
what, and what it cost."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

META_FILE = "kbot_meta.json"


class DataInfo(BaseModel):
    origin: str
    kind: Literal["sft", "text", "mixed"]
    records: int
    fingerprint: str
    examples: int
    train_examples: int
    eval_examples: int


class ArtifactMeta(BaseModel):
    # Files written by later versions may hold more fields: keep them.
    model_config = ConfigDict(extra="allow")

    method: Literal["lora", "full"]
    base_model: str
    data: DataInfo
    hyperparameters: dict[str, Any]
    trainable_params: int
    total_params: int
    trainable_share: float
    file_bytes: int
    base_model_bytes: int | None = None
    train_seconds: float
    steps: int
    peak_memory_mb: float
    final_train_loss: float | None = None
    mean_train_loss: float | None = None
    eval_loss: float | None = None
    loss_history: list[dict[str, float]] = []
    created_at: str
    # Measured after training, with the command that measured them (the packaged reader's
    # come from bench/reader.py --record).
    scores: dict[str, Any] = {}

    def costs(self) -> dict[str, Any]:
        """What building it cost, for comparisons."""
        return {
            "train_seconds": self.train_seconds,
            "trainable_params": self.trainable_params,
            "artifact_bytes": self.file_bytes,
            "peak_memory_mb": self.peak_memory_mb,
        }

    def summary(self, name: str) -> dict[str, Any]:
        """The metadata as JSON with its name, without the (long) loss history."""
        return {"name": name, **self.model_dump(mode="json", exclude={"loss_history"})}
