"""A workspace's memory: the one door to its lessons, for the host's every caller.

The supervisor offers lessons at a run's start, serves `remember`/`recall`, and learns
when a run ends; review learns from accept and discard; the CLI and the language server
list, add and forget. Each change is journaled (category `memory`) with the lesson, and
no text holding a secret is stored. What the host does on its own (offering, learning)
never fails a run or a review: a memory problem is journaled as an error instead.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nexus_ls.config import RunSettings
from nexus_ls.errors import NexusError
from nexus_ls.journal import Journal, now_iso
from nexus_ls.journal.lines import decode_line

from . import learning
from .lessons import (
    FALLS,
    MAX_TAG,
    MAX_TAGS,
    MAX_TEXT,
    REMEMBERED_WEIGHT,
    RISES,
    START_WEIGHT,
    Lesson,
    clamp,
    newest,
)
from .ranking import Index, Ranked, rank, within
from .secrets import has_placeholder, secrets_in
from .store import MemoryStore, Transaction

RECALL_LIMIT = 8  # lessons one `recall` returns at most
RECALL_TOKENS = 1000
MAX_QUERY = 500
OnEvent = Callable[[dict[str, Any]], None]


class WorkspaceMemory:
    def __init__(self, state_dir: Path, journal: Journal, on_event: OnEvent | None = None) -> None:
        """`on_event` hears each memory event after it is journaled (the editor's progress)."""
        self.store = MemoryStore.for_state_dir(state_dir)
        self.journal = journal
        self.on_event = on_event
        self._index: tuple[tuple[str, int], tuple[str, ...], Index] | None = None
        self._index_lock = threading.Lock()
        self._starts: dict[str, int] = {}  # run -> journal size at its start: its events follow
        # run -> the lessons it was offered or recalled, journaled at once, stored at its end
        # (one write per run: a recall does not rewrite the file).
        self._used: dict[str, list[str]] = {}
        self._used_lock = threading.Lock()

    # Reading -----------------------------------------------------------------------------

    def lessons(self) -> list[Lesson]:
        return self.store.lessons()

    def get(self, lesson_id: str) -> Lesson:
        for lesson in self.store.lessons():
            if lesson.id.lower() == str(lesson_id).strip().lower():
                return lesson
        raise NexusError(f"there is no lesson {lesson_id!r}; `nexus memory list` shows the ids")

    def ranked(
        self, query: str, *, fill: bool = False, now: datetime | None = None
    ) -> list[Ranked]:
        """Every offered lesson matching `query`, best first (`ranking.rank`)."""
        version = self.store.texts_version()  # before the lessons: a stale index is rebuilt
        lessons = self.store.lessons()
        return rank(lessons, self._index_for(version, lessons), query, now=now, fill=fill)

    def _index_for(self, version: tuple[str, int], lessons: Sequence[Lesson]) -> Index:
        ids = tuple(lesson.id for lesson in lessons)
        with self._index_lock:
            if self._index is not None and self._index[:2] == (version, ids):
                return self._index[2]
            index = Index(lessons, self._index[2] if self._index is not None else None)
            self._index = (version, ids, index)
            return index

    @staticmethod
    def public(lesson: Lesson, now: datetime | None = None) -> dict[str, Any]:
        """A lesson as a run's model gets it: its line (text and source) and its id."""
        return {
            "id": lesson.id,
            "text": lesson.text,
            "tags": lesson.tags,
            "kind": lesson.kind,
            "source_run": lesson.source_run,
            "weight": round(lesson.strength(now), 2),
            "line": lesson.line(),
        }

    # Asked for ---------------------------------------------------------------------------

    def add(
        self, text: str, tags: Iterable[str] = (), *, run: str | None = None, kind: str = "added"
    ) -> tuple[Lesson, bool]:
        """Store a lesson a user (`added`) or a model (`remembered`) gives; the same text
        again confirms the lesson already stored. False with it when it was known."""
        text, tag_list = check_text(text), check_tags(tags)
        found = secrets_in(" ".join([text, *tag_list]), self.journal.redactor)
        if found:
            what = ", ".join(found)
            self._log("WARNING", f"not stored: the lesson holds a secret ({what})", run,
                      {"action": "refused", "secret": found})  # fmt: skip
            raise NexusError(
                f"not stored: the lesson holds a secret ({what}); NEXUS never keeps one in "
                "memory: say it without the secret"
            )
        learned = learning.Learned(f"note:{text.lower()}", kind, text, tag_list, [])
        with self.store.transaction() as tx:
            lesson, new = self._store(tx, learned, run, f"{kind} again")
        return lesson, new

    def forget(self, lesson_id: str, *, run: str | None = None) -> Lesson:
        with self.store.transaction() as tx:
            lesson = tx.get(lesson_id)
            if lesson is None:
                raise NexusError(
                    f"there is no lesson {lesson_id!r}; `nexus memory list` shows the ids"
                )
            tx.remove(lesson.id)
        self._log("INFO", f"forgot {lesson.id}: {lesson.text}", run,
                  {"action": "forgot", "lesson": lesson.to_json()})  # fmt: skip
        return lesson

    def recall(self, run_id: str | None, query: str) -> list[dict[str, Any]]:
        """The lessons that best answer `query`, recorded as used by the run."""
        if not isinstance(query, str) or not query.strip():
            raise NexusError("recall needs a query: a few words on what you want to know")
        query = " ".join(query.split())[:MAX_QUERY]
        chosen = within(self.ranked(query), RECALL_TOKENS, RECALL_LIMIT)
        if run_id is not None and chosen:
            self._use(run_id, chosen)
        ids = [item.lesson.id for item in chosen]
        self._log("INFO", f"recalled {_count(ids)} for “{query}”{_ids(ids)}", run_id,
                  {"action": "recalled", "query": query, "lessons": ids})  # fmt: skip
        return [self.public(item.lesson) for item in chosen]

    # On its own --------------------------------------------------------------------------

    def offer(self, run_id: str, task: str, settings: RunSettings) -> list[dict[str, Any]]:
        """The lessons for a run's starting context, within its `memory_tokens`; none for a
        guided run or one without a starting context. Never raises."""
        self._starts[run_id] = _size(self.journal.path)
        limits = settings.limits
        budget = getattr(limits, "memory_tokens", 0) if limits.context_tokens > 0 else 0
        if settings.model.guided or budget <= 0:
            return []
        try:
            chosen = within(self.ranked(task, fill=True), budget)
            if not chosen:
                return []
            self._use(run_id, chosen)
        except Exception as exc:  # the run starts without memory rather than not at all
            self._failed(run_id, "offering lessons", exc)
            return []
        ids = [item.lesson.id for item in chosen]
        self._log("INFO", f"offered {_count(ids)} to the run{_ids(ids)}", run_id,
                  {"action": "offered", "lessons": ids, "tokens": budget})  # fmt: skip
        return [self.public(item.lesson) for item in chosen]

    def learn_from_run(self, run_id: str) -> list[Lesson]:
        """Learn from a finished run's journal and weigh the lessons it used or met; the
        lessons it taught. Never raises."""
        try:
            return self._learn(run_id, self._run_events(run_id))
        except Exception as exc:
            self._failed(run_id, "learning from the run", exc)
            return []
        finally:
            self._starts.pop(run_id, None)

    def reviewed(
        self, run_id: str, task: str, verdict: str, files: Sequence[str], evidence: Sequence[str]
    ) -> None:
        """The user accepted or discarded a run: weigh the lessons it used or taught, and
        learn the verdict itself. Never raises."""
        try:
            commits = self.journal.query(run=run_id, category="edit")
            commits = [e for e in commits if e["data"].get("commit")]
            subjects = list(dict.fromkeys(str(e["data"].get("subject") or "") for e in commits))
            ids = [*(str(e["id"]) for e in commits), *evidence]
            lesson = learning.review(run_id, task, verdict, files, subjects, ids)
            reason = "accepted" if verdict == "accepted" else "discarded"
            with self.store.transaction() as tx:
                for old in tx.all():
                    if run_id in old.used_by or old.source_run == run_id:
                        self._weigh(
                            tx, old, reason, f"run {run_id} was {verdict}", evidence, run_id
                        )
                self._store(tx, lesson, run_id, "reviewed again")
        except Exception as exc:
            self._failed(run_id, f"learning from the {verdict} run", exc)

    # Inside ------------------------------------------------------------------------------

    def _learn(self, run_id: str, events: Sequence[dict[str, Any]]) -> list[Lesson]:
        findings = learning.learn(events)
        taught: list[Lesson] = []
        with self.store.transaction() as tx:
            self._record_uses(tx, run_id)
            moved: set[str] = set()
            for learned in findings.learned:
                if has_placeholder(learned.text) or secrets_in(learned.text, self.journal.redactor):
                    continue  # a secret was in what it came from: never stored
                lesson, new = self._store(tx, learned, run_id, f"learned again in run {run_id}")
                if new or learned.again is not None:
                    taught.append(lesson)
                    moved.add(lesson.id)
            for lesson in tx.all():
                move = None if lesson.id in moved else _verdict(lesson, findings, run_id)
                if move is not None:
                    self._weigh(tx, lesson, *move, run_id)
        return taught

    def _store(
        self, tx: Transaction, learned: learning.Learned, run: str | None, again: str
    ) -> tuple[Lesson, bool]:
        """Insert a lesson, or confirm the one with its key (its text brought up to date)."""
        now = now_iso()
        old = tx.by_key(learned.key)
        if old is None:
            weight = REMEMBERED_WEIGHT if learned.kind == "remembered" else START_WEIGHT
            lesson = tx.insert({
                "text": learned.text, "tags": learned.tags, "source_run": run,
                "evidence": newest([], learned.evidence), "weight": weight, "uses": 0,
                "created": now, "last_confirmed": now, "kind": learned.kind, "key": learned.key,
                "command": learned.command, "used_by": [],
            })  # fmt: skip
            verb = learned.kind if learned.kind in ("added", "remembered") else "learned"
            self._log("INFO", f"{verb} {lesson.id}: {lesson.text}", run,
                      {"action": verb, "lesson": lesson.to_json()})  # fmt: skip
            return lesson, True
        if learned.again is None:
            return old, False
        before = (old.text, old.tags)
        if learned.kind in ("added", "remembered"):  # said again: the first words stay
            old.tags = list(dict.fromkeys([*old.tags, *learned.tags]))[:MAX_TAGS]
        else:  # learned again: what the run saw now is what holds
            old.text, old.tags, old.command = learned.text, learned.tags, learned.command
        changed = (old.text, old.tags) != before
        lesson = self._weigh(tx, old, learned.again, again, learned.evidence, run, changed)
        return lesson, False

    def _weigh(
        self,
        tx: Transaction,
        lesson: Lesson,
        reason: str,
        why: str,
        evidence: Sequence[str],
        run: str | None,
        text_changed: bool = False,
    ) -> Lesson:
        """Move a lesson's weight: a rise also confirms it now (its fading starts again)."""
        now = datetime.now(timezone.utc)
        before = lesson.strength(now)
        if reason in RISES:
            lesson.weight = clamp(before + RISES[reason])
            lesson.last_confirmed = now_iso()
        else:
            lesson.weight = clamp(lesson.weight - FALLS[reason])
        lesson.evidence = newest(lesson.evidence, [e for e in evidence if e])
        tx.update(lesson, text_changed=text_changed)
        after = lesson.strength(now)
        message = f"{lesson.id} {reason}: weight {before:.2f} → {after:.2f} ({why})"
        data = {"action": reason, "lesson": lesson.id, "from": round(before, 4),
                "to": round(after, 4), "why": why}  # fmt: skip
        self._log("INFO", message, run, data)
        return lesson

    def _use(self, run_id: str, chosen: Sequence[Ranked]) -> None:
        with self._used_lock:
            self._used.setdefault(run_id, []).extend(item.lesson.id for item in chosen)

    def _record_uses(self, tx: Transaction, run_id: str) -> None:
        """Store which lessons the run used, and how often (`uses`), at its end."""
        with self._used_lock:
            used = self._used.pop(run_id, [])
        counts = Counter(used)
        lessons = [lesson for lesson_id in counts if (lesson := tx.get(lesson_id))]
        for lesson in lessons:  # one forgotten meanwhile is left out
            lesson.uses += counts[lesson.id]
            lesson.used_by = newest(lesson.used_by, [run_id])
        if lessons:
            tx.update_many(lessons)

    def _run_events(self, run_id: str) -> list[dict[str, Any]]:
        """The run's events: read from where the journal ended at its start when this
        process started it (not the whole journal), else searched for."""
        start = self._starts.get(run_id)
        if start is None or _size(self.journal.path) < start:
            return self.journal.query(run=run_id)
        with open(self.journal.path, "rb") as handle:
            handle.seek(start)
            tail = handle.read()
        events = [decode_line(line) for line in tail.split(b"\n") if line.strip()]
        return [dict(e) for e in events if e is not None and e.get("run") == run_id]

    def _log(self, level: str, message: str, run: str | None, data: dict[str, Any]) -> None:
        event = self.journal.log(level, "memory", message, run=run, agent=run, data=data)
        if self.on_event is not None:
            self.on_event(event)

    def _failed(self, run: str | None, what: str, exc: Exception) -> None:
        error = f"{what} failed: {exc if isinstance(exc, NexusError) else repr(exc)}"
        with contextlib.suppress(Exception):  # the journal failing too: no one left to tell
            self._log("ERROR", error, run, {"action": "failed", "error": error})


def _verdict(
    lesson: Lesson, findings: learning.Findings, run_id: str
) -> tuple[str, str, list[str]] | None:
    """What a finished run says of a lesson it did not teach: (how it moves, why, evidence).
    The command it names failed for the environment (and never worked): contradicted; it
    worked: confirmed; the run used it and its tests passed: a rise too."""
    command = lesson.command
    if command in findings.failed and command not in findings.worked:
        why, event = findings.failed[command]
        return "contradicted", f"`{command}` failed in run {run_id} ({why})", [event]
    if command in findings.worked:
        return "confirmed", f"`{command}` worked in run {run_id}", [findings.worked[command]]
    if run_id in lesson.used_by and findings.tests_passed:
        return "tests passed", f"tests passed in run {run_id}", []
    return None


def check_text(text: Any) -> str:
    if not isinstance(text, str):
        raise NexusError("the lesson must be text")
    flat = " ".join(text.split())
    if not flat:
        raise NexusError("the lesson is empty; say what to remember")
    if len(flat) > MAX_TEXT:
        raise NexusError(
            f"the lesson is {len(flat)} characters; keep it to {MAX_TEXT}: one fact per lesson"
        )
    return flat


def check_tags(tags: Iterable[Any]) -> list[str]:
    found = []
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip():
            raise NexusError("each tag must be a non-empty word")
        word = "-".join(tag.split())
        if len(word) > MAX_TAG:
            raise NexusError(f"the tag {word[:60]!r} is longer than {MAX_TAG} characters")
        found.append(word)
    found = list(dict.fromkeys(found))
    if len(found) > MAX_TAGS:
        raise NexusError(f"give at most {MAX_TAGS} tags, not {len(found)}")
    return found


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _count(ids: Sequence[str]) -> str:
    return f"{len(ids)} lesson{'' if len(ids) == 1 else 's'}"


def _ids(ids: Sequence[str]) -> str:
    return f": {', '.join(ids)}" if ids else ""
