"""Why torch's work runs on one thread (common/compute.py): generation time on the default
model when every torch call comes from one thread, and when a second thread has run one
matrix product before and lives on (torch's OpenMP then keeps two worker teams, more threads
than CPUs; a thread that ends gives its team back).

Each case runs in a fresh process: the slowdown lasts as long as the process.
Usage: python bench/threads.py [--repeats 7]. Writes bench/results/threads.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
CASES = {
    "one thread (compute thread only)": "one",
    "after a matmul on a second thread": "two",
}


def measure(case: str, repeats: int) -> list[float]:
    """Seconds per generation (a 136-token prompt, 8 new tokens) in this process."""
    import torch

    from bot.model import load_model
    from bot.settings import load_settings
    from common import compute

    settings = load_settings(home=Path(tempfile.mkdtemp()))
    model = load_model(settings).model
    ids = torch.randint(100, 20000, (1, 136))

    def generate() -> None:
        with torch.inference_mode():
            model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=8,
                min_new_tokens=8,
                do_sample=False,
                pad_token_id=0,
            )

    compute.run(generate)  # warm-up
    if case == "two":  # the main thread lives on, like a server's handler threads
        torch.ones(500, 500) @ torch.ones(500, 500)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        compute.run(generate)
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--case", choices=sorted(CASES.values()), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # a child process: print the figures
        print(json.dumps(measure(args.case, args.repeats)))
        return

    rows = {}
    for label, case in CASES.items():
        done = subprocess.run(
            [sys.executable, __file__, "--case", case, "--repeats", str(args.repeats)],
            capture_output=True,
            text=True,
            check=True,
        )
        seconds = json.loads(done.stdout.strip().splitlines()[-1])
        rows[label] = {"median_s": round(statistics.median(seconds), 3), "runs": seconds}
    first, second = (rows[label]["median_s"] for label in CASES)
    print(f"{'case':<36} {'median s':>9}")
    for label, row in rows.items():
        print(f"{label:<36} {row['median_s']:>9.3f}")
    print(f"ratio {second / first:.2f}")
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "generation": "136-token prompt, 8 new tokens, default model, greedy",
        "cases": rows,
        "ratio": round(second / first, 2),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "threads.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
