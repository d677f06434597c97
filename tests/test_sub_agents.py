"""Sub-agents and messages through real `nexus run`s: real agent processes, sandboxes,
worktrees and branches; the scripted HTTP model answers each agent by its task."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import make_repo, nexus, sh
from scripted_model import call

Reply = dict[str, Any]
Script = list[Reply | Callable[[dict[str, Any]], Reply]]


class Router:
    """One scripted model for a run tree: each agent, known by its task, gets its own
    script in order. Used as the server's single, never-used-up step."""

    def __init__(self, scripts: dict[str, Script]) -> None:
        self.scripts = {task: list(steps) for task, steps in scripts.items()}
        self.seen: dict[str, list[dict[str, Any]]] = {task: [] for task in scripts}
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        first = next(m["content"] for m in body["messages"] if m["role"] == "user")
        task = next((t for t in self.scripts if re.search(f"Task: {re.escape(t)}$", first, re.M)),
                    None)  # fmt: skip
        with self.lock:
            if task is None or not self.scripts[task]:
                return {"status": 400, "error": f"no script for {first[-80:]!r}", "again": True}
            self.seen[task].append(body)
            step = self.scripts[task].pop(0)
        reply = step(body) if callable(step) else step
        return {**reply, "again": True}


def results(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content")) for m in body["messages"] if m["role"] == "tool")


def spawned(body: dict[str, Any]) -> list[str]:
    return re.findall(r"sub-agent (\S+) (?:started|queued)", results(body))


def calls(*replies: tuple[str, dict[str, Any]], why: str = "") -> Reply:
    return {"content": why, "calls": [(name, json.dumps(args)) for name, args in replies]}


def run(repo: Path, url: str, task: str, *flags: str) -> dict[str, Any]:
    done = nexus(repo, "run", task, "--json", "--base-url", url, *flags, timeout=180)
    assert done.code in (0, 1), done.stderr
    out = done.json()
    out["stderr"] = done.stderr
    return out


def branches(repo: Path) -> list[str]:
    return sh(repo, "git", "branch", "--list", "nexus/*", "--format=%(refname:short)").split()


def test_two_children_write_in_parallel_and_the_parent_merges_both(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"README.md": "two modules\n"})
    router = Router({
        "write both modules": [
            calls(("spawn_agent", {"task": "write a.py"}), ("spawn_agent", {"task": "write b.py"}),
                  why="Two independent files: one sub-agent each."),
            call("wait_agents"),
            lambda body: calls(*(("merge_agent", {"id": i}) for i in spawned(body))),
            call("finish", summary="both modules written by sub-agents and merged"),
        ],
        "write a.py": [call("write_file", path="a.py", content="A = 1\n"),
                       call("finish", summary="a.py holds A")],
        "write b.py": [call("write_file", path="b.py", content="B = 2\n"),
                       call("finish", summary="b.py holds B")],
    })  # fmt: skip
    server = model([router])

    out = run(repo, server.url, "write both modules")

    assert out["status"] == "succeeded", out
    root = out["run_id"]
    assert branches(repo) == [f"nexus/{root}", f"nexus/{root}-1", f"nexus/{root}-2"]
    tip = f"nexus/{root}"
    assert sh(repo, "git", "show", f"{tip}:a.py") == "A = 1\n"
    assert sh(repo, "git", "show", f"{tip}:b.py") == "B = 2\n"
    merges = sh(repo, "git", "log", "--merges", "--format=%s", tip).splitlines()
    assert sorted(merges) == [f"Merge sub-agent {root}-1: a.py holds A",
                              f"Merge sub-agent {root}-2: b.py holds B"]  # fmt: skip
    waited = results(router.seen["write both modules"][2])
    assert f"{root}-1 succeeded (2 steps, changed a.py): a.py holds A" in waited
    assert f"{root}-2 succeeded (2 steps, changed b.py): b.py holds B" in waited
    # The children ran side by side: each had its first answer before either ended.
    shown = nexus(repo, "runs", "--json").json()
    tree = {r["id"]: r for r in shown if r["id"].startswith(root)}
    assert tree[f"{root}-1"]["parent"] == root and tree[f"{root}-1"]["depth"] == 1
    listing = nexus(repo, "runs").stdout
    assert f"{root}  succeeded" in listing and f"└ {root}-1  succeeded" in listing
    # Discarding the run discards its sub-agents with it.
    assert nexus(repo, "discard", root).code == 0
    assert branches(repo) == []
    reviews = {r["id"]: r["review"] for r in nexus(repo, "runs", "--json").json()}
    assert [reviews[i] for i in (root, f"{root}-1", f"{root}-2")] == ["discarded"] * 3


