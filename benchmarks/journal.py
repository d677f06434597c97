"""What a journal append and each `nexus log` search cost as the journal grows, as a user meets
them: every search a fresh `nexus log` process, beside `grep -c` over the same file and beside
the same search asked of the index directly with the `sqlite3` shell.

Run from the repository root: `python -m benchmarks.journal [--sizes 10000,100000,1000000]`.
For each size it writes a journal of that many events into a new repository's state folder
(runs of 97 events, 300 to 5,700 bytes each, one event every 2.6 s up to now, so 100,000
events are a month of steady use), then measures:

- appends (median and 99th percentile of 1,000 single `Journal.append` calls);
- the index built from nothing by the first search, and brought up to date after one more run;
- each search (median of 3 fresh processes) with its peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from benchmarks.table import print_table
from nexus_ls.journal import Journal, Redactor
from nexus_ls.journal.events import format_ts
from nexus_ls.journal.index import index_path

RUN_EVENTS = 97
SPACING = timedelta(seconds=2.6)
RARE = "quuxfrobnicate"  # in one event of every 20,000
COMMON = "read_file"  # in about one event of five
WORDS = (
    "def",
    "class",
    "return",
    "import",
    "self",
    "value",
    "result",
    "path",
    "file",
    "test",
    "assert",
    "error",
    "raise",
    "None",
    "True",
    "False",
    "for",
    "in",
    "if",
    "else",
    "elif",
    "while",
    "with",
    "as",
    "try",
    "except",
    "finally",
    "lambda",
    "yield",
    "async",
    "await",
    "config",
    "journal",
    "index",
    "worktree",
    "branch",
    "commit",
    "diff",
    "patch",
    "module",
    "package",
    "function",
    "args",
)
NEXUS = Path(sys.executable).with_name("nexus")
TIME = "/usr/bin/time"  # GNU time: wall time and peak memory of one process
# Children run as an installed NEXUS does, with its bytecode cached (pip compiles it when
# it installs): a machine that sets PYTHONDONTWRITEBYTECODE would time the compiler too.
# Unbuffered output would time one write per line.
CHILD_ENV = {
    k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")
}


def text(rng: random.Random, size: int) -> str:
    """Words and code-like lines of about `size` characters: text the trigrams meet in life."""
    out, length = [], 0
    while length < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
        out.append(line)
        length += len(line) + 1
    return "\n".join(out)[:size]


def run_events(rng: random.Random, run: str) -> list[dict]:
    """One run's events, shaped like a real run's: started, model turns, tools, commits, end."""
    events: list[dict] = [
        {
            "level": "INFO",
            "category": "run",
            "message": f"run started: {text(rng, 60)}",
            "data": {"task": text(rng, 200), "model": "qwen2.5-coder", "base": "ab" * 20},
        },
    ]
    for step in range(1, RUN_EVENTS - 1):
        kind = step % 5
        if kind == 0:
            event = {
                "level": "DEBUG",
                "category": "model",
                "message": "model replied",
                "data": {"text": text(rng, rng.randint(300, 1500)), "tokens": step * 31},
            }
        elif kind == 1:
            path = f"src/pkg{rng.randint(0, 40)}/mod{rng.randint(0, 300)}.py"
            event = {
                "level": "INFO",
                "category": "tool",
                "message": f"{COMMON} {path}",
                "data": {"tool": COMMON, "output": text(rng, rng.randint(800, 5000))},
            }
        elif kind == 2:
            event = {
                "level": "INFO",
                "category": "command",
                "message": "pytest -q: exit 1",
                "data": {"output": text(rng, rng.randint(400, 4000)), "exit": 1},
            }
        elif kind == 3:
            event = {
                "level": "INFO",
                "category": "edit",
                "message": "edit_file: 3 lines",
                "data": {"diff": text(rng, rng.randint(200, 1200))},
            }
        else:
            event = {
                "level": "INFO",
                "category": "metric",
                "message": f"step {step}",
                "data": {"steps": step, "ms": rng.randint(5, 900)},
            }
        event["step"] = step
        events.append(event)
    events.append(
        {
            "level": "WARNING",
            "category": "run",
            "message": "run failed: stopped at the limit",
            "data": {"summary": text(rng, 300)},
        }
    )
    for event in events:
        event["run"] = run
    return events


def build(path: Path, size: int, end: datetime) -> list[str]:
    """Write `size` events as lines (far faster than appending one by one); return run ids."""
    rng = random.Random(size)
    first = end - SPACING * size
    runs: list[str] = []
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        n = 0
        while n < size:
            run = f"20261101-{len(runs):06d}"
            runs.append(run)
            chunk = []
            for event in run_events(rng, run)[: size - n]:
                moment = first + SPACING * n
                event["id"] = f"{int(moment.timestamp() * 1000):013d}-{n:010x}"
                event["ts"] = (
                    moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
                )
                event["agent"] = event["run"]
                if n % 20_000 == 5_000:
                    event["message"] += f" {RARE}"
                chunk.append(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
                n += 1
            handle.write("\n".join(chunk) + "\n")
    return runs


def median_of(command: Sequence[str], cwd: Path, repeats: int) -> tuple[float, float, str]:
    results = [timed_child(command, cwd) for _ in range(repeats)]
    return (
        statistics.median(r[0] for r in results),
        max(r[1] for r in results),
        results[-1][2],
    )


def timed_child(command: Sequence[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds (measured here), peak MiB (GNU time's, the child's own: Python's fork
    would lend it this process's memory) and stdout of one fresh process."""
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        child = subprocess.run(
            [TIME, "-f", "%M", "-o", report.name, *command],
            cwd=cwd,
            capture_output=True,
            env=CHILD_ENV,
        )
        seconds = time.perf_counter() - start
        if child.returncode not in (0, 1):  # grep -c exits 1 when nothing matches
            error = child.stderr.decode(errors="replace")
            raise SystemExit(f"{' '.join(command)} failed ({child.returncode}): {error}")
        kilobytes = report.read().split()[-1]
    return seconds, int(kilobytes) / 1024, child.stdout.decode(errors="replace")


