"""Run records: one small JSON file per run under the workspace's state directory.

A file per run (written atomically) lets an editor's server and a terminal's
`nexus run` record runs side by side without a shared lock, and listing them is a
directory read. The journal holds the detail; this holds what `nexus runs` shows.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from nexus_ls.durable import write_durably
from nexus_ls.errors import NexusError
from nexus_ls.journal.events import now_iso
from nexus_ls.journal.redact import Redactor
from nexus_ls.run_status import FINAL_STATUSES, STATUSES, Status

REVIEWS = (None, "accepted", "discarded")
# A run id names a directory and a branch: letters, digits, '-' and '_', never a path.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


_last_ms = 0


def new_run_id() -> str:
    """Short, unique, sortable by time (to the millisecond), and safe in a branch name."""
    global _last_ms
    ms = max(int(time.time() * 1000), _last_ms + 1)  # strictly rising within a process
    _last_ms = ms
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(ms // 1000))
    import secrets  # here: reading runs (`nexus log --run`) never loads OpenSSL for it

    return f"{stamp}{ms % 1000:03d}-{secrets.token_hex(2)}"


@dataclass
class RunRecord:
    id: str
    task: str
    status: Status = "queued"
    branch: str = ""
    base: str = ""
    head: str = ""
    worktree: str = ""
    created: str = ""
    ended: str | None = None
    summary: str = ""
    error: str | None = None
    steps: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "completion": 0})
    model: str | None = None
    host_pid: int | None = None
    host_started: str | None = None  # the host's start time, so a reused pid is not mistaken
    review: str | None = None  # "accepted" or "discarded" once the user decided
    sandbox: str | None = None  # how its commands were confined: bwrap, landlock or off
    parent: str | None = None  # the run that spawned this one as a sub-agent
    depth: int = 0  # 0 for a run the user started, 1 for its sub-agents, ...

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class NoSuchRun(NexusError):
    """No record has this id (nor begins with it)."""


class DamagedRecord(NexusError):
    """A run record that cannot be read as one: listed as damaged, never used."""

    def __init__(self, run_id: str, problem: str) -> None:
        self.run_id, self.problem = run_id, problem
        super().__init__(
            f"run {run_id}'s record is damaged ({problem}); `nexus discard {run_id}` removes "
            "the run and its record"
        )


@dataclass
class Damaged:
    """What `nexus runs` shows for a record it cannot read."""

    id: str
    error: str
    status: str = "damaged"

    def to_json(self) -> dict[str, object]:
        return asdict(self)


_COMMIT = re.compile(r"(|[0-9a-f]{40}|[0-9a-f]{64})")
MAX_RECORD = 16 * 1024 * 1024  # a record is a few hundred bytes; a task, at most this
_OPTIONAL_TEXT = ("ended", "error", "model", "host_started", "review", "sandbox", "parent")


def check_record(raw: object, run_id: str) -> RunRecord:
    """A record from its parsed JSON, or DamagedRecord saying what is wrong with it."""
    if not isinstance(raw, dict):
        raise DamagedRecord(run_id, f"it holds {type(raw).__name__}, not an object")
    if raw.get("id") != run_id:
        raise DamagedRecord(run_id, f"its id {raw.get('id')!r} is not its file's name")
    known = {f.name: f for f in fields(RunRecord)}
    values = {k: v for k, v in raw.items() if k in known}
    for name, value in values.items():
        if name in _OPTIONAL_TEXT and value is None:
            continue
        wanted: Any = {"steps": int, "depth": int, "host_pid": (int, type(None)),
                       "tokens": dict}.get(name, str)  # fmt: skip
        if not isinstance(value, wanted) or isinstance(value, bool):
            raise DamagedRecord(run_id, f"{name} is {type(value).__name__}, not {_kind(wanted)}")
    if not isinstance(values.get("task"), str):
        raise DamagedRecord(run_id, "it has no task")
    if values.get("status", "queued") not in STATUSES:
        raise DamagedRecord(run_id, f"status {values['status']!r} is not one NEXUS writes")
    if values.get("review") not in REVIEWS:
        raise DamagedRecord(run_id, f"review {values['review']!r} is not one NEXUS writes")
    tokens = values.get("tokens", {})
    if not all(isinstance(n, int) for n in tokens.values()):
        raise DamagedRecord(run_id, "its token counts are not numbers")
    for name in ("base", "head"):  # they reach git's command line: only commit ids
        if not _COMMIT.fullmatch(values.get(name, "")):
            raise DamagedRecord(run_id, f"{name} {values[name][:60]!r} is not a commit id")
    if values.get("branch", "") not in ("", f"nexus/{run_id}"):
        raise DamagedRecord(run_id, f"branch {values['branch'][:60]!r} is not nexus/{run_id}")
    parent = values.get("parent")
    if parent is not None and not (RUN_ID.fullmatch(parent) and run_id.startswith(parent)):
        raise DamagedRecord(run_id, f"parent {parent[:60]!r} is not a run this one came from")
    pid = values.get("host_pid")
    if pid is not None and not 0 < pid < 2**31:
        raise DamagedRecord(run_id, f"host_pid {str(pid)[:20]} is not a process id")
    return RunRecord(**values)


def _kind(wanted: Any) -> str:
    names = {int: "a number", str: "text", dict: "an object"}
    return names.get(wanted, "a number or null")


def process_started(pid: int) -> str | None:
    """A process's start time in clock ticks since boot (Linux), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def host_alive(pid: int | None, started: str | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return started is None or process_started(pid) in (None, started)