def test_conflicting_children_are_reported_by_file(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"config.py": "MODE = 'old'\n"})
    router = Router({
        "change the mode twice": [
            calls(("spawn_agent", {"task": "set mode fast"}),
                  ("spawn_agent", {"task": "set mode safe"})),
            call("wait_agents"),
            lambda body: call("merge_agent", id=spawned(body)[0]),
            lambda body: call("merge_agent", id=spawned(body)[1]),
            call("finish", summary="merged one; the other conflicts"),
        ],
        "set mode fast": [call("write_file", path="config.py", content="MODE = 'fast'\n"),
                          call("finish", summary="fast")],
        "set mode safe": [call("write_file", path="config.py", content="MODE = 'safe'\n"),
                          call("finish", summary="safe")],
    })  # fmt: skip
    server = model([router])

    out = run(repo, server.url, "change the mode twice")

    assert out["status"] == "succeeded", out
    second = results(router.seen["change the mode twice"][4])
    assert "error: not merged: your worktree and sub-agent" in second
    assert "both changed these files: config.py. Nothing was changed." in second
    tip = f"nexus/{out['run_id']}"
    assert sh(repo, "git", "show", f"{tip}:config.py") == "MODE = 'fast'\n"
    assert sh(repo, "git", "status", "--porcelain") == ""  # the user's tree: untouched


def test_a_model_that_spawns_in_a_loop_is_stopped_by_depth_count_and_budget(
    tmp_path: Path, model
) -> None:
    repo = make_repo(tmp_path / "proj", {"README.md": "x\n"})

    def spawn_then_wait(body: dict[str, Any]) -> Reply:
        turns = sum(m["role"] == "assistant" for m in body["messages"])
        return call("spawn_agent", task="do it again") if turns % 2 == 0 else call("wait_agents")

    root = [calls(*[("spawn_agent", {"task": "do it again"})] * 3)] + [call("wait_agents")] * 30
    router = Router({"do it": root, "do it again": [spawn_then_wait] * 60})
    server = model([router])

    out = run(repo, server.url, "do it", "--max-steps", "16", "--max-agents", "4")

    assert out["status"] == "failed"
    listed = nexus(repo, "runs", "--json").json()
    tree = [r for r in listed if r["id"].startswith(out["run_id"])]
    assert len(tree) <= 1 + 4, out["stderr"]  # the root and at most four sub-agents
    assert max(r["depth"] for r in tree) <= 2, out["stderr"]
    assert all(r["status"] != "running" for r in tree)  # all ended with the root
    # The tree shares the root's 16 steps: each agent may have had one turn in flight.
    assert sum(r["steps"] for r in tree) <= 16 + len(tree)
    everything = "\n".join(results(b) for seen in router.seen.values() for b in seen)
    assert "not spawned: this run tree has started its 4 sub-agents" in everything
    assert "the run tree's budget is spent" in nexus(repo, "show", out["run_id"]).stdout


def test_a_sub_agent_at_the_depth_limit_cannot_spawn(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"README.md": "x\n"})
    router = Router({
        "delegate": [call("spawn_agent", task="delegate further"), call("wait_agents"),
                     call("finish", summary="done")],
        "delegate further": [call("spawn_agent", task="and further"),
                             call("finish", summary="could not delegate")],
    })  # fmt: skip
    server = model([router])

    out = run(repo, server.url, "delegate", "--max-depth", "1")

    assert out["status"] == "succeeded", out["stderr"]
    refused = results(router.seen["delegate further"][1])
    assert "not spawned: sub-agents may be at most 1 deep, and this run is at depth 1" in refused
    tree = [r for r in nexus(repo, "runs", "--json").json() if r["id"].startswith(out["run_id"])]
    assert len(tree) == 2


def test_a_childs_message_reaches_its_parent(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"README.md": "x\n"})
    router = Router({
        "ask a helper": [
            call("spawn_agent", task="report back"),
            call("wait_agents", timeout=1e300),  # no longer than the run's own time
            call("wait_agents"),
            call("finish", summary="the helper reported"),
        ],
        "report back": [call("send_message", to="parent", text="found 3 callers of parse()"),
                        call("finish", summary="reported")],
    })  # fmt: skip
    server = model([router])

    out = run(repo, server.url, "ask a helper")

    assert out["status"] == "succeeded", out
    after = router.seen["ask a helper"][2]["messages"]
    child = f"{out['run_id']}-1"
    note = f"[message from {child}]\n> found 3 callers of parse()"
    assert any(m["role"] == "user" and m["content"] == note for m in after)
    journal = nexus(repo, "log", "--category", "message", "--json").stdout
    assert f"message from {child} to {out['run_id']}: found 3 callers of parse()" in journal


