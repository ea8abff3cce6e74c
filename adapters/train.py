"""One training skeleton for LoRA and full fine-tuning: data -> tokens -> HF Trainer -> artifact.

LoRA wraps a private copy of the base model with PEFT adapters (base frozen); full fine-tuning
trains every weight of another copy. The shared serving model is never touched.
"""

from __future__ import annotations

import contextlib
import copy
import random
import resource
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from adapters.data import DataError, TrainingData
from adapters.meta import META_FILE, ArtifactMeta, DataInfo
from adapters.registry import ArtifactRegistry
from common.files import write_atomically

Progress = Callable[[float, str], None]


def _flag(name: str) -> dict[str, Any]:
    """The command-line flag of a field, where it is not the field's own name."""
    return {"flag": name}


class TrainConfig(BaseModel):
    """A training recipe, and the one place its defaults live: the CLI's flags and the Train
    tab's fields are built from it. LoRA defaults follow the QLoRA paper's finding that
    adapting all linear layers matters more than the rank: r=16, alpha=2r (which keeps the
    update scale steady across ranks), dropout 0.05."""

    method: Literal["lora", "full"] = Field(description="LoRA adapters or every weight.")
    name: str = Field(description="Name of the adapter or checkpoint to save.")
    max_steps: int | None = Field(
        default=None, ge=1, description="Stop after N steps (default: train for `epochs`)."
    )
    epochs: float = Field(default=3.0, gt=0, description="Passes over the data.")
    learning_rate: float | None = Field(
        default=None,
        gt=0,
        description="Default: 1e-3 for LoRA, 5e-5 for full fine-tuning.",
        json_schema_extra=_flag("lr"),
    )
    batch_size: int = Field(default=4, ge=1, description="Examples per step.")
    max_length: int = Field(default=256, ge=16, description="Tokens per example.")
    eval_fraction: float = Field(
        default=0.1, ge=0, lt=0.5, description="Share of examples held out to measure loss."
    )
    seed: int = Field(default=42, description="Seed for shuffling and initialisation.")
    lora_r: int = Field(default=16, ge=1, description="LoRA rank.", json_schema_extra=_flag("rank"))
    lora_alpha: int | None = Field(
        default=None,
        ge=1,
        description="LoRA alpha (default: 2 x rank).",
        json_schema_extra=_flag("alpha"),
    )
    lora_dropout: float = Field(default=0.05, ge=0, lt=1, description="LoRA dropout.")
    lora_targets: str = Field(
        default="all-linear",
        description='LoRA target modules: "all-linear" or comma-separated module names.',
        json_schema_extra=_flag("targets"),
    )
    as_reader: bool = Field(
        default=False,
        description="Train the RAG reader further: each Q/A pair is asked over the sentences "
        "retrieved from a collection, starting from the current reader (LoRA; needs Q/A data "
        "and a collection).",
    )
    save_every: int = Field(default=100, ge=1, description="Checkpoint every N steps.")
    overwrite: bool = Field(default=False, description="Replace an artifact of the same name.")
    resume: bool = Field(default=False, description="Continue from the last checkpoint.")

    @model_validator(mode="after")
    def _a_reader_is_lora(self) -> TrainConfig:
        if self.as_reader and self.method != "lora":
            raise ValueError("the reader is a LoRA adapter: train it with method lora")
        return self

    @property
    def lr(self) -> float:
        if self.learning_rate:
            return self.learning_rate
        if self.as_reader:
            return 2e-4  # a trained adapter, refined: a step of 1e-3 would undo what it knows
        return 1e-3 if self.method == "lora" else 5e-5

    @property
    def alpha(self) -> int:
        return self.lora_alpha or 2 * self.lora_r


@dataclass
class TrainResult:
    status: Literal["done", "cancelled"]
    meta: ArtifactMeta | None = None  # None when cancelled
    path: Path | None = None
    steps: int = 0


# Tokens ------------------------------------------------------------------------------------


