"""`nexus run` end to end: real repo, real agent process, real HTTP to the scripted model."""

from __future__ import annotations

from pathlib import Path

from conftest import make_repo, nexus, sh
from scripted_model import call

CALC = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


def user_state(repo: Path) -> dict[str, object]:
    """Everything a user would notice: files, status, index, HEAD and branches."""
    files = {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }
    return {
        "files": files,
        "status": sh(repo, "git", "status", "--porcelain", "--untracked-files=all"),
        "index": (repo / ".git" / "index").read_bytes(),
        "head": sh(repo, "git", "rev-parse", "HEAD"),
        "branches": sh(repo, "git", "branch", "--list", "--format=%(refname)"),
    }


def fix_script() -> list:
    return [
        call("run_tests", why="First I run the tests to see what fails."),
        call("read_file", why="test_add fails; I read calc.py.", path="calc.py"),
        call(
            "edit_file",
            why="add subtracts instead of adding; I fix the operator.",
            path="calc.py",
            old="return a - b",
            new="return a + b",
            reason="the test expects 2 + 3 == 5",
        ),
        call("run_tests", why="Now I check that the fix works."),
        call("finish", summary="add() now adds; test_add passes", success=True),
    ]


def test_fix_the_failing_test(tmp_path: Path, model) -> None:
    repo = make_repo(
        tmp_path / "proj", {"calc.py": CALC, "test_calc.py": TEST, "README.md": "hi\n"}
    )
    (repo / "README.md").write_text("hi, edited but not committed\n")
    (repo / "notes.txt").write_text("untracked notes\n")
    before = user_state(repo)
    server = model(fix_script())

    result = nexus(repo, "run", "fix the failing test", "--json", "--base-url", server.url)

    assert result.code == 0, result.stderr
    out = result.json()
    assert out["status"] == "succeeded"
    assert out["summary"] == "add() now adds; test_add passes"
    assert out["steps"] == 5
    assert out["tokens"]["prompt"] > 0 and out["tokens"]["completion"] > 0
    assert out["branch"] == f"nexus/{out['run_id']}"

    # The fix is on the run's branch, built on a snapshot that holds the user's dirty state.
    assert (
        sh(repo, "git", "show", f"{out['branch']}:calc.py") == "def add(a, b):\n    return a + b\n"
    )
    assert sh(repo, "git", "show", f"{out['base']}:notes.txt") == "untracked notes\n"
    assert "edited but not committed" in sh(repo, "git", "show", f"{out['base']}:README.md")
    assert sh(repo, "git", "rev-parse", out["branch"]).strip() == out["head"]

    # The user's files, status, index, HEAD and branches are as before (bar the run's branch).
    after = user_state(repo)
    assert after["files"] == before["files"]
    assert after["status"] == before["status"]
    assert after["index"] == before["index"]
    assert after["head"] == before["head"]
    assert after["branches"] == before["branches"] + f"refs/heads/{out['branch']}\n"

    # Each file-changing step is a commit with rationale and trailers.
    log = sh(repo, "git", "log", "--format=%B%x00", f"{out['base']}..{out['branch']}")
    commits = [c.strip() for c in log.split("\x00") if c.strip()]
    assert len(commits) == 1
    subject, _, rest = commits[0].partition("\n\n")
    assert subject == "add subtracts instead of adding; I fix the operator"
    assert "Reason: the test expects 2 + 3 == 5" not in rest  # the reason is said plainly
    assert "the test expects 2 + 3 == 5" in rest and "- edit calc.py: lines 2-2" in rest
    assert f"Nexus-Run: {out['run_id']}" in rest
    assert "Nexus-Step: 3" in rest

    # The journal holds the model calls, the edit's diff and the test output.
    events = nexus(repo, "log", "--run", out["run_id"], "--json").lines()
    models = [e for e in events if e["category"] == "model" and "latency_ms" in e["data"]]
    assert len(models) == 5
    assert all(e["data"]["prompt_tokens"] > 0 for e in models)
    edits = [e for e in events if e["category"] == "edit" and "commit" in e["data"]]
    assert len(edits) == 1
    assert "-    return a - b" in edits[0]["data"]["diff"]
    assert "+    return a + b" in edits[0]["data"]["diff"]
    tests = [e for e in events if e["category"] == "test"]
    counts = [(t["data"]["details"]["passed"], t["data"]["details"]["failed"]) for t in tests]
    assert counts == [(0, 1), (1, 0)]
    assert "1 passed" in tests[1]["data"]["details"]["output"]
    assert {e["run"] for e in events} == {out["run_id"]}
    assert events[0]["category"] == "run" and events[-1]["message"].startswith("run succeeded")

    # Tool results reached the model under the right tool_call_id.
    read_request = server.requests[2]["messages"]
    assistant = [m for m in read_request if m["role"] == "assistant"][-1]
    tool_msg = read_request[-1]
    assert tool_msg["role"] == "tool"
    assert tool_msg["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert "return a - b" in tool_msg["content"]


def test_review_accept_and_discard(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"calc.py": CALC, "test_calc.py": TEST, "other.txt": "x\n"})
    server = model(fix_script())
    out = nexus(repo, "run", "fix the failing test", "--json", "--base-url", server.url).json()
    run_id = out["run_id"]

    diff = nexus(repo, "diff", run_id[:15])
    assert diff.code == 0
    assert "+    return a + b" in diff.stdout

    listed = nexus(repo, "runs", "--json").json()
    assert [(r["id"], r["status"]) for r in listed] == [(run_id, "succeeded")]

    shown = nexus(repo, "show", run_id)
    assert "add subtracts instead of adding" in shown.stdout
    assert "Step 3" in shown.stdout and "+    return a + b" in shown.stdout

    # The user edits another file meanwhile; accept merges and keeps that edit.
    (repo / "other.txt").write_text("user edit\n")
    accepted = nexus(repo, "accept", run_id)
    assert accepted.code == 0, accepted.stderr
    assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert (repo / "other.txt").read_text() == "user edit\n"
    assert sh(repo, "git", "diff", "--cached") == ""  # the index is still the user's

    discarded = nexus(repo, "discard", run_id)
    assert discarded.code == 0, discarded.stderr
    assert sh(repo, "git", "branch", "--list", "nexus/*") == ""
    assert not any((repo / ".git" / "nexus" / "worktrees").iterdir())
    kept = nexus(repo, "log", "--run", run_id, "--grep", "discarded", "--json").lines()
    assert "+    return a + b" in kept[-1]["data"]["diff"]


