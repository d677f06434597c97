"""What recall and adding a lesson cost as the workspace's memory grows.

    python -m benchmarks.memory [--sizes 1000,10000] [--repeats 15]

For each size it writes a memory file of that many lessons straight to a temp folder
(texts of 8-20 words drawn from a 5,000-word vocabulary with a skew, like real lessons'
mix of common and rare words), then times, as the median of `--repeats`: the first
ranking in a fresh `WorkspaceMemory` (parsing the file and building the BM25 index, what
a new `nexus run` pays once); a warm ranking for a 4-word query (what a long-lived host
pays per `recall` or run start); a whole served `recall` (ranking, recording the use in
the file, journaling it); and adding one lesson (the secret check, the locked write of
the whole file, fsynced, and its journal event).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.table import print_table
from nexus_ls.journal import Journal, Redactor
from nexus_ls.memory import WorkspaceMemory
from nexus_ls.memory.store import MEMORY_FILE

HEADER = [
    "lessons",
    "file MB",
    "first rank ms",
    "rank ms (median)",
    "recall served ms (median)",
    "add ms (median)",
]
VOCABULARY = [f"word{n}" for n in range(5000)] + [
    "test", "tests", "command", "pytest", "fix", "failing", "module", "import", "config",
    "docs", "build", "lint", "deploy", "database", "fixture", "api", "schema", "cache",
]  # fmt: skip
TS = "2026-12-01T00:00:00.000Z"


def text(rng: random.Random) -> str:
    # Zipf-like: low indices (and the real words at the end) come up far more often.
    words = [VOCABULARY[min(int(rng.paretovariate(0.8)) - 1, len(VOCABULARY) - 1)]
             if rng.random() < 0.7 else rng.choice(VOCABULARY)
             for _ in range(rng.randint(8, 20))]  # fmt: skip
    return " ".join(words)


def build(state: Path, size: int, rng: random.Random) -> None:
    docs = {
        str(n): {
            "id": f"L{n}", "text": text(rng), "tags": rng.sample(VOCABULARY[-18:], 2),
            "source_run": f"20261201-{n:09d}-0000", "evidence": [f"{n:013d}-00"],
            "weight": 1.0, "uses": 0, "created": TS, "last_confirmed": TS, "kind": "fix",
            "key": f"fix:{n}", "command": None, "used_by": [],
        }
        for n in range(1, size + 1)
    }  # fmt: skip
    meta = {"1": {"last_id": size, "texts": size}}
    (state / MEMORY_FILE).write_text(json.dumps({"lessons": docs, "meta": meta}))


def median_ms(fn: Callable[[int], object], repeats: int) -> float:
    times = []
    for n in range(repeats):
        started = time.perf_counter()
        fn(n)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(size: int, repeats: int) -> list[object]:
    rng = random.Random(size)
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder)
        build(state, size, rng)
        queries = [" ".join(rng.sample(VOCABULARY[:200] + VOCABULARY[-18:], 4))
                   for _ in range(repeats)]  # fmt: skip

        def fresh() -> WorkspaceMemory:
            return WorkspaceMemory(state, Journal(state / "journal.jsonl", Redactor(environ={})))

        first = median_ms(lambda n: fresh().ranked(queries[n]), repeats)
        memory = fresh()
        memory.ranked("warm up")
        warm = median_ms(lambda n: memory.ranked(queries[n]), repeats)
        served = median_ms(lambda n: memory.recall("20261202-000000000-0000", queries[n]), repeats)
        added = median_ms(lambda n: memory.add(f"{text(rng)} lesson {n}"), repeats)
        megabytes = (state / MEMORY_FILE).stat().st_size / 1e6
    return [size, round(megabytes, 2), round(first, 1), round(warm, 2), round(served, 1),
            round(added, 1)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rows: list[list[object]] = [HEADER]
    for size in (int(s) for s in args.sizes.split(",")):
        rows.append(measure(size, args.repeats))
    print_table(rows)


if __name__ == "__main__":
    main()