def appends(path: Path, batch: int) -> tuple[float, float]:
    journal = Journal(path, Redactor({}))
    costs = []
    for n in range(batch):
        start = time.perf_counter_ns()
        journal.log("INFO", "metric", f"benchmark append {n}", run="bench", data={"n": n})
        costs.append((time.perf_counter_ns() - start) / 1000)
    journal.close()
    costs.sort()
    return statistics.median(costs), costs[min(len(costs) - 1, len(costs) * 99 // 100)]


def searches(run: str) -> list[tuple[str, list[str], str, str]]:
    """(what, nexus log arguments, grep -c pattern, the index's own SQL)."""
    since = format_ts(datetime.now(timezone.utc) - timedelta(hours=1))
    rare = " AND ".join(f'"{RARE[i : i + 3]}"' for i in range(0, len(RARE) - 2, 2))
    return [
        (
            f"--grep {RARE} --limit 20",
            ["--grep", RARE, "--limit", "20"],
            RARE,
            f"SELECT count(*) FROM words WHERE words MATCH '{rare}'",
        ),
        (
            f"--grep {COMMON} --limit 20",
            ["--grep", COMMON, "--limit", "20"],
            COMMON,
            "SELECT line FROM events WHERE line IN (SELECT rowid FROM words WHERE words MATCH "
            '\'"rea" AND "d_f" AND "ile"\') ORDER BY ts DESC LIMIT 20',
        ),
        (
            f"--run {run}",
            ["--run", run],
            run,
            f"SELECT count(*) FROM events WHERE run >= '{run}' AND run < '{run}~'",
        ),
        (
            "--since 1h",
            ["--since", "1h"],
            since[:13],
            f"SELECT count(*) FROM events WHERE ts >= '{since}'",
        ),
        ("--limit 20", ["--limit", "20"], "", "SELECT line FROM events ORDER BY ts DESC LIMIT 20"),
        ("--limit 0 (the process alone)", ["--limit", "0"], "", "SELECT 1"),
    ]


def measure(folder: Path, size: int, batch: int, repeats: int) -> tuple[list, list[list]]:
    repo = folder / f"repo-{size}"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    journal = repo / ".git" / "nexus" / "journal.jsonl"
    runs = build(journal, size, datetime.now(timezone.utc))
    megabytes = journal.stat().st_size / 2**20
    nexus = [str(NEXUS), "log", "--json"]
    built, built_peak, _ = timed_child([*nexus, "--limit", "1"], repo)
    index_mb = index_path(journal).stat().st_size / 2**20
    rng = random.Random(0)
    with journal.open("a", encoding="utf-8") as handle:
        for event in run_events(rng, "20261201-000000"):
            event["ts"] = format_ts(datetime.now(timezone.utc))
            handle.write(json.dumps(event, ensure_ascii=False) + "\n")
    one_run, _, _ = timed_child([*nexus, "--limit", "1"], repo)
    median, p99 = appends(journal, batch)
    growth = [size, megabytes, index_mb, built, built_peak, one_run, median, p99]
    rows = []
    sqlite = shutil.which("sqlite3")
    for what, arguments, pattern, sql in searches(runs[len(runs) // 2]):
        seconds, peak, out = median_of([*nexus, *arguments], repo, repeats)
        found = out.count("\n")
        grep_s, grep_peak, _ = median_of(["grep", "-c", "--", pattern, str(journal)], repo, repeats)
        if sqlite:
            index_s, _, _ = median_of([sqlite, str(index_path(journal)), sql], repo, repeats)
        else:
            index_s = float("nan")
        rows.append([size, what, found, seconds, peak, grep_s, grep_peak, index_s])
    return growth, rows


def main() -> None:
    """Measure every requested size and print two tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="journal sizes, comma list")
    parser.add_argument("--batch", type=int, default=1000, help="appends timed per size")
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per search")
    args = parser.parse_args()
    if not NEXUS.exists():
        raise SystemExit(f"{NEXUS} not found: install NEXUS (pip install -e .) first")
    sizes = [int(part) for part in args.sizes.split(",") if part]
    growth = [
        [
            "events",
            "file MiB",
            "index MiB",
            "first search s (builds the index)",
            "its peak MiB",
            "after one more run s",
            "append µs (median)",
            "append µs (p99)",
        ]
    ]
    rows = [
        [
            "events",
            "nexus log ...",
            "found",
            "s",
            "peak MiB",
            "grep -c s",
            "grep peak MiB",
            "sqlite3 on the index s",
        ]
    ]
    with tempfile.TemporaryDirectory(prefix="nexus-journal-bench-") as tmp:
        for size in sizes:
            row, searched = measure(Path(tmp), size, args.batch, args.repeats)
            growth.append(row)
            rows.extend(searched)
            shutil.rmtree(Path(tmp) / f"repo-{size}")
    print_table(growth)
    print()
    print_table(rows)


if __name__ == "__main__":
    main()