def test_accept_refuses_conflicts_and_changes_nothing(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"calc.py": CALC, "test_calc.py": TEST})
    server = model(fix_script())
    out = nexus(repo, "run", "fix it", "--json", "--base-url", server.url).json()
    (repo / "calc.py").write_text("def add(a, b):\n    return b - a  # mine\n")
    before = (repo / "calc.py").read_bytes()

    refused = nexus(repo, "accept", out["run_id"])

    assert refused.code == 2
    assert "calc.py" in refused.stderr and "conflict" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert (repo / "calc.py").read_bytes() == before


def test_run_from_subdirectory_with_file_context(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"src/calc.py": CALC, "src/test_calc.py": TEST})
    server = model([call("finish", summary="explained")])
    result = nexus(
        repo / "src",
        "run",
        "explain add",
        "--file",
        "calc.py",
        "--lines",
        "2:2",
        "--json",
        "--base-url",
        server.url,
    )
    assert result.code == 0, result.stderr
    task = server.requests[0]["messages"][1]["content"]
    assert "explain add" in task
    assert "src/calc.py, lines 2-2" in task
    # The selection is sent, not the file around it (the project map names only `add`).
    context = task[task.index("Context:") :]
    assert "return a - b" in context and "def add" not in context


def test_secrets_never_reach_journal_or_commits(tmp_path: Path, model) -> None:
    secret = "sk-test-0123456789abcdef"
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    server = model(
        [
            call(
                "write_file", f"the key is {secret}, so I write b.txt", path="b.txt", content="x\n"
            ),
            call("finish", summary="done"),
        ]
    )
    out = nexus(
        repo, "run", "write b", "--json", "--base-url", server.url, OPENAI_API_KEY=secret
    ).json()
    assert out["status"] == "succeeded"
    journal = (repo / ".git" / "nexus" / "journal.jsonl").read_text()
    assert secret not in journal
    assert "[redacted:OPENAI_API_KEY]" in journal
    log = sh(repo, "git", "log", "--format=%B", out["branch"])
    assert secret not in log and "so I write b.txt" in log
