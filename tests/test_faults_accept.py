"""Accept never overwrites a save made while it runs, never removes a file it did not
make, and an accept killed half-way is finished by the next one."""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import clean_env, make_repo, nexus, nexus_command
from scripted_model import call

NOTES = "".join(f"line {i}\n" for i in range(1, 41))
MANY = 3000


def finished_run(repo: Path, model, *steps: dict) -> str:
    server = model([*steps, call("finish", summary="done")])
    out = nexus(repo, "run", "change things", "--json", "--base-url", server.url)
    assert out.code == 0, out.stderr
    return out.json()["run_id"]


def edit_last_line(model, repo: Path) -> str:
    return finished_run(
        repo,
        model,
        call("edit_file", path="notes.md", old="line 40\n", new="line 40, by the run\n"),
    )


class Saver:
    """An editor saving a file every ~2 ms: read, change line 1, write the whole file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self.lost = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.save, daemon=True)

    def save(self) -> None:
        while not self.stop.is_set():
            lines = self.path.read_text().splitlines(keepends=True)
            seen = int(lines[0].split()[1]) if lines[0].startswith("saved ") else 0
            if seen != self.count:
                self.lost += 1  # someone wrote over this process's last save
            self.count += 1
            lines[0] = f"saved {self.count}\n"
            self.path.write_text("".join(lines))
            time.sleep(0.002)  # the editor's pace, not a wait for anything

    def __enter__(self) -> Saver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def test_a_save_made_while_accept_merges_the_same_file_is_never_lost(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"notes.md": NOTES})
    run_id = edit_last_line(model, repo)

    with Saver(repo / "notes.md") as saver:
        for _ in range(5):
            result = nexus(repo, "accept", run_id)
            if result.code == 0:
                break

    assert saver.lost == 0
    text = (repo / "notes.md").read_text()
    assert text.startswith(f"saved {saver.count}\n")
    if result.code == 0:
        assert text.endswith("line 40, by the run\n")
    else:
        assert "notes.md kept changing while accept ran" in result.stderr
        assert text.endswith("line 40\n")


def test_a_save_to_another_file_does_not_stop_accept(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"notes.md": NOTES, "draft.md": "saved 0\n"})
    run_id = edit_last_line(model, repo)

    with Saver(repo / "draft.md") as saver:
        result = nexus(repo, "accept", run_id)

    assert result.code == 0, result.stderr
    assert (repo / "notes.md").read_text().endswith("line 40, by the run\n")
    assert saver.lost == 0


def test_a_file_named_like_accepts_own_is_left_alone(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"notes.md": NOTES})
    run_id = edit_last_line(model, repo)
    for name in (".notes.md.nexus-accept", ".notes.md.nexus-accept-0", ".nexus-accept-1"):
        (repo / name).write_text("the user's own file\n")

    result = nexus(repo, "accept", run_id)

    assert result.code == 0, result.stderr
    for name in (".notes.md.nexus-accept", ".notes.md.nexus-accept-0", ".nexus-accept-1"):
        assert (repo / name).read_text() == "the user's own file\n"
    assert sorted(p.name for p in repo.iterdir()) == sorted(
        [".git", "notes.md", ".notes.md.nexus-accept", ".notes.md.nexus-accept-0",
         ".nexus-accept-1"]
    )  # fmt: skip


def leftovers(repo: Path) -> list[str]:
    return [p.name for p in repo.rglob("*nexus-accept*") if ".git" not in p.parts]


@pytest.mark.slow
def test_an_accept_killed_half_way_is_finished_by_the_next(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"notes.md": NOTES})
    make = f"mkdir d && for i in $(seq {MANY}); do echo run $i > d/f$i.txt; done"
    run_id = finished_run(repo, model, call("run_command", command=make))
    expected = {f"f{i}.txt": f"run {i}\n" for i in range(1, MANY + 1)}
    rng = random.Random(7)
    started = time.monotonic()
    assert nexus(repo, "accept", run_id).code == 0
    took = time.monotonic() - started
    killed_mid_way = killed_staging = 0

    for trial in range(6):
        subprocess.run(["rm", "-rf", str(repo / "d")], check=True)
        proc = subprocess.Popen(
            [*nexus_command(), "accept", run_id], cwd=repo, env=clean_env(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        folder, first = repo / "d", repo / "d" / "f1.txt"
        if trial % 3 == 0:  # a kill while files are being staged
            while not (folder.is_dir() and any(folder.iterdir())) and proc.poll() is None:
                pass
        elif trial % 3 == 1:  # a kill as the first file is replaced
            while not first.exists() and proc.poll() is None:
                pass
        else:
            time.sleep(rng.uniform(0.3, 1.0) * took)  # a kill at a random point, not a wait
        proc.kill()
        proc.wait()
        applied = len(list((repo / "d").glob("f*.txt"))) if (repo / "d").is_dir() else 0
        staged = len(leftovers(repo))
        killed_mid_way += 0 < applied < MANY
        killed_staging += applied == 0 and staged > 0

        result = nexus(repo, "accept", run_id)

        assert result.code == 0, result.stderr
        written = {p.name: p.read_text() for p in (repo / "d").iterdir()}
        assert written == expected
        assert leftovers(repo) == []
        assert not list((repo / ".git" / "nexus" / "accepts").glob("*.json"))
    assert (repo / "notes.md").read_text() == NOTES
    assert killed_mid_way and killed_staging  # both halves of accept were interrupted


def test_a_plan_nexus_did_not_write_is_set_aside_and_touches_nothing(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"notes.md": NOTES, "mine.txt": "the user's\n"})
    run_id = edit_last_line(model, repo)
    victim = tmp_path / "victim"
    victim.write_text("outside the tree\n")
    plans = repo / ".git" / "nexus" / "accepts"
    plans.mkdir(parents=True, exist_ok=True)
    tampered = [
        {"staged": False, "entries": [{"path": "a.txt", "expect": None, "temp": str(victim)}]},
        {"staged": False, "entries": [{"path": "a.txt", "expect": None, "temp": "mine.txt"}]},
        {"staged": True, "entries": [{"path": str(victim), "expect": None, "temp": "mine.txt"}]},
        {"staged": True, "entries": [{"path": "../x", "expect": None, "temp": None}]},
        {"staged": "yes", "entries": []},
    ]
    for plan in tampered:
        (plans / f"{run_id}.json").write_text(json.dumps(plan))

        result = nexus(repo, "accept", run_id)

        assert result.code == 2, result.stderr
        assert "is not one NEXUS wrote" in result.stderr and "Traceback" not in result.stderr
        assert victim.read_text() == "outside the tree\n"
        assert (repo / "mine.txt").read_text() == "the user's\n"
        assert (plans / f"{run_id}.json.rejected").exists()
    assert nexus(repo, "accept", run_id).code == 0
    assert (repo / "notes.md").read_text().endswith("line 40, by the run\n")
