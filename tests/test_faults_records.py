"""Run records that are damaged, missing or behind their branch never hide or lose a run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import agent_pid, make_repo, nexus, sh, start_nexus
from scripted_model import call, hang
from test_run_cancel import pid_gone, wait_for

FILES = {"a.txt": "a\n", "notes.md": "mine\n"}
DAMAGE = {
    "empty": "",
    "truncated": '{"id": "RUN", "task": "half',
    "task-a-number": '{"id": "RUN", "task": 42, "status": "succeeded"}',
    "unknown-status": '{"id": "RUN", "task": "t", "status": "exploded"}',
    "tampered-id": '{"id": "../../x", "task": "t", "status": "succeeded", "base": "B",'
    ' "branch": "nexus/x"}',
    "not-an-object": "[1, 2]",
    "git-option-base": '{"id": "RUN", "task": "t", "status": "succeeded",'
    ' "base": "--output=/tmp/nexus-pwned", "branch": "nexus/RUN"}',
    "other-branch": '{"id": "RUN", "task": "t", "status": "succeeded", "branch": "main"}',
    "huge-pid": '{"id": "RUN", "task": "t", "status": "running", "host_pid": 1' + "0" * 30 + "}",
    "negative-pid": '{"id": "RUN", "task": "t", "status": "running", "host_pid": -1}',
    "deep": "[" * 100_000 + "]" * 100_000,
}
PROBLEM = {
    "empty": "it is empty",
    "truncated": "it is not JSON",
    "task-a-number": "task is int, not text",
    "unknown-status": "status 'exploded' is not one NEXUS writes",
    "tampered-id": "its id '../../x' is not its file's name",
    "not-an-object": "it holds list, not an object",
    "git-option-base": "base '--output=/tmp/nexus-pwned' is not a commit id",
    "other-branch": "branch 'main' is not nexus/",
    "huge-pid": "is not a process id",
    "negative-pid": "host_pid -1 is not a process id",
    "deep": "nested too deeply",
    "link-to-a-device": "it is a symbolic link",
    "fifo": "it is not a regular file",
}


def state(repo: Path) -> Path:
    return repo / ".git" / "nexus"


def tree_bytes(repo: Path) -> dict[str, bytes]:
    return {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }


@pytest.fixture
def finished_run(tmp_path: Path, model) -> tuple[Path, str]:
    repo = make_repo(tmp_path / "proj", FILES)
    server = model(
        [call("write_file", path="new.txt", content="n\n"), call("finish", summary="ok")]
    )
    out = nexus(repo, "run", "add a file", "--json", "--base-url", server.url).json()
    return repo, out["run_id"]


def commits(repo: Path, run_id: str) -> list[dict]:
    """The run's commit events (its tools' own `edit` events have no commit)."""
    edits = nexus(repo, "log", "--run", run_id, "--category", "edit", "--json").lines()
    return [event for event in edits if "commit" in event["data"]]


def plant(repo: Path, name: str) -> str:
    run_id = f"20200101-000000000-{name}"
    path = state(repo) / "runs" / f"{run_id}.json"
    if name == "link-to-a-device":
        path.symlink_to("/dev/zero")  # reading it would never end
    elif name == "fifo":
        os.mkfifo(path)  # reading it would block for ever
    else:
        path.write_text(DAMAGE[name].replace("RUN", run_id))
    return run_id


def test_damaged_records_are_listed_and_never_hide_the_others(finished_run) -> None:
    repo, good = finished_run
    planted = {plant(repo, name): name for name in PROBLEM}

    listed = nexus(repo, "runs")
    as_json = nexus(repo, "runs", "--json")

    assert listed.code == 0 and as_json.code == 0, listed.stderr + as_json.stderr
    assert good in listed.stdout and "succeeded" in listed.stdout
    entries = {entry["id"]: entry for entry in as_json.json()}
    assert entries[good]["status"] == "succeeded"
    for run_id, name in planted.items():
        assert entries[run_id]["status"] == "damaged"
        assert PROBLEM[name] in entries[run_id]["error"]
        line = next(line for line in listed.stdout.splitlines() if line.startswith(run_id))
        assert "damaged" in line and PROBLEM[name] in line


@pytest.mark.parametrize("name", ["tampered-id", "git-option-base", "huge-pid"])
def test_a_tampered_record_is_refused_before_accept_writes_anything(finished_run, name) -> None:
    repo, _ = finished_run
    run_id = plant(repo, name)
    before = tree_bytes(repo)

    for command in ("accept", "diff", "show"):
        result = nexus(repo, command, run_id)
        assert result.code == 2, (command, result.stdout, result.stderr)
        assert "damaged" in result.stderr and "Traceback" not in result.stderr
    assert tree_bytes(repo) == before
    assert not Path("/tmp/nexus-pwned").exists()
    assert nexus(repo, "discard", run_id).code == 0


@pytest.mark.parametrize("name", ["fifo", "link-to-a-device"])
def test_discard_removes_a_record_that_is_not_a_file_without_reading_it(finished_run, name) -> None:
    repo, good = finished_run
    run_id = plant(repo, name)

    result = nexus(repo, "discard", run_id, timeout=30)

    assert result.code == 0, result.stderr
    assert [entry["id"] for entry in nexus(repo, "runs", "--json").json()] == [good]


def test_discard_removes_a_damaged_record_and_keeps_it_in_the_journal(finished_run) -> None:
    repo, good = finished_run
    run_id = plant(repo, "task-a-number")

    result = nexus(repo, "discard", run_id)

    assert result.code == 0, result.stderr
    assert f"discarded damaged run {run_id}" in result.stdout
    ids = [entry["id"] for entry in nexus(repo, "runs", "--json").json()]
    assert ids == [good]
    (event,) = nexus(repo, "log", "--run", run_id, "--json").lines()
    assert '"task": 42' in event["data"]["record"]


def test_orphaned_branch_and_worktree_are_listed_and_discarded(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj", FILES)
    orphan = "20200101-000000000-dead"
    worktree = state(repo) / "worktrees" / orphan
    sh(repo, "git", "worktree", "add", "-q", "-b", f"nexus/{orphan}", str(worktree))
    (worktree / "a.txt").write_text("changed by a run nobody recorded\n")
    sh(worktree, "git", "commit", "-qam", "half a run")
    packed = "20200101-000000000-pack"  # a branch git keeps in packed-refs
    sh(repo, "git", "branch", f"nexus/{packed}")
    sh(repo, "git", "pack-refs", "--all")
    before = tree_bytes(repo)

    other, entry = nexus(repo, "runs", "--json").json()  # newest (highest id) first
    assert (other["id"], other["status"], other["worktree"]) == (packed, "orphaned", None)
    assert nexus(repo, "discard", packed).code == 0
    assert entry["id"] == orphan and entry["status"] == "orphaned"
    assert entry["branch"] == f"nexus/{orphan}" and entry["worktree"] == str(worktree)
    assert "orphaned" in nexus(repo, "runs").stdout

    result = nexus(repo, "discard", orphan[:-2])

    assert result.code == 0, result.stderr
    assert nexus(repo, "runs", "--json").json() == []
    assert not worktree.exists()
    assert sh(repo, "git", "branch", "--list", "nexus/*") == ""
    assert tree_bytes(repo) == before
    (event,) = nexus(repo, "log", "--run", orphan, "--json").lines()
    assert event["data"]["head"]  # its last commit, to get it back while git keeps it


def test_a_host_killed_as_its_worktree_appears_leaves_a_run_that_can_be_discarded(
    tmp_path: Path, model
) -> None:
    repo = make_repo(tmp_path / "proj", FILES)
    server = model([hang()])
    proc = start_nexus(repo, "run", "do it", "--base-url", server.url)
    worktrees = state(repo) / "worktrees"
    wait_for(lambda: worktrees.is_dir() and any(worktrees.iterdir()), "the worktree", 60)
    proc.kill()
    proc.wait(timeout=30)

    (entry,) = nexus(repo, "runs", "--json").json()
    assert entry["status"] == "interrupted", entry
    result = nexus(repo, "discard", entry["id"])
    assert result.code == 0, result.stderr
    assert not any(worktrees.iterdir())
    assert sh(repo, "git", "branch", "--list", "nexus/*") == ""


def test_an_interrupted_run_takes_its_head_from_the_branch(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", FILES)
    server = model([call("write_file", path="one.txt", content="1\n"), hang()])
    proc = start_nexus(repo, "run", "write files", "--base-url", server.url)
    pid = agent_pid(repo)
    wait_for(lambda: len(server.requests) == 2, "the second model call")
    proc.kill()
    proc.wait(timeout=30)
    wait_for(lambda: pid_gone(pid), "the agent to stop")
    # What an agent killed between its commit and its event leaves: a commit the journal
    # has not seen.
    (worktree,) = (state(repo) / "worktrees").iterdir()
    (worktree / "two.txt").write_text("2\n")
    sh(worktree, "git", "add", "two.txt")
    sh(worktree, "git", "commit", "-qm", "write_file: write two.txt")
    tip = sh(worktree, "git", "rev-parse", "HEAD").strip()

    (record,) = nexus(repo, "runs", "--json").json()

    assert record["status"] == "interrupted"
    assert record["head"] == tip != record["base"]
    edits = commits(repo, record["id"])
    assert [e["data"]["files"] for e in edits] == [["one.txt"], ["two.txt"]]
    recovered = edits[1]
    assert recovered["level"] == "WARNING" and recovered["data"]["recovered"] is True
    assert recovered["message"].startswith(f"recovered commit {tip[:10]} write_file")
    # Listing again journals nothing twice.
    nexus(repo, "runs", "--json")
    assert len(commits(repo, record["id"])) == 2
    assert "+2" in nexus(repo, "diff", record["id"]).stdout


def test_a_start_that_fails_after_its_snapshot_leaves_nothing_behind(tmp_path: Path) -> None:
    # The repository's policy is read from the snapshot's parent, after the record and
    # the base exist: a broken one fails the start half-way.
    repo = make_repo(tmp_path / "proj", {**FILES, ".nexus/policy.toml": "rules = [oops\n"})

    result = nexus(repo, "run", "do it", "--base-url", "http://127.0.0.1:9/v1")

    assert result.code == 2, result.stderr
    assert "is not valid TOML" in result.stderr
    assert nexus(repo, "runs", "--json").json() == []
    assert sh(repo, "git", "branch", "--list", "nexus/*") == ""
    worktrees = state(repo) / "worktrees"
    assert not worktrees.exists() or not any(worktrees.iterdir())


def test_worktree_entries_that_are_not_folders_are_discarded_as_entries(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj", FILES)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not NEXUS's\n")
    worktrees = state(repo) / "worktrees"
    worktrees.mkdir(parents=True)
    (worktrees / "20200101-000000000-link").symlink_to(elsewhere)
    (worktrees / "20200101-000000000-file").write_text("x")

    listed = {entry["id"]: entry["status"] for entry in nexus(repo, "runs", "--json").json()}
    assert listed == {"20200101-000000000-link": "orphaned", "20200101-000000000-file": "orphaned"}
    for run_id in listed:
        result = nexus(repo, "discard", run_id)
        assert result.code == 0, result.stderr
    assert not any(worktrees.iterdir())
    assert (elsewhere / "keep.txt").read_text() == "not NEXUS's\n"
