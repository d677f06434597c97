"""What a journal append and a journal search cost as the journal grows.

Run from the repository root: `python -m benchmarks.journal [--sizes 1000,100000,1000000]`.
For each size it writes a journal of that many events straight to a temp file, then times
`Journal.append` (median and 99th percentile of a batch of single appends), the first read
(parsing the whole file into memory), then a `grep` search and a run filter on it. Beside it,
the stock TinyDB JSONStorage insert, which rewrites the whole file each time, at sizes it can
still reach.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tinydb import TinyDB

from benchmarks.table import print_table
from nexus_ls.journal import Journal, Redactor, make_event

HEADER = [
    "events",
    "append µs (median)",
    "append µs (p99)",
    "file MB",
    "first read s",
    "grep s",
    "run filter s",
    "TinyDB JSONStorage insert ms",
]
EVENTS_PER_RUN = 1000


def event(i: int) -> dict:
    """A plausible tool event; one in the middle of the file carries the grep needle."""
    path = f"src/pkg{i % 37}/mod{i % 101}.py"
    message = "needle in the haystack" if i == 0 else f"read_file {path}"
    return {
        "id": f"{1714550400000 + i:013d}-{i:08x}",
        "ts": f"2024-05-01T{i // 3_600_000 % 24:02d}:{i // 60_000 % 60:02d}:"
        f"{i // 1000 % 60:02d}.{i % 1000:03d}Z",
        "level": "INFO",
        "category": "tool",
        "run": f"20240501-{i // EVENTS_PER_RUN:05d}",
        "agent": None,
        "step": i % EVENTS_PER_RUN,
        "message": message,
        "data": {"tool": "read_file", "arguments": {"path": path}, "ok": True, "ms": i % 50},
    }


def build(path: Path, size: int) -> None:
    """Write `size` events as lines directly: far faster than appending them one by one."""
    middle = size // 2
    with path.open("w", encoding="utf-8") as handle:
        chunk = []
        for i in range(size):
            chunk.append(json.dumps(event(0 if i == middle else i + 1), separators=(",", ":")))
            if len(chunk) == 10_000:
                handle.write("\n".join(chunk) + "\n")
                chunk.clear()
        if chunk:
            handle.write("\n".join(chunk) + "\n")


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def journal_cells(folder: Path, size: int, batch: int) -> list[object]:
    path = folder / f"journal-{size}.jsonl"
    build(path, size)
    journal = Journal(path, Redactor())
    costs = []
    for n in range(batch):
        start = time.perf_counter_ns()
        journal.log("INFO", "metric", f"benchmark append {n}", run="bench", data={"n": n})
        costs.append((time.perf_counter_ns() - start) / 1000)
    costs.sort()
    megabytes = path.stat().st_size / 1e6
    first_read = timed(journal.storage.read)
    grep = timed(lambda: journal.query(grep="NEEDLE"))
    run = f"20240501-{size // 2 // EVENTS_PER_RUN:05d}"
    run_filter = timed(lambda: journal.query(run=run))
    journal.close()
    path.unlink()
    return [
        statistics.median(costs),
        costs[min(len(costs) - 1, len(costs) * 99 // 100)],
        megabytes,
        first_read,
        grep,
        run_filter,
    ]


def tinydb_insert_ms(folder: Path, size: int, inserts: int) -> float:
    """Median ms of one insert into a stock TinyDB (JSONStorage) file of `size` events."""
    path = folder / f"tinydb-{size}.json"
    docs = [make_event("INFO", "tool", f"read_file {i}", data={"n": i}) for i in range(size)]
    costs = []
    with TinyDB(path) as db:
        table = db.table("events")
        table.insert_multiple(docs)
        for n in range(inserts):
            costs.append(timed(lambda n=n: table.insert(docs[n % size])) * 1000)
    path.unlink()
    return statistics.median(costs)


def main() -> None:
    """Measure every requested size and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000,1000000", help="journal sizes, comma list")
    parser.add_argument("--tinydb-sizes", default="1000,20000", help="stock TinyDB sizes")
    parser.add_argument("--batch", type=int, default=1000, help="appends timed per size")
    parser.add_argument("--tinydb-inserts", type=int, default=20, help="TinyDB inserts timed")
    args = parser.parse_args()
    sizes = [int(text) for text in args.sizes.split(",") if text]
    tiny_sizes = [int(text) for text in args.tinydb_sizes.split(",") if text]
    rows: list[list[object]] = [HEADER]
    with tempfile.TemporaryDirectory(prefix="nexus-journal-bench-") as tmp:
        folder = Path(tmp)
        for size in sorted(set(sizes) | set(tiny_sizes)):
            cells = journal_cells(folder, size, args.batch) if size in sizes else ["-"] * 6
            if size in tiny_sizes:
                tiny: object = tinydb_insert_ms(folder, size, args.tinydb_inserts)
            elif tiny_sizes and size > max(tiny_sizes):
                tiny = "out of reach (rewrites the whole file per insert)"
            else:
                tiny = "-"
            rows.append([size, *cells, tiny])
    print_table(rows)


if __name__ == "__main__":
    main()