def test_cancelling_a_parent_cancels_its_running_and_queued_children(tmp_path: Path, model) -> None:
    from scripted_model import hang
    from test_run_cancel import wait_for

    from nexus_ls.config import Limits, ModelSettings, RunSettings
    from nexus_ls.sandbox import open_workspace
    from nexus_ls.supervisor import Supervisor

    repo = make_repo(tmp_path / "proj", {"README.md": "x\n"})
    router = Router({
        "fan out": [calls(*[("spawn_agent", {"task": "think forever"})] * 3),
                    call("wait_agents")],
        "think forever": [lambda body: hang()] * 3,
    })  # fmt: skip
    server = model([router])
    sup = Supervisor(open_workspace(repo))
    try:
        limits = Limits(max_steps=10, parallel_agents=2)
        settings = RunSettings(ModelSettings(base_url=server.url, model="scripted-model"), limits)
        root = sup.start("fan out", settings)
        kids = [f"{root.id}-{n}" for n in (1, 2)]
        # Both running children are asking the model (which never answers) ...
        wait_for(lambda: len(router.seen["think forever"]) == 2, "both children asking", 60)
        assert sup.cancel(root.id)
        ended = sup.wait(root.id, timeout=30)
        assert ended.status == "cancelled"
        for kid in kids:  # ... and are cancelled with their parent
            record = sup.wait(kid, timeout=30)
            assert record.status == "cancelled", record.error
            assert record.error == f"its parent run {root.id} was stopped"
        assert sup.active() == []
        # The third, queued behind them, never started: no record, no branch.
        assert f"{root.id}-3" not in sup.store.ids()
        assert f"nexus/{root.id}-3" not in branches(repo)
    finally:
        sup.stop_all()


def test_what_sub_agents_spent_counts_against_the_parents_budget() -> None:
    import threading

    from inprocess_model import InProcessModel

    from nexus_ls.agent.budget import Budget
    from nexus_ls.agent.outcome import RunStopped
    from nexus_ls.config import Limits

    budget = Budget(Limits(max_steps=10, max_tokens=5000), InProcessModel([]), threading.Event())
    budget.take_step()
    budget.charge(7, 3000)
    assert budget.line().startswith("[budget left: 2 steps, 2,000 tokens,")
    assert budget.steps == 1  # its own step numbers go on from its own steps
    budget.take_step()
    budget.take_step()
    try:
        budget.take_step()
    except RunStopped as stop:
        assert str(stop) == "step limit reached (10 steps)"
    else:
        raise AssertionError("a step was taken past the shared limit")


def test_a_sub_agent_the_user_discarded_is_not_merged(tmp_path: Path, model) -> None:
    from nexus_ls.config import ModelSettings, RunSettings
    from nexus_ls.sandbox import open_workspace
    from nexus_ls.supervisor import Supervisor

    repo = make_repo(tmp_path / "proj", {"README.md": "x\n"})
    sup = Supervisor(open_workspace(repo))

    def discard_then_merge(body: dict[str, Any]) -> Reply:
        kid = spawned(body)[0]
        sup.discard(kid)  # the user threw the child's work away meanwhile
        return call("merge_agent", id=kid)

    router = Router({
        "delegate": [call("spawn_agent", task="write x.txt"), call("wait_agents"),
                     discard_then_merge, call("finish", summary="done")],
        "write x.txt": [call("write_file", path="x.txt", content="x\n"),
                        call("finish", summary="x written")],
    })  # fmt: skip
    server = model([router])
    try:
        settings = RunSettings(ModelSettings(base_url=server.url, model="scripted-model"))
        record = sup.wait(sup.start("delegate", settings).id, timeout=120)
        assert record.status == "succeeded", record.error
        refused = results(router.seen["delegate"][3])
        assert f"sub-agent {record.id}-1 was discarded by the user; not merged" in refused
        assert "x.txt" not in sh(repo, "git", "ls-tree", "--name-only", record.branch)
    finally:
        sup.stop_all()