def _sft_example(tokenizer: Any, messages: list[dict[str, str]], max_length: int) -> dict:
    """Tokens of a conversation; only the final answer's tokens carry loss."""

    def ids(conversation: list[dict[str, str]], prompt: bool) -> list[int]:
        return list(
            tokenizer.apply_chat_template(
                conversation, add_generation_prompt=prompt, tokenize=True, return_dict=True
            )["input_ids"]
        )

    prompt = ids(messages[:-1], prompt=True)
    full = ids(messages, prompt=False)
    labels = [-100] * len(prompt) + full[len(prompt) :]
    return {"input_ids": full[:max_length], "labels": labels[:max_length]}


def _text_examples(tokenizer: Any, texts: tuple[str, ...], max_length: int) -> list[dict]:
    """Documents as consecutive blocks of `max_length` tokens (causal LM on every token)."""
    stream: list[int] = []
    for text in texts:
        stream += tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]
    blocks = [stream[i : i + max_length] for i in range(0, len(stream), max_length)]
    return [{"input_ids": b, "labels": list(b)} for b in blocks if len(b) > 8]


def tokenize(data: TrainingData, tokenizer: Any, max_length: int, system_prompt: str) -> list:
    examples = _text_examples(tokenizer, data.texts, max_length) if data.texts else []
    for conversation in data.conversations:
        messages = list(conversation)
        if messages[0]["role"] != "system":
            # Train under the same system prompt the chat uses, so it answers the same way.
            messages.insert(0, {"role": "system", "content": system_prompt})
        example = _sft_example(tokenizer, messages, max_length)
        if any(label != -100 for label in example["labels"]):
            examples.append(example)
    return examples


def _collator(tokenizer: Any) -> Callable[[list[dict]], dict]:
    """Batches padded on the right, so each example keeps the positions it has alone, with
    -100 (ignored by the loss) as the padding's labels: only answers carry loss."""
    from transformers import DataCollatorForSeq2Seq

    padder = copy.deepcopy(tokenizer)  # a full checkpoint saves the tokenizer as it was
    padder.padding_side = "right"
    if padder.pad_token_id is None:
        padder.pad_token = padder.eos_token
    return DataCollatorForSeq2Seq(padder, label_pad_token_id=-100, return_tensors="pt")


# Model -------------------------------------------------------------------------------------