def read_regular(path: Path) -> bytes:
    """A record's bytes; never follows a link, blocks on a FIFO or reads a device."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError("it is a symbolic link") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise ValueError(f"it is {kind}")
        if info.st_size > MAX_RECORD:
            raise ValueError(f"it is {info.st_size} bytes, more than a record can be")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


# Called with a record just found interrupted, before it is saved: fill in what its host
# could not (the branch's head, commits whose events were lost).
Recover = Callable[[RunRecord], None]


class RunStore:
    """Reads and writes run records; a run whose host process is gone reads as `interrupted`."""

    def __init__(self, state_dir: Path, recover: Recover | None = None) -> None:
        self.redactor = Redactor()
        self.dir = state_dir / "runs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.recover = recover

    def save(self, record: RunRecord) -> None:
        """Write atomically and durably (fsync before rename: a crash leaves the old record
        or the new one, never an empty file); secrets never reach the file."""
        if not RUN_ID.fullmatch(record.id):
            raise NexusError(f"run id {record.id!r} is not valid")
        data = json.dumps(self.redactor.scrub(record.to_json()), indent=1).encode("utf-8")
        write_durably(self.dir / f"{record.id}.json", data)

    def remove(self, run_id: str) -> None:
        """Drop a record (a run that never started, or a damaged record being discarded)."""
        if RUN_ID.fullmatch(run_id):
            (self.dir / f"{run_id}.json").unlink(missing_ok=True)

    def read(self, run_id: str) -> RunRecord:
        """The record as stored, or DamagedRecord."""
        path = self.dir / f"{run_id}.json"
        try:
            text = read_regular(path).decode("utf-8")
        except UnicodeDecodeError:
            raise DamagedRecord(run_id, "it is not UTF-8 text") from None
        except ValueError as exc:  # not a file a record can be
            raise DamagedRecord(run_id, str(exc)) from None
        except FileNotFoundError:
            raise NoSuchRun(f"no run matches {run_id!r}; `nexus runs` lists them") from None
        except OSError as exc:
            raise DamagedRecord(run_id, f"it cannot be read: {exc.strerror}") from None
        if not text.strip():
            raise DamagedRecord(run_id, "it is empty")
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise DamagedRecord(run_id, f"it is not JSON: {exc}") from None
        except RecursionError:
            raise DamagedRecord(run_id, "it is nested too deeply to be a record") from None
        return check_record(raw, run_id)

    def load(self, run_id: str) -> RunRecord:
        record = self.read(run_id)
        if not record.finished and not host_alive(record.host_pid, record.host_started):
            with self._recovering():
                record = self.read(run_id)  # another reader may have done it meanwhile
                if not record.finished and not host_alive(record.host_pid, record.host_started):
                    self._mark_interrupted(record)
        return record

    def _mark_interrupted(self, record: RunRecord) -> None:
        record.status = "interrupted"
        record.error = record.error or "the process that ran it stopped before the run ended"
        record.ended = record.ended or now_iso()
        if self.recover:
            self.recover(record)
        self.save(record)
        # Its host could not remove the run's private home and /tmp: do it now.
        shutil.rmtree(self.dir.parent / "sandbox" / record.id, ignore_errors=True)

    @contextmanager
    def _recovering(self) -> Iterator[None]:
        """One reader at a time recovers a run, so its lost events are journaled once."""
        with open(self.dir / ".recover.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def ids(self) -> list[str]:
        found = (p.stem for p in self.dir.glob("*.json"))
        return sorted((run_id for run_id in found if RUN_ID.fullmatch(run_id)), reverse=True)

    def scan(self) -> list[RunRecord | Damaged]:
        """Every record, newest first; one that cannot be read is listed as damaged."""
        found: list[RunRecord | Damaged] = []
        for run_id in self.ids():
            try:
                found.append(self.load(run_id))
            except DamagedRecord as exc:
                found.append(Damaged(run_id, exc.problem))
            except NoSuchRun:
                continue  # removed while listing
        return found

    def list(self) -> list[RunRecord]:
        """Readable records, newest first."""
        return [r for r in self.scan() if isinstance(r, RunRecord)]

    def match(self, prefix: str) -> str:
        """The run id `prefix` names (all of an id, or a unique beginning of one)."""
        matches = [run_id for run_id in self.ids() if run_id.startswith(prefix)] if prefix else []
        if not matches:
            raise NoSuchRun(f"no run matches {prefix!r}; `nexus runs` lists them")
        root = min(matches, key=len)
        if len(matches) > 1 and prefix not in matches and all(m.startswith(root) for m in matches):
            return root  # a run and its sub-agents (whose ids extend its id): the run
        if len(matches) > 1 and prefix not in matches:
            shown = ", ".join(matches[:5])
            raise NexusError(f"{prefix!r} matches several runs ({shown}); give more of the id")
        return prefix if prefix in matches else matches[0]

    def find(self, prefix: str) -> RunRecord:
        """Resolve a run id or any unique prefix of one."""
        return self.load(self.match(prefix))
