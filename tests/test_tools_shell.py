"""run_command with real processes: exit codes, timeouts, cancel, huge output, secrets."""

from __future__ import annotations

import os
import re
import sys
import threading
from pathlib import Path

import pytest
from polling import alive, wait_until

from nexus_ls.tools import ToolContext, call_tool
from nexus_ls.tools.shell import command_env

PY = sys.executable


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(root=tmp_path, command_timeout=30.0)


def test_exit_code_and_combined_output(ctx: ToolContext) -> None:
    result = call_tool(ctx, "run_command", {"command": "echo out; echo err >&2; exit 3"})
    assert result.ok and result.category == "command"
    assert result.output.splitlines()[0].startswith("exit code 3 (")
    assert result.output.splitlines()[1:] == ["out", "err"]
    assert result.data["exit_code"] == 3
    assert result.data["timed_out"] is False
    assert result.data["output"] == "out\nerr\n"
    assert isinstance(result.data["duration_ms"], int)


def test_runs_in_the_root_with_bytecode_off(ctx: ToolContext) -> None:
    result = call_tool(ctx, "run_command", {"command": "pwd; echo $PYTHONDONTWRITEBYTECODE"})
    assert result.data["output"] == f"{os.path.realpath(ctx.root)}\n1\n"


def test_no_output_is_said(ctx: ToolContext) -> None:
    result = call_tool(ctx, "run_command", {"command": "true"})
    assert result.output.splitlines()[1] == "(no output)"


def test_secret_env_vars_are_not_visible(ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXUS_TEST_API_KEY", "sk-not-for-the-model-123")
    monkeypatch.setenv("NEXUS_TEST_PLAIN", "visible")
    result = call_tool(
        ctx, "run_command", {"command": 'echo "key=${NEXUS_TEST_API_KEY:-unset} $NEXUS_TEST_PLAIN"'}
    )
    assert result.data["output"] == "key=unset visible\n"
    assert "NEXUS_TEST_API_KEY" not in command_env()


def test_timeout_kills_the_whole_process_group(ctx: ToolContext) -> None:
    # The grandchild records its pid, then would write late.txt well after the timeout.
    command = "sh -c 'echo $$ > grandchild.pid; sleep 4; echo late > late.txt' & wait"
    result = call_tool(ctx, "run_command", {"command": command, "timeout": 1})
    assert not result.ok
    assert result.output.startswith("error: timed out after 1 s")
    assert result.data["timed_out"] is True and result.data["exit_code"] is None
    pid = int((ctx.root / "grandchild.pid").read_text())
    assert wait_until(lambda: not alive(pid)), "the grandchild survived the timeout"
    assert not (ctx.root / "late.txt").exists()


def test_background_children_do_not_outlive_the_command(ctx: ToolContext) -> None:
    command = (
        "sh -c 'echo $$ > bg.pid; exec sleep 60' & "
        "while [ ! -s bg.pid ]; do sleep 0.01; done; echo started"
    )
    result = call_tool(ctx, "run_command", {"command": command})
    assert result.ok and result.data["output"] == "started\n"
    pid = int((ctx.root / "bg.pid").read_text())
    assert wait_until(lambda: not alive(pid))


def test_huge_output_is_capped_keeping_head_and_tail(ctx: ToolContext) -> None:
    script = "import sys; sys.stdout.write('FIRST\\n' + ('x' * 99 + '\\n') * 50000 + 'LAST\\n')"
    ctx.step = 3
    result = call_tool(ctx, "run_command", {"command": f'{PY} -c "{script}"'})
    assert result.ok
    assert len(result.output) <= ctx.output_limit
    assert result.output.splitlines()[1] == "FIRST"
    assert result.output.rstrip().endswith("LAST")
    cut = re.search(r"\[\.\.\. lines ([\d,]+)-([\d,]+) of ([\d,]+) cut \(([\d,]+) characters\)",
                    result.output)  # fmt: skip
    assert cut is not None
    assert int(cut.group(4).replace(",", "")) > 4_900_000
    assert len(result.data["output"]) <= ctx.output_limit
    # What was cut is kept: read_output pages through it from the line the note names.
    first = int(cut.group(1).replace(",", ""))
    assert f'read them with read_output {{"step": 3, "start_line": {first}}}' in result.output
    ctx.step = 4
    more = call_tool(ctx, "read_output", {"step": 3, "start_line": first + 20_000})
    assert more.ok and f"{first + 20_000:>6}\t{'x' * 99}" in more.output
    assert "pass start_line=" in more.output


def test_cancel_kills_a_running_command(tmp_path: Path) -> None:
    cancel = threading.Event()
    ctx = ToolContext(root=tmp_path, command_timeout=60.0, cancel=cancel)
    results = []
    command = "sh -c 'echo $$ > child.pid; sleep 60' & wait"
    worker = threading.Thread(
        target=lambda: results.append(call_tool(ctx, "run_command", {"command": command}))
    )
    worker.start()
    pid_file = tmp_path / "child.pid"
    assert wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
    cancel.set()
    worker.join(timeout=20)
    assert not worker.is_alive()
    (result,) = results
    assert not result.ok and result.output.startswith("error: cancelled")
    assert result.data["cancelled"] is True
    pid = int(pid_file.read_text())
    assert wait_until(lambda: not alive(pid))


def test_already_cancelled_runs_nothing(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    ctx = ToolContext(root=tmp_path, cancel=cancel)
    result = call_tool(ctx, "run_command", {"command": "touch ran.txt"})
    assert not result.ok and "cancelled" in result.output
    assert not (tmp_path / "ran.txt").exists()


def test_bad_timeout_and_empty_command_are_refused(ctx: ToolContext) -> None:
    for args in ({"command": "true", "timeout": 0}, {"command": "true", "timeout": -5}):
        result = call_tool(ctx, "run_command", args)
        assert not result.ok and "timeout must be between" in result.output
    assert "command is empty" in call_tool(ctx, "run_command", {"command": "  "}).output
