"""Sub-agents: runs a run spawns, each with its own agent, sandbox, worktree and branch.

A run tree is a run the user started and the sub-agents under it. The tree shares the
root's limits: every agent's model turns are counted here, and a tree past its steps or
tokens is stopped whole; a child's own limits are what the tree has left when it starts,
its wall time ends with the root's. A depth limit, a total and a parallel limit stop
spawning loops (a child beyond the parallel limit of its siblings waits, `queued`, for one to end).
A child's id extends its parent's (`<parent>-<n>`), so its branch `nexus/<parent>-<n>`
sorts under its parent's in `git branch --list 'nexus/*'`. Cancelling a run cancels its
children; a run that ends stops the children still running.

Served here, for the tools in `tools/agents.py`: `spawn_agent`, `wait_agents`,
`agent_branch` (what `merge_agent` merges, in the parent's own process) and
`send_message` (routed to the receiver's next turn).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from nexus_ls.config import Limits, RunSettings
from nexus_ls.errors import NexusError
from nexus_ls.inputs import check_text
from nexus_ls.runs import RunRecord
from nexus_ls.sandbox import git

if TYPE_CHECKING:
    from nexus_ls.supervisor import RunHandle, Supervisor

MAX_MESSAGE = 8000  # characters of one message between agents
MAX_MESSAGES = 50  # messages one agent may send in all: no flooding another's context
MAX_TASK = 20_000  # characters of a sub-agent's task and context together
FINAL = ("succeeded", "failed", "cancelled", "interrupted")


@dataclass
class SubStart:
    """How a sub-agent's run starts: under `parent`, at its tip, with the tree's policy."""

    parent: RunRecord
    run_id: str
    start_at: tuple[str, str]  # (the parent's tip, the tree's snapshot commit)


@dataclass
class Tree:
    root: str
    limits: Limits
    deadline: float  # time.monotonic() at which the root's wall time ends
    steps: int = 0  # model turns of every agent in the tree
    tokens: int = 0
    spawned: int = 0
    stopped: bool = False


@dataclass
class Child:
    id: str
    parent: str
    task: str
    record: RunRecord | None = None  # once started
    error: str | None = None  # a child that could not start
    charged: bool = False  # its steps and tokens reported to its parent
    done: threading.Event = field(default_factory=threading.Event)


class SubAgents:
    """Every run tree of one supervisor, and the requests its agents send about them."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.sup = supervisor
        self.trees: dict[str, Tree] = {}  # root id -> its tree
        self.tree_of: dict[str, str] = {}  # run id -> its root's id
        self.children: dict[str, list[Child]] = {}  # run id -> its children, in order
        self.mail: dict[str, int] = {}  # run id -> messages sent to it
        # run id -> its children holding a parallel slot: siblings share the limit (a
        # tree-wide one would deadlock a parent waiting on children that wait for slots)
        self.running: dict[str, int] = {}
        self.sent: dict[str, int] = {}  # run id -> messages it sent
        self.changed = threading.Condition()  # a child ended or started, mail arrived
        for kind, handler in (
            ("spawn_agent", self.spawn),
            ("wait_agents", self.wait),
            ("agent_branch", self.branch),
            ("send_message", self.message),
        ):
            supervisor.serve(kind, handler)

    # -- the host's side: trees begin, count and end ------------------------------------

    def begin(self, record: RunRecord, limits: Limits) -> None:
        """A run the user started is the root of a tree of its own."""
        with self.changed:
            if record.parent is None:
                tree = Tree(record.id, limits, time.monotonic() + limits.wall_time)
                self.trees[record.id] = tree
                self.tree_of[record.id] = record.id
            self.children.setdefault(record.id, [])

    def counted(self, record: RunRecord, event: dict[str, Any]) -> None:
        """One event of any agent: a model turn counts against its tree's limits."""
        data = event.get("data")
        if event.get("category") != "model" or not isinstance(data, dict) or "calls" not in data:
            return
        tree = self.trees.get(self.tree_of.get(record.id, ""))
        if tree is None:
            return
        tokens = int(data.get("prompt_tokens") or 0) + int(data.get("completion_tokens") or 0)
        with self.changed:
            tree.steps += 1
            tree.tokens += tokens
            over = tree.steps > tree.limits.max_steps or tree.tokens > tree.limits.max_tokens
            if not over or tree.stopped or not tree.spawned:  # alone, its agent's limits hold
                return
            tree.stopped = True
        why = (
            f"the run tree's budget is spent ({tree.steps} steps of {tree.limits.max_steps}, "
            f"{tree.tokens:,} tokens of {tree.limits.max_tokens:,}, its sub-agents included)"
        )
        for run_id in self.tree_runs(tree.root):
            self.sup.stop_for_limit(run_id, why)

    def tree_runs(self, root: str) -> list[str]:
        """The root and every started run under it, parents before children."""
        found, queue = [], [root]
        while queue:
            run_id = queue.pop(0)
            found.append(run_id)
            queue += [c.id for c in self.children.get(run_id, ()) if c.record is not None]
        return found

    def kin(self, run_id: str) -> list[Child]:
        return list(self.children.get(run_id, ()))

    def ended(self, record: RunRecord) -> None:
        """A run ended: its slot frees, its waiters wake, its children still going stop."""
        with self.changed:
            child = self._child(record.id)
            if child is not None and not child.done.is_set():  # once, however often told
                child.record = record
                child.done.set()
                self._release(child.parent)
            self.changed.notify_all()
        for kid in self.kin(record.id):
            if not kid.done.is_set():
                if kid.record is None:  # queued, or being started: it never runs
                    kid.error = "cancelled: its parent run ended before it started"
                    kid.done.set()
                else:
                    self.sup.cancel(kid.id, because="its parent run ended")
        with self.changed:
            self.changed.notify_all()  # a queued child's starter sees it will never run
        if record.parent is None:
            self._forget(record.id)

    def _forget(self, root: str) -> None:
        """A root that ended takes its tree's bookkeeping with it (a long-lived host
        starts many trees); children still ending find nothing left to update."""
        with self.changed:
            runs = self.tree_runs(root) + [
                k.id for r in list(self.children) for k in self.children.get(r, ())
                if self.tree_of.get(k.id) == root
            ]  # fmt: skip
            self.trees.pop(root, None)
            for run_id in set(runs):
                self.tree_of.pop(run_id, None)
                self.children.pop(run_id, None)
                self.mail.pop(run_id, None)
                self.running.pop(run_id, None)
                self.sent.pop(run_id, None)
            self.changed.notify_all()

    def cancel_children(self, run_id: str, because: str) -> None:
        """Cancelling a run cancels its sub-agents, queued ones included."""
        for kid in self.kin(run_id):
            if kid.done.is_set():
                continue
            if kid.record is None:
                kid.error = f"cancelled before it started: {because}"
                kid.done.set()
            else:
                self.sup.cancel(kid.id, because=because)
        with self.changed:
            self.changed.notify_all()

    def _release(self, parent: str) -> None:
        """A child gave back its parallel slot (under `changed`)."""
        if parent in self.running:  # gone when its tree ended first
            self.running[parent] = max(self.running[parent] - 1, 0)

    def _child(self, run_id: str) -> Child | None:
        for kids in self.children.values():
            for kid in kids:
                if kid.id == run_id:
                    return kid
        return None

    # -- the agents' requests -------------------------------------------------------------

    def spawn(self, handle: RunHandle, body: dict[str, Any]) -> dict[str, Any]:
        parent = handle.record
        task = body.get("task")
        if not isinstance(task, str) or not task.strip():
            raise NexusError("spawn_agent needs a task: say what the sub-agent should do")
        context = body.get("context") or ""
        if not isinstance(context, str):
            raise NexusError("spawn_agent's context must be text")
        check_text(task, "task")
        check_text(context, "context")
        if len(task) + len(context) > MAX_TASK:
            raise NexusError(f"a sub-agent's task and context are at most {MAX_TASK:,} "
                             "characters together; point it at files instead")  # fmt: skip
        if handle.stop_as is not None or handle.done.is_set():
            raise NexusError("not spawned: this run is stopping")
        tree = self.trees.get(self.tree_of.get(parent.id, ""))
        if tree is None or handle.settings is None:
            raise NexusError("this run cannot spawn sub-agents (its tree is not known)")
        limits = tree.limits
        with self.changed:
            if parent.depth + 1 > limits.max_depth:
                raise NexusError(
                    f"not spawned: sub-agents may be at most {limits.max_depth} deep, and "
                    f"this run is at depth {parent.depth}; do the work yourself"
                )
            if tree.spawned >= limits.max_agents:
                raise NexusError(
                    f"not spawned: this run tree has started its {limits.max_agents} "
                    "sub-agents, the most it may; wait for them and do the rest yourself"
                )
            steps_left = limits.max_steps - tree.steps
            tokens_left = limits.max_tokens - tree.tokens
            seconds_left = tree.deadline - time.monotonic()
            if steps_left < 2 or tokens_left < 1000 or seconds_left < 5:
                raise NexusError("not spawned: the run tree's budget is nearly spent")
            tree.spawned += 1
            kids = self.children.setdefault(parent.id, [])
            child = Child(f"{parent.id}-{len(kids) + 1}", parent.id, task)
            kids.append(child)
            self.children[child.id] = []
            self.tree_of[child.id] = tree.root
        settings = replace(handle.settings, limits=replace(
            limits, max_steps=steps_left, max_tokens=tokens_left, wall_time=seconds_left,
        ))  # fmt: skip
        self.sup.emit(
            parent, "INFO", "agent", f"spawning sub-agent {child.id}: {task}",
            {"child": child.id, "task": task, "branch": f"nexus/{child.id}",
             "budget": {"steps": steps_left, "tokens": tokens_left, "seconds": int(seconds_left)}},
        )  # fmt: skip
        with self.changed:
            free = self.running.get(parent.id, 0) < limits.parallel_agents
            self.running[parent.id] = self.running.get(parent.id, 0) + free
        if free:  # started before the reply, so the parent's next look sees it running
            self._start(tree, child, parent, settings, context)
        else:
            threading.Thread(
                target=self._start_when_free, args=(tree, child, parent, settings, context),
                daemon=True, name=f"nexus-spawn-{child.id}",
            ).start()  # fmt: skip
        return {
            "id": child.id,
            "branch": f"nexus/{child.id}",
            "status": self._status(child),
            "error": child.error,
            "budget": {"steps": steps_left, "tokens": tokens_left, "seconds": int(seconds_left)},
        }

    def _start_when_free(
        self, tree: Tree, child: Child, parent: RunRecord, settings: RunSettings, context: str
    ) -> None:
        with self.changed:
            self.changed.wait_for(
                lambda: (
                    self.running.get(parent.id, 0) < tree.limits.parallel_agents
                    or child.done.is_set()
                )
            )
            if child.done.is_set():  # cancelled while queued
                return
            self.running[parent.id] = self.running.get(parent.id, 0) + 1
        self._start(tree, child, parent, settings, context)

    def _start(
        self, tree: Tree, child: Child, parent: RunRecord, settings: RunSettings, context: str
    ) -> None:
        """Start a child that holds a parallel slot; a failure frees the slot and says why."""
        try:
            root = self.sup.store.load(tree.root)
            if not root.base:  # the tree's policy and deploy come from its snapshot only
                raise NexusError(f"its run tree {tree.root} has no snapshot")
            tip = git(self.sup.ws.root, "rev-parse", "--verify", f"{parent.branch}^{{commit}}")
            start = SubStart(parent, child.id, (tip, root.base))
            with self.changed:  # what the tree has left now, not when it was asked for
                steps, tokens = (
                    tree.limits.max_steps - tree.steps,
                    tree.limits.max_tokens - tree.tokens,
                )
            seconds = tree.deadline - time.monotonic()
            if steps < 2 or tokens < 1000 or seconds < 5:
                raise NexusError("the run tree's budget is nearly spent")
            settings = replace(settings, limits=replace(
                settings.limits, max_steps=steps, max_tokens=tokens, wall_time=seconds
            ))  # fmt: skip
            record = self.sup.start(child.task, settings, context, sub=start)
        except Exception as exc:  # any failure frees the slot and is said, never lost
            with self.changed:
                self._release(parent.id)
                child.error = f"could not start: {exc}"
                child.done.set()
                self.changed.notify_all()
            self.sup.emit(parent, "ERROR", "agent", f"sub-agent {child.id} {child.error}")
            return
        with self.changed:
            cancelled = child.done.is_set()  # its parent stopped while it was being started
            child.record = record
            if cancelled:  # it is running after all: `ended` frees its slot and says so
                child.done.clear()
                child.error = None
            self.changed.notify_all()
        if cancelled:
            self.sup.cancel(record.id, because=f"its parent run {parent.id} was stopped")

    def _mine(self, handle: RunHandle, run_id: object) -> Child:
        for kid in self.kin(handle.record.id):
            if kid.id == run_id:
                return kid
        mine = ", ".join(k.id for k in self.kin(handle.record.id)) or "none yet"
        raise NexusError(f"{str(run_id)[:80]!r} is not a sub-agent of this run (yours: {mine})")

    def wait(self, handle: RunHandle, body: dict[str, Any]) -> dict[str, Any]:
        ids = body.get("ids")
        if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
            raise NexusError("wait_agents' ids must be a list of sub-agent ids")
        kids = [self._mine(handle, i) for i in ids] if ids else self.kin(handle.record.id)
        if not kids:
            raise NexusError("this run has no sub-agents to wait for; spawn_agent starts one")
        timeout = body.get("timeout")
        tree = self.trees.get(self.tree_of.get(handle.record.id, ""))
        left = max(tree.deadline - time.monotonic(), 0.0) if tree else 3600.0
        wanted = float(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else left
        limit = min(wanted, left)  # never past the tree's time (nor an overflowing float)
        me, mail = handle.record.id, self.mail.get(handle.record.id, 0)

        def settled() -> bool:
            return (
                all(k.done.is_set() for k in kids)
                or self.mail.get(me, 0) != mail
                or handle.done.is_set()
                or handle.stop_as is not None
            )

        with self.changed:
            self.changed.wait_for(settled, limit)
        outcomes = [self.outcome(k) for k in kids]
        charge = {"steps": 0, "tokens": 0}
        for kid, seen in zip(kids, outcomes, strict=True):
            if kid.done.is_set() and not kid.charged:
                kid.charged = True
                charge["steps"] += int(seen["steps"])
                charge["tokens"] += int(seen["tokens"])
        return {
            "agents": outcomes,
            "message_arrived": self.mail.get(me, 0) != mail,
            "charge": charge,
        }

    def outcome(self, child: Child) -> dict[str, Any]:
        """What a parent learns of a child: how it ended, what it said and changed."""
        record = child.record
        if record is not None and record.finished:
            record = self.sup.store.load(record.id)
        seen: dict[str, Any] = {
            "id": child.id, "task": child.task, "status": self._status(child),
            "branch": f"nexus/{child.id}", "summary": "", "error": child.error, "files": [],
            "steps": 0, "tokens": 0,
        }  # fmt: skip
        if record is not None:
            seen.update(summary=record.summary, error=record.error or child.error,
                        steps=record.steps, tokens=sum(record.tokens.values()))  # fmt: skip
            if record.finished and record.base:
                head = self.sup.head(record)
                if head and head != record.base:
                    names = git(self.sup.ws.root, "diff", "--name-only", "--no-renames",
                                record.base, head)  # fmt: skip
                    seen["files"] = [n for n in names.splitlines() if n]
        return seen

    def _status(self, child: Child) -> str:
        if child.record is None:
            return "cancelled" if child.done.is_set() else "queued"
        if child.done.is_set():
            return self.sup.store.load(child.id).status
        return "running"

    def branch(self, handle: RunHandle, body: dict[str, Any]) -> dict[str, Any]:
        """The tip of a finished child's branch, for its parent to merge."""
        child = self._mine(handle, body.get("id"))
        if not child.done.is_set():
            raise NexusError(f"sub-agent {child.id} is still {self._status(child)}; "
                             "wait_agents first")  # fmt: skip
        if child.record is None:
            raise NexusError(f"sub-agent {child.id} never started: {child.error}")
        record = self.sup.store.load(child.id)
        if record.review == "discarded":
            raise NexusError(f"sub-agent {child.id} was discarded by the user; not merged")
        head = self.sup.head(record)
        return {"id": child.id, "branch": record.branch, "head": head, "base": record.base,
                "status": record.status, "summary": record.summary,
                "run": handle.record.id}  # fmt: skip

    def message(self, handle: RunHandle, body: dict[str, Any]) -> dict[str, Any]:
        sender = handle.record
        to, text = body.get("to"), body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise NexusError("send_message needs a text")
        if len(text) > MAX_MESSAGE:
            raise NexusError(f"a message is at most {MAX_MESSAGE:,} characters")
        check_text(text, "message")
        if not isinstance(to, str) or not to:
            raise NexusError("send_message needs `to`: parent, children, siblings or a run id")
        if self.sent.get(sender.id, 0) >= MAX_MESSAGES:
            raise NexusError(f"this agent has sent its {MAX_MESSAGES} messages; say the rest "
                             "in its final answer")  # fmt: skip
        targets = self._addressed(sender, to)
        delivered = [t for t in targets if self.sup.tell(t, "message", text, **{"from": sender.id})]
        with self.changed:
            self.sent[sender.id] = self.sent.get(sender.id, 0) + 1
            for target in delivered:
                self.mail[target] = self.mail.get(target, 0) + 1
            self.changed.notify_all()
        shown = ", ".join(delivered) or "no one"
        self.sup.emit(
            sender, "INFO" if delivered else "WARNING", "message",
            f"message from {sender.id} to {shown}: {text}",
            {"from": sender.id, "to": to, "delivered": delivered, "text": text},
        )  # fmt: skip
        if not delivered:
            ended = ", ".join(targets) or "no such agent"
            raise NexusError(f"nobody received it: {ended} is not running")
        return {"delivered": delivered}

    def _addressed(self, sender: RunRecord, to: str) -> list[str]:
        parent = sender.parent
        if to == "parent":
            if parent is None:
                raise NexusError("this run has no parent: it was started by the user")
            return [parent]
        if to == "children":
            return [k.id for k in self.kin(sender.id)]
        if to == "siblings":
            if parent is None:
                raise NexusError("this run has no siblings: it was started by the user")
            return [k.id for k in self.kin(parent) if k.id != sender.id]
        if self.tree_of.get(to) != self.tree_of.get(sender.id) or to == sender.id:
            raise NexusError(
                f"{to[:80]!r} is not another agent of this run tree; use parent, children, "
                "siblings or the id of one of them"
            )
        return [to]
