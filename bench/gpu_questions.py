"""Write the questions mode's questions for many sentences at once on a GPU machine that has
torch and transformers but not this project's other packages; `bench/modes.py --questions`
reads them back, so retrieval itself is measured on the CPU as the app runs it.

Usage: python bench/gpu_questions.py GGUF SENTENCES.json OUT.json
SENTENCES.json (from `bench/modes.py --export-sentences`): {"generation": {...}, "sentences":
[...]}. OUT.json: {sentence: question or null}.

Generation is what the app does for one sentence (`adapters.qa.write_question` through
`Resources.chunk_questions`): the worked examples as earlier turns, greedy, float32; a reply
that is not a usable question gets a second try with the other examples. It runs in batches,
left-padded.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from gpu_generate import Generator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.qa import EXAMPLE_SETS, clean_question  # noqa: E402

BATCH = 256


def main(gguf: str, sentences_file: str, out: str) -> None:
    spec = json.loads(Path(sentences_file).read_text())
    generation = spec["generation"]
    generator = Generator(gguf)

    def replies(examples: list[dict[str, str]], sentences: list[str]) -> list[str]:
        conversations = [[*examples, {"role": "user", "content": s}] for s in sentences]
        return generator.replies(
            conversations, generation["max_new_tokens"], generation["repetition_penalty"]
        )

    started = time.perf_counter()
    questions: dict[str, str | None] = {}
    left = list(dict.fromkeys(spec["sentences"]))
    for examples in EXAMPLE_SETS:
        # Similar lengths together: less padding.
        left.sort(key=len)
        for start in range(0, len(left), BATCH):
            batch = left[start : start + BATCH]
            for sentence, reply in zip(batch, replies(examples, batch), strict=True):
                questions[sentence] = clean_question(reply, sentence)
            print(f"{start + len(batch)} / {len(left)}", flush=True)
        left = [s for s in left if questions[s] is None]
    Path(out).write_text(json.dumps(questions))
    written = sum(q is not None for q in questions.values())
    print(f"{written} of {len(questions)} sentences: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main(*sys.argv[1:])
