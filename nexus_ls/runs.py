"""Run records: one small JSON file per run under the workspace's state directory.

A file per run (written atomically) lets an editor's server and a terminal's
`nexus run` record runs side by side without a shared lock, and listing them is a
directory read. The journal holds the detail; this holds what `nexus runs` shows.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from nexus_ls.errors import NexusError
from nexus_ls.journal.events import now_iso
from nexus_ls.journal.redact import Redactor

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "interrupted"})


_last_ms = 0


def new_run_id() -> str:
    """Short, unique, sortable by time (to the millisecond), and safe in a branch name."""
    global _last_ms
    ms = max(int(time.time() * 1000), _last_ms + 1)  # strictly rising within a process
    _last_ms = ms
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(ms // 1000))
    return f"{stamp}{ms % 1000:03d}-{secrets.token_hex(2)}"


@dataclass
class RunRecord:
    id: str
    task: str
    status: str = "queued"
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

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    def to_json(self) -> dict[str, object]:
        return asdict(self)


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


class RunStore:
    """Reads and writes run records; a run whose host process is gone reads as `interrupted`."""

    def __init__(self, state_dir: Path) -> None:
        self.redactor = Redactor()
        self.dir = state_dir / "runs"
        self.dir.mkdir(parents=True, exist_ok=True)

    def save(self, record: RunRecord) -> None:
        """Write atomically; secrets in the task, summary or error never reach the file."""
        path = self.dir / f"{record.id}.json"
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        data = self.redactor.scrub(record.to_json())
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, path)

    def load(self, run_id: str) -> RunRecord:
        path = self.dir / f"{run_id}.json"
        raw = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(RunRecord)}
        record = RunRecord(**{k: v for k, v in raw.items() if k in known})
        if record.status in ("queued", "running") and not host_alive(
            record.host_pid, record.host_started
        ):
            record.status = "interrupted"
            record.error = record.error or "the process that ran it stopped before the run ended"
            record.ended = record.ended or now_iso()
            self.save(record)
            # Its host could not remove the run's private home and /tmp: do it now.
            shutil.rmtree(self.dir.parent / "sandbox" / record.id, ignore_errors=True)
        return record

    def ids(self) -> list[str]:
        return sorted((p.stem for p in self.dir.glob("*.json")), reverse=True)

    def list(self) -> list[RunRecord]:
        """Newest first."""
        return [self.load(run_id) for run_id in self.ids()]

    def find(self, prefix: str) -> RunRecord:
        """Resolve a run id or any unique prefix of one."""
        matches = [run_id for run_id in self.ids() if run_id.startswith(prefix)] if prefix else []
        if not matches:
            raise NexusError(f"no run matches {prefix!r}; `nexus runs` lists them")
        if len(matches) > 1 and prefix not in matches:
            shown = ", ".join(matches[:5])
            raise NexusError(f"{prefix!r} matches several runs ({shown}); give more of the id")
        return self.load(prefix if prefix in matches else matches[0])