def _trainable_model(config: TrainConfig, location: str, start_from: Path | None) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32)
    if config.method == "full":
        return model
    from peft import LoraConfig, PeftModel, get_peft_model

    if start_from is not None:  # its rank and targets come with it
        return PeftModel.from_pretrained(model, start_from, is_trainable=True)

    targets = (
        "all-linear"
        if config.lora_targets == "all-linear"
        else [t.strip() for t in config.lora_targets.split(",") if t.strip()]
    )
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def _parameter_counts(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _reset_peak_memory() -> None:
    """Count peak memory from now on, so each run in a long-lived process (the app, a
    benchmark) reports its own: CUDA's counter, or Linux's resident-memory high-water mark."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        return
    with contextlib.suppress(OSError):  # not Linux: the process's peak so far is reported
        Path("/proc/self/clear_refs").write_text("5")


def _peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024  # kB
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def save_loss_plot(history: list[dict[str, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5), dpi=100)
    train = [(h["step"], h["loss"]) for h in history if "loss" in h]
    evals = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
    if train:
        axes.plot(*zip(*train, strict=True), label="train loss")
    if evals:
        axes.plot(*zip(*evals, strict=True), "o-", label="eval loss")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


# Training ----------------------------------------------------------------------------------


def _callbacks(progress: Progress | None, cancel: threading.Event, history: list) -> list:
    from transformers import TrainerCallback

    class Report(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs:
                history.append({"step": state.global_step, **logs})
            if progress and logs and "loss" in logs:
                progress(
                    state.global_step / max(state.max_steps, 1),
                    f"step {state.global_step}/{state.max_steps} · loss {logs['loss']:.3f}",
                )

        def on_step_end(self, args, state, control, **kwargs):
            if cancel.is_set():
                control.should_training_stop = True
                control.should_save = False

    return [Report()]


def train(
    config: TrainConfig,
    data: TrainingData,
    *,
    base_location: str,
    base_name: str,
    system_prompt: str,
    registry: ArtifactRegistry,
    runs_dir: Path,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    history: list[dict[str, float]] | None = None,
    start_from: Path | None = None,
    step_limit: int | None = None,
) -> TrainResult:
    """Train `config.method` on `data` and publish the artifact under `config.name`.
    `history` (if given) receives the logged losses as they come, for live plots;
    `start_from` is a LoRA adapter folder to keep training instead of a new adapter;
    `step_limit` caps the steps however many epochs ask for (a server's limit)."""
    import torch
    from transformers import AutoTokenizer, Trainer, TrainingArguments, set_seed
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    registry.check_free(config.name, config.overwrite)
    cancel = cancel or threading.Event()
    set_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_location)
    examples = tokenize(data, tokenizer, config.max_length, system_prompt)
    if not examples:
        raise DataError("The training data produced no usable examples.")
    random.Random(config.seed).shuffle(examples)
    n_eval = int(len(examples) * config.eval_fraction) if len(examples) >= 10 else 0
    eval_set, train_set = examples[:n_eval], examples[n_eval:]

    _reset_peak_memory()
    model = _trainable_model(config, base_location, start_from)
    trainable, total = _parameter_counts(model)
    run_dir = runs_dir / config.name
    history = history if history is not None else []
    steps_per_epoch = max(1, -(-len(train_set) // config.batch_size))
    max_steps = config.max_steps or max(1, round(steps_per_epoch * config.epochs))
    if step_limit:
        max_steps = min(max_steps, step_limit)
    args = TrainingArguments(
        output_dir=str(run_dir),
        max_steps=max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.lr,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=min(10, max_steps // 10),
        logging_steps=1,
        save_strategy="steps",
        save_steps=config.save_every,
        save_total_limit=1,
        eval_strategy="steps" if eval_set else "no",
        eval_steps=max(1, max_steps // 5),
        seed=config.seed,
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        bf16=torch.cuda.is_available(),  # mixed precision on GPUs; CPUs train in fp32
        # Progress goes through `progress` only: transformers' own bar and log printer
        # would write log dictionaries to stdout, which `--json` keeps for its result.
        disable_tqdm=True,
        log_level="warning",
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set or None,
        data_collator=_collator(tokenizer),
        callbacks=_callbacks(progress, cancel, history),
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    resume = config.resume and any(run_dir.glob("checkpoint-*"))
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=True if resume else None)
    seconds = time.perf_counter() - started
    if cancel.is_set():
        return TrainResult(status="cancelled", steps=trainer.state.global_step)
    eval_loss = trainer.evaluate()["eval_loss"] if eval_set else None

    staging = registry.staging(config.name)
    model.save_pretrained(staging)
    if config.method == "full":
        tokenizer.save_pretrained(staging)
    file_bytes = _folder_bytes(staging)
    save_loss_plot(history, staging / "loss.png", f"{config.method} · {config.name}")
    train_losses = [h["loss"] for h in history if "loss" in h]
    meta = ArtifactMeta(
        method=config.method,
        base_model=base_name,
        data=DataInfo(
            origin=data.origin,
            kind=data.kind,
            records=len(data),
            fingerprint=data.fingerprint,
            examples=len(examples),
            train_examples=len(train_set),
            eval_examples=len(eval_set),
        ),
        hyperparameters=config.model_dump(exclude={"name", "overwrite", "resume"})
        | {"learning_rate": config.lr, "lora_alpha": config.alpha, "max_steps": max_steps}
        | ({"started_from": start_from.name} if start_from else {}),
        trainable_params=trainable,
        total_params=total,
        trainable_share=round(trainable / total, 6),
        file_bytes=file_bytes,
        base_model_bytes=_folder_bytes(Path(base_location))
        if Path(base_location).is_dir()
        else None,
        train_seconds=round(seconds, 2),
        steps=trainer.state.global_step,
        peak_memory_mb=round(_peak_memory_mb(), 1),
        final_train_loss=round(train_losses[-1], 4) if train_losses else None,
        mean_train_loss=round(float(output.training_loss), 4),
        eval_loss=round(eval_loss, 4) if eval_loss is not None else None,
        loss_history=history,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    write_atomically(staging / META_FILE, meta.model_dump_json(indent=1))
    path = registry.publish(staging, config.name, config.overwrite)
    shutil.rmtree(run_dir, ignore_errors=True)  # checkpoints only serve to resume a broken run
    return TrainResult(status="done", meta=meta, path=path, steps=meta.steps)
