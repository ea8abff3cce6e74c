"""Two app replicas on one Chroma server (`chroma run`), each with its own KBOT_HOME, as on two
machines; here both run on this machine, so their clocks are one.

1. Visibility: replica A (this process) ingests a new document; replica B (another process)
   searches for it in a loop. Reported: how long after A's `ingest` returned B's search first
   brought the document (negative: B saw the commit before A's call returned).
2. A kill -9 of a replica in the middle of a long ingestion (the Flask docs): B keeps serving
   the committed version (every hit of many searches belongs to a committed document version,
   and the documents it lists are the manifest's), and B's next write takes over the killed
   replica's lease.

Usage: python bench/replicas.py [--rounds 10]
Writes bench/results/replicas.json and prints a table.
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
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "replicas.json"
FLASK = ROOT.parent / "shared" / "data" / "flask-2.2-docs" / "rst"

# Replica B: waits for each round's document and prints when its search first brings it.
WATCH = """
import json, sys, time
from pathlib import Path
from knowledge.embeddings import load_embedder
from knowledge.knowledge_base import KnowledgeBase
from knowledge.results import UnknownCollectionError
kb = KnowledgeBase(Path(sys.argv[1]), load_embedder(), chroma_url=sys.argv[2])
print("ready", flush=True)
for line in sys.stdin:
    name, source, query = json.loads(line)
    while True:
        try:
            hits = kb.search("visible", query, 1, "dense")
        except UnknownCollectionError:
            hits = []
        if hits and hits[0].source == source:
            print(json.dumps({"source": source, "seen_at": time.time()}), flush=True)
            break
        time.sleep(0.01)
