"""How fast the language server answers while agents run.

Run from the repository root: `python -m benchmarks.lsp [--runs 8] [--requests 50]`.
It starts the real `nexus-ls` on stdio with a real LSP client (pytest-lsp's, with
VS Code's capabilities) in a temp git repository, against the scripted model server
(`tests/scripted_model.py`) on loopback, scripted so that every run's agent executes
`run_command "sleep 20"`. It times `nexus.runs` with no runs, while the runs start, while
all their agents are running and after they are cancelled; `nexus.run` itself; the cancel;
and the shutdown. Everything ends within about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import client_capabilities, make_test_lsp_client
from pytest_lsp.client import LanguageClient

from benchmarks.table import print_table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from scripted_model import ScriptedModel, call  # noqa: E402  # the test double, on loopback

HEADER = ["measure", "n", "median ms", "p95 ms", "max ms", "note"]
SLEEP = 20  # seconds each agent's command runs: longer than the measurement while running
IDENTITY = {
    "GIT_AUTHOR_NAME": "NEXUS benchmark",
    "GIT_AUTHOR_EMAIL": "nexus@localhost",
    "GIT_COMMITTER_NAME": "NEXUS benchmark",
    "GIT_COMMITTER_EMAIL": "nexus@localhost",
}


def clean_env() -> dict[str, str]:
    """No model settings from outside reach the server; commits need no machine identity."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_"))}
    return {**env, **IDENTITY}


def make_repo(root: Path) -> Path:
    root.mkdir()
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "README.md").write_text("calc\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=root, env=clean_env(), check=True)
    return root


def row(name: str, ms: Sequence[float], note: str = "") -> list[object]:
    if len(ms) == 1:
        return [name, 1, ms[0], "-", "-", note]
    ordered = sorted(ms)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return [name, len(ms), statistics.median(ordered), p95, ordered[-1], note]


async def command(client: LanguageClient, name: str, argument: dict[str, Any]) -> Any:
    params = types.ExecuteCommandParams(command=name, arguments=[argument])
    return await client.workspace_execute_command_async(params)


async def time_runs(client: LanguageClient, requests: int) -> tuple[list[float], list[Any]]:
    """`requests` nexus.runs calls one after another: each one's latency in ms, last result."""
    times, result = [], []
    for _ in range(requests):
        start = time.perf_counter()
        result = await command(client, "nexus.runs", {})
        times.append((time.perf_counter() - start) * 1000)
    return times, result


async def sample_runs(client: LanguageClient, stop: asyncio.Event, times: list[float]) -> None:
    """nexus.runs every 50 ms until `stop`: the latency seen while something else goes on."""
    while not stop.is_set():
        start = time.perf_counter()
        await command(client, "nexus.runs", {})
        times.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(0.05)


def statuses(result: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in result:
        counts[run["status"]] = counts.get(run["status"], 0) + 1
    return counts


async def until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout} s")
        await asyncio.sleep(0.05)


async def measure(runs: int, requests: int, folder: Path) -> list[list[object]]:
    repo = make_repo(folder / "repo")
    script = [call("run_command", "wait", command=f"sleep {SLEEP}") for _ in range(runs)]
    script += [call("finish", summary="stopped") for _ in range(runs)]
    rows: list[list[object]] = []
    with ScriptedModel(script) as model:
        client = make_test_lsp_client()
        events: list[Any] = []
        client.feature("nexus/event")(lambda ls, params: events.append(params))
        await client.start_io("nexus-ls", env=clean_env(), cwd=str(folder))
        options = {"nexus": {"baseUrl": model.url, "model": "scripted-model"}}
        await client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("visual-studio-code"),
                root_uri=repo.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=repo.as_uri(), name="repo")],
                initialization_options=options,
            )
        )
        client.set_configuration(options["nexus"], section="nexus")
        await command(client, "nexus.runs", {})  # warm-up: the workspace's state is made lazily

        idle, _ = await time_runs(client, requests)
        rows.append(row("nexus.runs, no runs", idle, "empty list"))

        starting: list[float] = []
        stop = asyncio.Event()
        sampler = asyncio.ensure_future(sample_runs(client, stop, starting))
        started, ids = [], []
        t0 = time.perf_counter()
        for i in range(runs):
            start = time.perf_counter()
            result = await command(client, "nexus.run", {"task": f"wait {i}"})
            started.append((time.perf_counter() - start) * 1000)
            ids.append(result["runId"])

        async def all_waiting() -> bool:
            return len(model.requests) >= runs

        await until(all_waiting, 60, "every agent to reach its command")
        ready_ms = (time.perf_counter() - t0) * 1000
        stop.set()
        await sampler
        rows.append(row("nexus.run (sequential)", started, "snapshot + worktree + spawn"))
        rows.append(row(f"nexus.runs while {runs} runs start", starting, "sampled every 50 ms"))
        rows.append(row(f"first nexus.run -> {runs} agents in sleep", [ready_ms], ""))
        before = len(events)

        busy, last = await time_runs(client, requests)
        _, after = await time_runs(client, 1)
        running = statuses(after).get("running", 0)
        note = f"{len(last)} records, {running} running after; {len(events) - before} events"
        rows.append(row(f"nexus.runs, {runs} agents running", busy, note))

        t0 = time.perf_counter()
        for run_id in ids:
            await command(client, "nexus.cancel", {"runId": run_id})

        async def all_ended() -> bool:
            _, now = await time_runs(client, 1)
            return not any(r["status"] == "running" for r in now)

        await until(all_ended, 30, "the cancelled runs to end")
        ended_ms = (time.perf_counter() - t0) * 1000
        _, final = await time_runs(client, 1)
        counts = ", ".join(f"{n} {s}" for s, n in sorted(statuses(final).items()))
        rows.append(row(f"cancel {runs} runs -> all ended", [ended_ms], counts))

        finished, _ = await time_runs(client, requests)
        rows.append(row(f"nexus.runs, {runs} finished runs", finished, "no agents"))

        t0 = time.perf_counter()
        await client.shutdown_session()
        rows.append(row("shutdown + exit", [(time.perf_counter() - t0) * 1000], "no agents"))
        await client.stop()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="runs going at once")
    parser.add_argument("--requests", type=int, default=50, help="nexus.runs calls per measure")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nexus-bench-lsp-") as tmp:
        rows = asyncio.run(asyncio.wait_for(measure(args.runs, args.requests, Path(tmp)), 110))
    print(f"{args.runs} runs, each agent in `sleep {SLEEP}`; {args.requests} requests per measure")
    print()
    print_table([HEADER, *rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
