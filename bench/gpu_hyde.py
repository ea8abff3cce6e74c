"""Write the hyde mode's hypothetical answers for many queries at once on a GPU machine that
has torch and transformers but not this project's other packages; `bench/modes.py
--hypotheses` reads them back, so retrieval itself is measured on the CPU as the app runs it.

Usage: python bench/gpu_hyde.py GGUF QUERIES.json OUT.json
QUERIES.json (from `bench/modes.py --export-queries`): {"system", "max_new_tokens",
"repetition_penalty", "queries": [...]}. OUT.json: {query: answer}.

Generation is what the app does for one query (`Resources.hypothetical_answer`): the chat
template with the system prompt, greedy decoding and its repetition penalty, in float32; it
runs in batches, left-padded.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from gpu_generate import Generator


def main(gguf: str, queries_file: str, out: str) -> None:
    spec = json.loads(Path(queries_file).read_text())
    generator = Generator(gguf)
    started, answers = time.perf_counter(), {}
    queries = list(dict.fromkeys(spec["queries"]))
    for start in range(0, len(queries), 64):
        batch = queries[start : start + 64]
        conversations = [
            [{"role": "system", "content": spec["system"]}, {"role": "user", "content": q}]
            for q in batch
        ]
        texts = generator.replies(conversations, spec["max_new_tokens"], spec["repetition_penalty"])
        answers.update((q, t.strip()) for q, t in zip(batch, texts, strict=True))
        print(f"{len(answers)} / {len(queries)}", flush=True)
    Path(out).write_text(json.dumps(answers))
    print(f"{len(answers)} answers in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main(*sys.argv[1:])