"""

# Replica A2: ingests a folder; killed from outside in the middle.
INGEST = """
import sys
from pathlib import Path
from knowledge.embeddings import load_embedder
from knowledge.knowledge_base import KnowledgeBase
from knowledge.loaders import expand_paths
kb = KnowledgeBase(Path(sys.argv[1]), load_embedder(), chroma_url=sys.argv[2])
kb.ingest("big", expand_paths([Path(sys.argv[3])]))
"""


def start_chroma(folder: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    from tests.conftest import free_port

    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    server = subprocess.Popen(
        [str(chroma), "run", "--path", str(folder), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("chroma run did not start")


def visibility(kb, url: str, work: Path, rounds: int) -> list[tuple[float, float]]:
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCH, str(work / "b"), url],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert watcher.stdin and watcher.stdout
    assert watcher.stdout.readline().strip() == "ready"
    gaps = []
    for number in range(rounds):
        doc = work / "docs" / f"round{number}.txt"
        doc.parent.mkdir(exist_ok=True)
        word = f"zaffrel{number}quon"
        doc.write_text(f"Notice {number}: the {word} permit desk moved to room {100 + number}.")
        query = f"Where is the {word} permit desk?"
        watcher.stdin.write(json.dumps(["visible", doc.name, query]) + "\n")
        watcher.stdin.flush()
        time.sleep(1.0)  # B is searching before A writes
        started_at = time.time()
        kb.ingest("visible", [(doc, doc.name)])
        returned_at = time.time()
        seen = json.loads(watcher.stdout.readline())
        gaps.append((seen["seen_at"] - returned_at, seen["seen_at"] - started_at))
        print(
            f"  round {number}: B found it {gaps[-1][0]:+.3f} s after A's ingest returned "
            f"({gaps[-1][1]:.3f} s after it began)"
        )
    watcher.stdin.close()
    watcher.wait(30)
    return gaps


def kill_mid_ingestion(kb, url: str, work: Path) -> dict:
    from knowledge.loaders import expand_paths

    files = expand_paths([FLASK])
    first = files[:3]
    kb.ingest("big", first)
    before = len(kb.documents("big"))
    writer = subprocess.Popen(
        [sys.executable, "-c", INGEST, str(work / "a2"), url, str(FLASK)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = time.monotonic()
    while len(kb.documents("big")) <= before + 10:  # some of A2's batches are committed
        assert writer.poll() is None, "the ingestion ended before it could be killed"
        time.sleep(0.05)
    # Then kill it between writing a batch's chunks and committing them, if caught there.
    caught_at = time.monotonic()
    while uncommitted_chunks(kb) == 0 and time.monotonic() - caught_at < 30:
        pass
    writer.kill()
    writer.wait()
    killed_at = time.monotonic()
    killed_after = killed_at - started
    # B's next write waits for the killed replica's lease, while B's searches go on.
    lease: list[float] = []
    waiting = threading.Thread(target=take_lease, args=(kb, killed_at, lease))
    waiting.start()
    leftover = uncommitted_chunks(kb)
    listed = {d["source"] for d in kb.documents("big")}
    committed = {
        (source, text)
        for source, (_, texts) in kb.chunks_by_source("big").items()
        for text in texts
    }
    queries = [f"How do I use {Path(f).stem.replace('.rst', '')} in Flask?" for f in files[:40]]
    wrong, latencies, starts = 0, [], []
    for query in queries:
        starts.append(time.monotonic())
        began = time.perf_counter()
        hits = kb.search("big", query, 5, "hybrid")
        latencies.append(time.perf_counter() - began)
        wrong += sum((h.source, h.text) not in committed for h in hits)
    searched_during_lease = sum(began < killed_at + lease_wait(waiting, lease) for began in starts)
    result = kb.ingest("big", files)  # B finishes the job
    return {
        "documents_before": before,
        "killed_after_s": round(killed_after, 2),
        "documents_committed_at_kill": len(listed),
        "uncommitted_chunks_in_store_at_kill": leftover,
        "searches": len(queries),
        "hits_of_uncommitted_versions": wrong,
        "documents_with_chunks": len({source for source, _ in committed}),
        "searches_while_the_lease_was_held": searched_during_lease,
        "search_p50_s": round(statistics.median(latencies), 3),
        "search_max_s": round(max(latencies), 3),
        "b_lease_taken_over_s_after_kill": round(lease[0], 2),
        "b_ingest_errors": len(result.errors),
        "documents_after": len(kb.documents("big")),
        "files": len(files),
    }


def take_lease(kb, killed_at: float, taken: list[float]) -> None:
    with kb._folder("big").locked():
        taken.append(time.monotonic() - killed_at)


def lease_wait(waiting: threading.Thread, taken: list[float]) -> float:
    waiting.join()
    return taken[0]


def uncommitted_chunks(kb) -> int:
    """Chunks in the store that the manifest does not commit (written, not yet committed)."""
    from knowledge.manifest import store_key

    manifest = kb._committed("big")
    committed = sum(entry.chunks for entry in manifest.sources.values())
    return kb.store.count(store_key("big", manifest)) - committed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    from knowledge.embeddings import load_embedder
    from knowledge.knowledge_base import KnowledgeBase
    from knowledge.records import LEASE_SECONDS

    with tempfile.TemporaryDirectory(prefix="kbot-replicas-") as folder:
        work = Path(folder)
        server, url = start_chroma(work / "chroma")
        try:
            kb = KnowledgeBase(work / "a", load_embedder(), chroma_url=url)
            print("visibility: A ingests, B searches")
            gaps = visibility(kb, url, work, args.rounds)
            print("kill -9 of a replica mid-ingestion")
            killed = kill_mid_ingestion(kb, url, work)
        finally:
            server.terminate()
            server.wait(30)
    results = {
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs)",
        "command": "python bench/replicas.py " + " ".join(sys.argv[1:]),
        "lease_seconds": LEASE_SECONDS,
        "visibility": {
            "rounds": len(gaps),
            "after_ingest_returned_median_s": round(statistics.median(g for g, _ in gaps), 3),
            "after_ingest_returned_max_s": round(max(g for g, _ in gaps), 3),
            "after_ingest_began_median_s": round(statistics.median(g for _, g in gaps), 3),
            "after_ingest_returned_s": [round(g, 3) for g, _ in gaps],
        },
        "kill": killed,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print("| measure | value |")
    print("|---|---|")
    seen = results["visibility"]
    print(
        "| B finds A's new document, after A's ingest returned: median (max) | "
        f"{seen['after_ingest_returned_median_s']:+.3f} s "
        f"({seen['after_ingest_returned_max_s']:+.3f} s), {len(gaps)} rounds |"
    )
    print(f"| ... after A's ingest began: median | {seen['after_ingest_began_median_s']:.3f} s |")
    for key, value in killed.items():
        print(f"| kill: {key} | {value} |")


if __name__ == "__main__":
    main()
