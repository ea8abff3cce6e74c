"""Greedy replies in batches on a GPU machine that has torch and transformers but not this
project's other packages: the packaged model, de-quantized as the app does on its first start,
in float32, prompts left-padded. bench/gpu_hyde.py and bench/gpu_questions.py use it."""

from __future__ import annotations

from pathlib import Path

from gpu_train import convert

BASE = Path("/tmp/base-model")


class Generator:
    def __init__(self, gguf: str, device: str = "cuda") -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not (BASE / "config.json").exists():
            convert(Path(gguf), BASE)
        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(BASE, padding_side="left")
        self.tokenizer.pad_token = self.tokenizer.pad_token or self.tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(BASE, dtype=torch.float32)
        self.model = model.to(device).eval()

    def replies(
        self,
        conversations: list[list[dict[str, str]]],
        max_new_tokens: int,
        repetition_penalty: float,
    ) -> list[str]:
        """The model's reply to each conversation (chat messages), through its chat template."""
        import torch

        prompts = [
            self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            for messages in conversations
        ]
        inputs = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        with torch.no_grad():
            output = self.model.generate(
                **inputs,
                do_sample=False,
                max_new_tokens=max_new_tokens,
                repetition_penalty=repetition_penalty,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new = output[:, inputs["input_ids"].shape[1] :]
        return self.tokenizer.batch_decode(new, skip_special_tokens=True)
