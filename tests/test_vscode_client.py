"""The VS Code extension's requests, sent by Microsoft's protocol client in Node to a real
`nexus-ls` (editor-clients/vscode/test/e2e/server.test.ts), against the scripted model.

VS Code itself cannot be launched here (it is a download); everything the extension
sends and reads goes through the modules this drives, unchanged."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import clean_env, make_repo, sh
from test_neovim import autonomy_script, server_command
from test_run_end_to_end import CALC, TEST, fix_script

EXTENSION = Path(__file__).resolve().parent.parent / "editor-clients" / "vscode"
E2E = EXTENSION / "out" / "test" / "e2e" / "server.test.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="no Node.js: the VS Code extension needs it")


def drive(tmp_path: Path, scenario: str, repo: Path, base_url: str) -> dict[str, Any]:
    if not E2E.exists():
        pytest.fail(
            f"{E2E.relative_to(EXTENSION)} is not built: run `npm ci` and `npm run compile` "
            f"in {EXTENSION.name} (the README's test command does)"
        )
    out = tmp_path / "observed.json"
    params = tmp_path / "params.json"
    params.write_text(
        json.dumps(
            {
                "scenario": scenario,
                "repo": str(repo),
                # as a user sets nexus.server.*: `python -m nexus_ls` for one scenario,
                # the `nexus-ls` command for the other
                "server": {"python": sys.executable}
                if scenario == "review"
                else {"command": server_command()},
                "baseUrl": base_url,
                "out": str(out),
            }
        )
    )
    assert NODE is not None
    proc = subprocess.run(
        [NODE, "--test", "--test-reporter=spec", str(E2E)],
        cwd=EXTENSION,
        env=clean_env(NEXUS_E2E_PARAMS=str(params)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out.exists(), proc.stdout
    observed: dict[str, Any] = json.loads(out.read_text())
    return observed


def test_run_on_a_selection_watch_review_and_accept(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"calc.py": CALC, "test_calc.py": TEST})
    server = model(fix_script())

    seen = drive(tmp_path, "review", repo, server.url)

    run_id = seen["run_id"]
    assert seen["status"] == "succeeded"
    assert seen["branch"] == f"nexus/{run_id}"
    # The settings as VS Code reports them (every key, null when unset, the extension's
    # own server.* keys) reached the server without one warning.
    assert seen["setting_warnings"] == []
    # The selection, its text and the diagnostic inside it reached the agent.
    task = server.requests[0]["messages"][1]["content"]
    assert "calc.py, lines 1-2" in task and "return a - b" in task and "add subtracts" in task

    # Progress for VS Code: one token, begun with the task, reported, ended with the outcome.
    (token,) = seen["progress_tokens"]
    progress = [p for p in seen["progress"] if p["token"] == token]
    assert progress[0]["kind"] == "begin" and progress[0]["message"] == "fix the failing test"
    assert any(p["kind"] == "report" and "edit_file" in p["message"] for p in progress)
    assert progress[-1] == {
        "token": token,
        "kind": "end",
        "message": "succeeded: add() now adds; test_add passes",
    }

    # The output channel: a line per event, from the run's start to its accept and what
    # the workspace learned from it.
    channel = seen["output_channel"]
    assert channel[0].endswith(f"INFO    run     {run_id}: run started: fix the failing test")
    end = [i for i, line in enumerate(channel) if "run succeeded: add() now adds" in line]
    accepted = [i for i, line in enumerate(channel) if ": run accepted: 1 file changed" in line]
    assert len(end) == len(accepted) == 1 and end[0] < accepted[0]
    assert any("INFO    memory  " in line and "learned" in line for line in channel)

    # "Show runs": the run with its status, and what can be done with it.
    assert seen["picks"] == [["$(pass) fix the failing test", f"succeeded · {run_id}"]]
    assert seen["actions"] == ["show", "review", "accept", "discard"]

    # The diff editor's two sides: the base snapshot and the branch's tip, from git.
    assert seen["tip"] == sh(repo, "git", "rev-parse", f"nexus/{run_id}").strip()
    assert seen["files"] == [["M", "calc.py"]]
    assert seen["base_side"] == CALC
    assert seen["tip_side"] == "def add(a, b):\n    return a + b\n"
    assert "+    return a + b" in seen["diff"]

    # The report opened through window/showDocument; the log search as a document.
    (shown,) = seen["shown"]
    assert shown["uri"].endswith(f"/nexus/reports/{run_id}.md") and shown["takeFocus"]
    log = seen["log_document"].splitlines()
    assert log[0] == "NEXUS log (category=test): 2 event(s), oldest first"
    assert "0 passed, 1 failed" in log[2] and "1 passed, 0 failed" in log[3]

    # Accept: the working tree has the fix, and the open document was updated.
    assert seen["accepted"]["files"] == ["calc.py"]
    assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    (edit,) = seen["edits"]
    assert edit["label"] == f"NEXUS: accept run {run_id}"


def test_plan_approval_memory_and_cancel(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"calc.py": CALC})
    server = model(autonomy_script())

    seen = drive(tmp_path, "autonomy", repo, server.url)

    run_id = seen["run_id"]
    assert seen["status"] == "succeeded"
    assert seen["setting_warnings"] == []
    # The approval: one question with the three choices; the user's "Deny" reached the run.
    (question,) = seen["questions"]
    assert question["message"].startswith(f"NEXUS run {run_id} asks to run `git push origin main`")
    assert [a["title"] for a in question["actions"]] == ["Allow once", "Allow for this run", "Deny"]
    told = [m for m in server.requests[4]["messages"] if m["role"] == "tool"][-1]["content"]
    assert told.startswith("error: not run:")
    assert any("refused (the editor's user)" in line for line in seen["output_channel"])

    # The tree view's plan node followed each new plan; the journal gives the same latest.
    assert seen["plans"] == ["plan 0/3 done", "plan 1/3 done", "plan 2/3 done"]
    assert seen["plan_from_journal"] == "plan 2/3 done"
    assert [s["status"] for s in seen["plan_steps"]] == ["done", "done", "in_progress"]

    # The memory view listed what the run learned; forget removed it.
    assert "The API schema is generated by `make schema`" in seen["lesson"]
    assert seen["lesson"].startswith("L") and seen["lesson_run"] == run_id
    assert not any("make schema" in text for text in seen["after_forget"])

    # The status bar counted the hung run, then cancel ended it.
    assert seen["live_while_running"] == 1
    assert seen["cancelled"] == "cancelled"
    assert seen["live_after"] == 0
