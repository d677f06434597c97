"""run_tests: finding the test command, reading runners' counts, a real pytest run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nexus_ls.tools import ToolContext, call_tool
from nexus_ls.tools.testing import detect_test_command, parse_counts


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"pyproject.toml": "[project]\nname = 'x'\n"}, "-m pytest -q"),
        ({"setup.cfg": "[metadata]\n"}, "-m pytest -q"),
        ({"pytest.ini": "[pytest]\n"}, "-m pytest -q"),
        ({"tox.ini": "[tox]\n"}, "-m pytest -q"),
        ({"conftest.py": ""}, "-m pytest -q"),
        ({"pkg/tests/test_core.py": "def test_x(): pass\n"}, "-m pytest -q"),
        ({"lib/core_test.py": ""}, "-m pytest -q"),
        ({"package.json": json.dumps({"scripts": {"test": "jest"}})}, "npm test"),
        ({"go.mod": "module example.com/x\n"}, "go test ./..."),
        ({"Cargo.toml": "[package]\nname = 'x'\n"}, "cargo test"),
        ({"Makefile": "all:\n\techo\n\ntest: all\n\t./check\n"}, "make test"),
    ],
)
def test_detects_each_ecosystem(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    command = detect_test_command(tmp_path)
    assert command is not None and command.endswith(expected)
    if expected == "-m pytest -q":
        assert command.split()[0] in ("python", "python3")


@pytest.mark.parametrize(
    "files",
    [
        {},
        {"README.md": "# x\n"},
        {"package.json": json.dumps({"scripts": {"build": "tsc"}})},
        {"package.json": '{"scripts": {"test": "echo \\"Error: no test specified\\" && exit 1"}}'},
        {"package.json": "not json"},
        {"Makefile": "all:\n\techo test: no\n"},
        {"node_modules/dep/test_thing.py": ""},
    ],
)
def test_detects_nothing_without_a_test_setup(tmp_path: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    assert detect_test_command(tmp_path) is None


def test_without_a_test_setup_the_model_is_told_to_pass_command(tmp_path: Path) -> None:
    result = call_tool(ToolContext(root=tmp_path), "run_tests", {})
    assert not result.ok and result.category == "test"
    assert result.output.startswith("error: no test setup found")
    assert "pass `command`" in result.output


PYTEST_OUT = """\
..F
=================================== FAILURES ===================================
FAILED test_a.py::test_b - assert 1 == 2
========================= 1 failed, 2 passed in 0.05s ==========================
"""
PYTEST_Q = "F.E\n1 failed, 3 passed, 2 errors, 1 warning in 0.51s\n"
PYTEST_NONE = "\nno tests ran in 0.01s\n"
CARGO = """\
running 3 tests
test a ... ok
test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

running 1 test
test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
"""
GO_VERBOSE = """\
=== RUN   TestAdd
--- PASS: TestAdd (0.00s)
=== RUN   TestSub
--- FAIL: TestSub (0.00s)
    calc_test.go:12: got 1
=== RUN   TestMul
--- PASS: TestMul (0.00s)
FAIL
FAIL\texample.com/calc\t0.002s
ok  \texample.com/other\t0.001s
"""
GO_QUIET = (
    "ok  \texample.com/a\t0.01s\nok  \texample.com/b\t(cached)\n"
    "FAIL\texample.com/c [build failed]\n"
)
JEST = """\
Test Suites: 1 failed, 2 passed, 3 total
Tests:       1 failed, 7 passed, 8 total
Snapshots:   0 total
"""
NODE_TAP = "# tests 5\n# suites 0\n# pass 4\n# fail 1\n# cancelled 0\n"
NODE_SPEC = "ℹ tests 3\nℹ pass 3\nℹ fail 0\n"
MOCHA = "  6 passing (12ms)\n  2 pending\n  1 failing\n\n  1) thing\n"
VITEST = " Test Files  1 failed (1)\n      Tests  2 failed | 5 passed (7)\n"


@pytest.mark.parametrize(
    ("output", "counts"),
    [
        (PYTEST_OUT, (2, 1)),
        (PYTEST_Q, (3, 3)),
        (PYTEST_NONE, (0, 0)),
        (CARGO, (3, 1)),
        (GO_VERBOSE, (2, 1)),
        (GO_QUIET, (2, 1)),
        (JEST, (7, 1)),
        (NODE_TAP, (4, 1)),
        (NODE_SPEC, (3, 0)),
        (MOCHA, (6, 1)),
        (VITEST, (5, 2)),
        ("make: *** No rule to make target 'test'.  Stop.\n", None),
        ("", None),
    ],
)
def test_parses_each_runners_summary(output: str, counts: tuple[int, int] | None) -> None:
    assert parse_counts(output) == counts


def test_real_pytest_run_reports_counts(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(
        "def test_passes():\n    assert 1 + 1 == 2\n\n\ndef test_fails():\n    assert 1 + 1 == 3\n"
    )
    result = call_tool(ToolContext(root=tmp_path, command_timeout=120), "run_tests", {})
    assert result.ok and result.category == "test"
    first = result.output.splitlines()[0]
    assert first.startswith("tests: 1 passed, 1 failed (exit 1) — python")
    assert first.endswith("-m pytest -q")
    assert result.data["passed"] == 1 and result.data["failed"] == 1
    assert result.data["exit_code"] == 1
    assert "test_fails" in result.output


def test_given_command_is_used(tmp_path: Path) -> None:
    command = "printf '  4 passing (3ms)\\n  0 failing\\n'"
    result = call_tool(ToolContext(root=tmp_path), "run_tests", {"command": command})
    assert result.output.splitlines()[0] == f"tests: 4 passed, 0 failed (exit 0) — {command}"
    assert result.data["command"] == command
