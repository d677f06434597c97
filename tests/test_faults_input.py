"""Bad command lines and damaged state: a clear error (exit 2), nothing made, no traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import make_repo, nexus, sh
from scripted_model import call


def nothing_made(repo: Path) -> None:
    assert sh(repo, "git", "branch", "--list", "nexus/*") == ""
    runs = repo / ".git" / "nexus" / "runs"
    assert not runs.exists() or not list(runs.glob("*.json"))


def refused(result, *words: str) -> None:
    assert result.code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_a_task_that_is_not_utf8_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})

    # "\udce9" reaches the command line as the single byte 0xe9 (Latin-1 "é").
    result = nexus(repo, "run", "fix caf\udce9", "--base-url", "http://127.0.0.1:9/v1")

    refused(result, "the task is not valid UTF-8 text (byte 0xe9 at character 8)")
    nothing_made(repo)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "1e10"])
def test_a_wall_time_that_is_not_a_positive_number_is_refused(tmp_path: Path, value) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})

    result = nexus(repo, "run", "x", f"--wall-time={value}", "--base-url", "http://127.0.0.1:9/v1")

    refused(result, "wall-time must be")
    nothing_made(repo)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--model", "m\udcff", "the --model is not valid UTF-8 text (byte 0xff"),
        ("--base-url", "http://\udcff/v1", "the --base-url is not valid UTF-8 text"),
        ("--base-url", "ftp://example.com/v1", "is not an http:// or https:// URL"),
    ],
)
def test_model_settings_that_cannot_work_are_refused_up_front(
    tmp_path: Path, flag: str, value: str, message: str
) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    args = (
        [flag, value]
        if flag == "--base-url"
        else [flag, value, "--base-url", "http://127.0.0.1:9/v1"]
    )

    refused(nexus(repo, "run", "x", *args), message)
    nothing_made(repo)


def test_a_file_that_is_a_fifo_is_refused_not_read(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    os.mkfifo(repo / "pipe")

    result = nexus(repo, "run", "x", "--file", "pipe", "--base-url", "http://127.0.0.1:9/v1",
                   timeout=30)  # fmt: skip

    refused(result, "--file pipe is not a regular file")
    nothing_made(repo)


def test_export_to_a_folder_that_is_missing_or_a_directory_says_so(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})

    refused(nexus(repo, "export", "--format", "md", "-o", "no/such/dir/log.md"),
            "cannot write no/such/dir/log.md: No such file or directory")  # fmt: skip
    refused(nexus(repo, "export", "--format", "md", "-o", str(tmp_path)), "Is a directory")


def test_a_since_too_far_back_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})

    refused(nexus(repo, "log", "--since", "99999999999d"), "before the year 1")


def test_a_journal_line_with_wrong_types_is_skipped_and_counted(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    server = model([call("finish", summary="done")])
    assert nexus(repo, "run", "look", "--base-url", server.url).code == 0
    journal = repo / ".git" / "nexus" / "journal.jsonl"
    good = [json.loads(line) for line in journal.read_text().splitlines()]
    bad = [
        {**good[0], "ts": 5},
        {**good[0], "level": None},
        {**good[0], "message": ["a", "list"]},
        {**good[0], "data": "text"},
        {**good[0], "step": "one"},
    ]
    with journal.open("a") as stream:
        stream.writelines(json.dumps(event) + "\n" for event in bad)

    for args in (["log"], ["log", "--json"], ["log", "--grep", "run"], ["export", "--format",
                 "md"], ["export", "--format", "html"], ["show", good[0]["run"]]):  # fmt: skip
        result = nexus(repo, *args)
        assert result.code == 0, (args, result.stderr)
        assert "Traceback" not in result.stderr
    result = nexus(repo, "log", "--json")
    assert [event["id"] for event in result.lines()] == [event["id"] for event in good]
    assert "skipped 5 journal lines that are not well-formed events" in result.stderr


def test_a_journal_path_that_is_a_directory_is_named(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    (repo / ".git" / "nexus" / "journal.jsonl").mkdir(parents=True)

    for args in (
        ["log"],
        ["export", "--format", "md"],
        ["run", "x", "--base-url", "http://127.0.0.1:9/v1"],
    ):
        refused(nexus(repo, *args), "cannot open the journal", "journal.jsonl")
    nothing_made(repo)
    assert nexus(repo, "runs").code == 0  # listing needs no journal


def test_a_conflict_names_the_users_file_not_gits_internal_one(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"out": "a file\n"})
    server = model([call("run_command", command="rm out && mkdir out && echo x > out/x"),
                    call("finish", summary="made a folder")])  # fmt: skip
    run_id = nexus(repo, "run", "folder", "--json", "--base-url", server.url).json()["run_id"]
    (repo / "out").write_text("a file, changed by the user\n")

    result = nexus(repo, "accept", run_id)

    refused(result, "accept refused")
    assert "~" not in result.stderr
    assert "out" in result.stderr
    assert (repo / "out").read_text() == "a file, changed by the user\n"
