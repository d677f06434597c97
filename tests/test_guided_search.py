"""Sample, then verify: guided mode's candidates (the model's own, sampled with seeds of their
own, and generated edits of the suspect lines), each checked and put back when it fails.

The plans run in-process on real git repositories with the real tools; only the model is
scripted. The mutation operators and the search itself are tested on their own first.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_repo, sh
from inprocess_model import answer
from test_guided import TESTS
from test_guided_plans import ZERO, guided, prompt, tool_steps

from nexus_ls.agent.guided.mutations import mutate_line, mutations, suspect_lines
from nexus_ls.agent.guided.plans import classify, expected_output, plain_text, quoted_text
from nexus_ls.agent.guided.search import Candidate, Search
from nexus_ls.agent.model import GREEDY
from nexus_ls.agent.outcome import RunStopped
from nexus_ls.config import Limits
from nexus_ls.tools import ToolResult

DEMO = "def add(a, b):\n    return a - b\n\n\ndef multiply(a, b):\n    return a * b\n"
DEMO_TESTS = (
    "from calc import add, multiply\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
    "def test_multiply():\n    assert multiply(4, 5) == 20\n"
)
FAILED = "FAILED test_calc.py::test_add - assert -1 == 5\n +  where -1 = add(2, 3)\n"


@pytest.fixture(autouse=True)
def bare_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


# The mutation operators ---------------------------------------------------------------------


def test_operators_numbers_and_names_each_give_their_edits() -> None:
    made = mutate_line("    if n % 2 == 1:", 3, ["n", "total"])
    assert [m.new for m in made] == [
        "    if n // 2 == 1:",
        "    if n % 2 != 1:",
        "    if n % 3 == 1:",
        "    if n % 1 == 1:",
        "    if n % 2 == 2:",
        "    if n % 2 == 0:",
        "    if total % 2 == 1:",
    ]
    assert made[0].operator == "`%` → `//`" and made[2].operator == "`2` → `3` (off by one)"


def test_nothing_inside_a_string_or_a_comment_changes() -> None:
    made = mutate_line('    return "a - b" + x  # a - b', 1, ["x"])
    assert [m.new for m in made] == [
        '    return "a - b" - x  # a - b',
        '    return "a - b" * x  # a - b',
    ]


def test_suspects_are_the_traceback_lines_then_the_functions_the_output_names() -> None:
    source = (
        "def helper(x):\n    return x\n\n\ndef add(a, b):\n"
        '    """Add."""\n    total = a - b\n    return total\n'
    )
    output = 'File "calc.py", line 2, in helper\nassert add(2, 3) == 5\n'
    found = suspect_lines(source, "calc.py", output)
    # line 2 from the traceback; add's body without its docstring, with its names in scope
    assert found == [(2, ["x"]), (7, ["a", "b", "total"]), (8, ["a", "b", "total"])]


def test_the_demo_bug_is_among_the_generated_edits() -> None:
    made = mutations(DEMO, "calc.py", FAILED)
    assert made[0].new == "    return a + b" and made[0].number == 2
    # multiply is not named by the failure, so none of its lines is touched
    assert all(m.number == 2 for m in made)


def test_a_line_found_twice_is_not_mutated() -> None:
    twice = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"
    assert mutations(twice, "calc.py", "assert add(2, 3) == 5") == []


# The search ---------------------------------------------------------------------------------


def test_a_check_that_stops_the_run_still_puts_the_candidate_back() -> None:
    log: list[str] = []

    def check(c: Candidate) -> tuple[bool, str]:
        raise RunStopped("cancelled", "cancelled by the user")

    search = Search(
        emit=lambda *a, **k: None,
        steps_left=lambda: 10,
        limit=3,
        mark=lambda: "abc",
        apply=lambda c: (log.append(f"apply {c.how}"), ToolResult(True, "ok"))[1],
        check=check,
        put_back=lambda at: (log.append(f"put back to {at}"), ToolResult(True, "ok"))[1],
    )
    with pytest.raises(RunStopped):
        search.run([Candidate("model", "greedy", {"content": "x"})])
    assert log == ["apply greedy", "put back to abc"]


# The plans with candidates ------------------------------------------------------------------


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "demo", {"calc.py": DEMO, "test_calc.py": DEMO_TESTS})


def test_the_demo_bug_is_fixed_by_the_generated_edit_the_model_ranks_first(demo: Path) -> None:
    base = sh(demo, "git", "rev-parse", "HEAD").strip()
    script = [
        answer(line="def add(a, b):", new="assert -1 == 5"),  # what the bundled model wrote
        answer(choice="1"),  # its pick among the generated edits
    ]
    ran = guided(demo, script, "fix the failing test")

    assert ran.outcome.status == "succeeded", ran.outcome.summary
    assert ran.outcome.summary == (
        "fixed calc.py with a generated edit, candidate 2 of 2 tried (`-` → `+` on line 2; "
        "the model ranked it first): `return a - b` -> `return a + b`; "
        "tests: 2 passed, 0 failed"
    )
    ranking = prompt(ran, 1)
    assert "1: line 2: `return a + b` (`-` → `+`)" in ranking
    assert ran.model.schemas[1]["properties"]["choice"]["enum"] == ["1", "2", "3"]
    # The model's own try was put back before the generated edit was tried.
    assert tool_steps(ran) == ["run_tests", "read_file"] + [
        "edit_file", "run_tests", "write_file", "edit_file", "run_tests"
    ]  # fmt: skip
    messages = [e["message"] for e in ran.events if "candidate" in e["data"]]
    assert messages[0].startswith("candidate 1 of at most 8, the model's own answer (greedy): ")
    assert messages[0].endswith("— put back")
    assert messages[1].endswith("tests: 2 passed, 0 failed — kept")
    assert sh(demo, "git", "diff", base, "HEAD", "--", "calc.py").count("+    return a + b") == 1


def test_the_model_ranks_but_the_tests_decide(demo: Path) -> None:
    script = [
        answer(line="def add(a, b):", new="assert -1 == 5"),
        answer(choice="2"),  # ranks `return b - b`, which is wrong
    ]
    ran = guided(demo, script, "fix the failing test")

    assert ran.outcome.status == "succeeded"
    tried = [e["data"] for e in ran.events if "candidate" in e["data"]]
    # its pick first, then the other generated edits in order, before any sampled fix
    assert [(t["source"], t["change"]["new"].strip(), t["passed"]) for t in tried] == [
        ("model", "assert -1 == 5", False),
        ("generated", "return b - b", False),
        ("generated", "return a + b", True),
    ]
    assert ran.model.samplings == [GREEDY, GREEDY]  # the fix and the ranking, no sample
    assert "with a generated edit, candidate 3 of 3 tried (`-` → `+` on line 2)" in (
        ran.outcome.summary
    )


def test_sampled_fixes_come_once_the_generated_edits_are_used_up(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"calc.py": ZERO, "test_calc.py": TESTS})
    script = [
        answer(line="    return 0", new="return a * b"),
        answer(line="    return 0", new="return a + b"),  # the first sample, seed 1
    ]
    ran = guided(repo, script, "fix the failing test")

    assert ran.outcome.status == "succeeded"
    data = [e["data"] for e in ran.events if "candidate" in e["data"]]
    tried = [(d["source"], d["how"]) for d in data]
    assert tried == [
        ("model", "greedy"),
        ("generated", "`0` → `1` (off by one) on line 2"),
        ("model", "temperature 0.8, seed 1"),
    ]


def test_prose_for_a_program_gets_a_generated_one_line_program(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"README.md": "demo\n"})
    ran = guided(repo, [answer(content="Hello, World!")], "create hello.py that prints hello")

    assert ran.outcome.status == "succeeded", ran.outcome.summary
    assert ran.outcome.summary.startswith(
        "created hello.py with a generated edit, candidate 2 of 2 tried (the model's text, "
        "which is not Python, printed by a one-line program); `python3 hello.py` exited 0, "
        "printing: Hello, World!"
    )
    assert sh(repo, "git", "show", "HEAD:hello.py") == "print('Hello, World!')\n"


def test_a_program_that_prints_something_else_is_not_kept(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"README.md": "demo\n"})
    script = [answer(content="print('bye')"), answer(content="print('good morning')")]
    ran = guided(repo, script, 'create greet.py that prints "good morning"')

    assert ran.outcome.status == "succeeded"
    tried = [e["data"] for e in ran.events if "candidate" in e["data"]]
    assert tried[0]["check"] == "`python3 greet.py` exited 0 but did not print 'good morning'"
    assert "It must print 'good morning'." in prompt(ran, 1)
    assert (repo / "greet.py").read_text() == "print('good morning')\n"


def test_appending_a_line_checks_the_text_is_there(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"README.md": "# Demo\n\nA demo.\n"})
    base = sh(repo, "git", "rev-parse", "HEAD").strip()
    task = 'add the line "Tests run with pytest." to README.md'
    ran = guided(repo, [answer(text="Run the tests.")], task)

    assert ran.outcome.status == "succeeded", ran.outcome.summary
    assert ran.outcome.summary == (
        "added 'Tests run with pytest.' to README.md with a generated edit, candidate 2 of 2 "
        "tried (the text the task quotes, as a new last line)"
    )
    assert (repo / "README.md").read_text() == "# Demo\n\nA demo.\nTests run with pytest.\n"
    assert "This is README.md:\n# Demo" in prompt(ran, 0)
    assert sh(repo, "git", "diff", "--numstat", base, "HEAD") == "1\t0\tREADME.md\n"


def test_a_fix_within_the_steps_left_never_leaves_a_broken_file(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"calc.py": DEMO, "test_calc.py": TESTS})
    bad = answer(line="    return a - b", new="return a * b")
    # run_tests, read_file, then one try of three steps fits in 6; a second would not
    ran = guided(
        repo, [bad, answer(choice="2")], "fix the failing test", limits=Limits(max_steps=6)
    )

    assert ran.outcome.status == "failed"
    assert "the search stopped: 1 step was left, and a try needs 3" in ran.outcome.summary
    assert (repo / "calc.py").read_text() == DEMO


def test_words_that_pick_the_new_plans() -> None:
    assert expected_output("create hello.py that prints hello") == "hello"
    assert expected_output('write greet.py that prints "good morning"') == "good morning"
    assert expected_output("create a.py that prints the numbers") is None
    assert quoted_text('add "x" to `README.md`') == "x"
    assert plain_text("Hello, World!\n") and not plain_text("print('hi')\n")


def test_a_quoted_line_for_a_document_is_an_append(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"README.md": "hi\n", "calc.py": DEMO})
    plan = classify('append "## License" to README.md', repo)
    assert (plan.kind, plan.target, plan.text) == ("append", "README.md", "## License")
    assert classify("add a docstring to calc.py", repo).kind == "generic"


def test_a_put_back_removes_what_the_check_wrote_too(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"README.md": "demo\n"})
    base = sh(repo, "git", "rev-parse", "HEAD").strip()
    litter = "open('junk.txt', 'w').write('x')\nprint('bye')"
    ran = guided(
        repo, [answer(content=litter)], "create hello.py that prints hello",
        limits=Limits(candidates=1),
    )  # fmt: skip

    assert ran.outcome.status == "failed"
    assert "hello.py is not there" in ran.outcome.summary
    assert not (repo / "junk.txt").exists() and not (repo / "hello.py").exists()
    assert sh(repo, "git", "diff", base, "HEAD") == ""


def test_a_path_with_dots_is_checked_and_removed_as_written(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"README.md": "demo\n"})
    ran = guided(
        repo, [answer(content="print('bye')")], "create a/../x.py that prints hi",
        limits=Limits(candidates=1),
    )  # fmt: skip

    assert ran.outcome.status == "failed"
    tried = [e["data"] for e in ran.events if "candidate" in e["data"]]
    assert tried[0]["check"] == "`python3 x.py` exited 0 but did not print 'hi'"
    assert not (repo / "x.py").exists()


def test_text_the_document_held_already_does_not_pass_the_check(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"README.md": "# Usage\n\nRun make.\n"})
    ran = guided(repo, [answer(text="junk")], "append 'Run make.' to README.md")

    assert ran.outcome.status == "succeeded"
    tried = [e["data"] for e in ran.events if "candidate" in e["data"]]
    assert tried[0]["check"] == "README.md does not gain 'Run make.'"
    assert (repo / "README.md").read_text() == "# Usage\n\nRun make.\nRun make.\n"


def test_questions_and_code_edits_are_not_appends(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"README.md": "hi\n", "calc.py": DEMO})
    assert classify("What does README.md say about the `add` command?", repo).kind == "explain"
    assert classify("add a docstring to `add` in calc.py and README.md", repo).kind != "append"
    plan = classify("Add a line 'Don't panic' to README.md", repo)
    assert (plan.kind, plan.text) == ("append", "Don't panic")


def test_a_bare_word_is_the_expected_output_only_at_the_end() -> None:
    assert expected_output("create count.py that prints numbers 1 to 10") is None
    assert expected_output("create fib.py that prints Fibonacci numbers") is None
    assert expected_output("create hi.py that prints hi.") == "hi"


def test_lines_inside_a_multi_line_string_are_not_mutated() -> None:
    source = 'def add(a, b):\n    note = """\n    a - b\n    """\n    return a - b\n'
    made = mutations(source, "calc.py", "assert add(2, 3) == 5")
    assert {m.number for m in made} == {5}


def test_a_put_back_that_fails_stops_the_run_and_says_so() -> None:
    search = Search(
        emit=lambda *a, **k: None,
        steps_left=lambda: 10,
        limit=3,
        mark=lambda: "abc",
        apply=lambda c: ToolResult(True, "ok"),
        check=lambda c: (False, "tests: 0 passed, 1 failed"),
        put_back=lambda at: ToolResult(False, "error: the disk is full"),
    )
    with pytest.raises(RunStopped) as stopped:
        search.run([Candidate("model", "greedy", {"content": "x"})])
    assert str(stopped.value) == (
        "could not put back the model's own answer (greedy): error: the disk is full; "
        "the branch holds it"
    )
