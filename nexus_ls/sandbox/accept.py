"""Bringing a run's net change into the user's working tree.

Accept is a three-way merge of the user's current state (including uncommitted work)
with the run's tip, over the run's base. Nothing is written until everything is ready:
conflicts, and anything else that would clobber the user's files, are found first;
every new file is written beside its target under a name of its own; and every target
is checked again (by stat) just before it is replaced, so a save made while accept runs
is never overwritten. A file saved during the merge makes accept start over (a few
times, then refuse it by name). The plan is written to the state directory before the
first file is replaced, so an accept killed half-way is finished by the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from nexus_ls.durable import write_durably
from nexus_ls.errors import NexusError
from nexus_ls.sandbox.merge import Conflicts, merge_trees
from nexus_ls.sandbox.repo import Workspace, git_bytes
from nexus_ls.sandbox.snapshot import snapshot

GITLINK = "160000"
SYMLINK = "120000"
EXECUTABLE = "100755"
ATTEMPTS = 3  # merges tried while the user's files keep changing under accept
Stat = tuple[int, ...] | None  # inode, size, mtime, ctime (ns); DIR: a folder; None: absent
DIR = (0,)
_TEMP_TAIL = re.compile(r"[0-9a-f]{8}-[0-9]+")  # the token and the entry's number
_TOP_TEMP = re.compile(r"\.nexus-accept-[0-9a-f]{8}-[0-9]+")


class MergeConflict(NexusError):
    """The run's change and the user's changes touch the same lines of these files."""

    def __init__(self, files: list[str]) -> None:
        self.files = list(files)
        super().__init__(
            "accept refused: these files conflict with your changes: "
            f"{', '.join(self.files)}; nothing was changed"
        )


@dataclass(frozen=True)
class _Change:
    path: str
    status: str  # A, M, T or D, as git diff-tree reports it
    mode: str  # the merged tree's mode ("000000" when deleted)
    sha: str


def _merge_tree(ws: Workspace, mine: str, head: str) -> str:
    try:
        return merge_trees(ws.root, mine, head)
    except Conflicts as exc:
        raise MergeConflict(exc.files) from None


def _tree_changes(ws: Workspace, mine: str, merged: str) -> list[_Change]:
    out = git_bytes(ws.root, "diff-tree", "-r", "-z", "--no-renames", f"{mine}^{{tree}}", merged)
    fields = out.split(b"\0")
    changes = []
    for meta, name in zip(fields[0::2], fields[1::2], strict=False):
        old_mode, mode, _old_sha, sha, status = meta.decode().lstrip(":").split(" ")
        if GITLINK in (old_mode, mode):
            continue  # submodules keep their own checkouts; their content is not ours to write
        changes.append(_Change(os.fsdecode(name), status[0], mode, sha))
    return changes


def _refuse(reason: str) -> NexusError:
    return NexusError(f"accept refused: {reason}; nothing was changed")


def _check_path(root: Path, change: _Change, deleted: set[str]) -> None:
    """Refuse anything that would write outside the tree or overwrite an unseen file."""
    if not _safe(change.path):
        raise _refuse(f"the run's tree holds an unsafe path {change.path!r}")
    parts = PurePosixPath(change.path).parts
    if change.status == "D":
        return
    for i in range(1, len(parts)):
        prefix = "/".join(parts[:i])
        parent = root / prefix
        in_the_way = parent.is_symlink() or (parent.exists() and not parent.is_dir())
        if in_the_way and prefix not in deleted:
            raise _refuse(f"{prefix} in your working tree is in the way of {change.path}")
    target = root / change.path
    if target.is_dir() and not target.is_symlink():
        for dirpath, dirs, files in os.walk(target):
            links = [d for d in dirs if Path(dirpath, d).is_symlink()]
            for name in [*files, *links]:
                rel = Path(dirpath, name).relative_to(root).as_posix()
                if rel not in deleted:
                    raise _refuse(f"{rel} (not tracked by git) is in the way of {change.path}")
    elif os.path.lexists(target) and change.status == "A" and change.path not in deleted:
        raise _refuse(
            f"{change.path} exists in your working tree but is ignored by git; move it away"
        )


def _read_blobs(ws: Workspace, shas: list[str]) -> dict[str, bytes]:
    """All blob contents in one `git cat-file --batch` call."""
    wanted = list(dict.fromkeys(shas))
    if not wanted:
        return {}
    out = git_bytes(
        ws.root, "cat-file", "--batch", stdin="".join(s + "\n" for s in wanted).encode()
    )
    blobs: dict[str, bytes] = {}
    pos = 0
    for sha in wanted:
        end = out.index(b"\n", pos)
        header = out[pos:end].decode().split(" ")
        if len(header) != 3 or header[1] != "blob":
            raise NexusError(f"accept failed: git could not read object {sha}")
        size = int(header[2])
        blobs[sha] = out[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1
    return blobs


class AcceptIncomplete(NexusError):
    """Some files changed in the instant before accept would have replaced them: the
    rest was applied, these were left as the user saved them."""

    def __init__(self, applied: list[str], skipped: list[str]) -> None:
        self.applied, self.skipped = applied, skipped
        super().__init__(
            f"accept applied {len(applied)} file{'' if len(applied) == 1 else 's'} but left "
            f"{', '.join(skipped)} as you saved it (it changed while accept ran); "
            "run accept again to merge the rest"
        )


@dataclass
class _Entry:
    path: str
    expect: Stat  # the target as it was before the merge was computed
    temp: str | None  # where the new content is staged, beside the target; None: delete


def accept(ws: Workspace, base: str, head: str, key: str | None = None) -> list[str]:
    """Merge the run's change into the working tree; return the paths written or deleted.

    The user's state is snapshotted as a child of `base`, so `base` is the merge base of
    that snapshot and the run's tip. Never touches the index, HEAD or branches. `key`
    names the plan kept while files are staged and replaced (the run's id).
    """
    plan_path = ws.state_dir / "accepts" / f"{key or head}.json"
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    with open(plan_path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one accept of a run at a time
        if plan_path.exists():
            _resume(ws.root, plan_path)
        for _attempt in range(ATTEMPTS):
            entries, moved = _prepare(ws, base, head, plan_path)
            if not moved:
                break
            _unstage(ws.root, entries, plan_path)
        else:
            raise _refuse(f"{', '.join(moved)} kept changing while accept ran; try again")
        if not entries:
            plan_path.unlink(missing_ok=True)
            return []
        _write_plan(plan_path, entries, staged=True)
        return _apply(ws.root, plan_path, entries)


def _prepare(
    ws: Workspace, base: str, head: str, plan_path: Path
) -> tuple[list[_Entry], list[str]]:
    """Merge, and stage every new file; also return the targets that changed meanwhile."""
    watched = {path: _stat(ws.root / path) for path in _run_paths(ws, base, head)}
    mine = snapshot(ws, parent=base, message="nexus: working tree before accept")
    try:
        merged = _merge_tree(ws, mine, head)
    except MergeConflict:
        moved = _moved(ws.root, watched)
        if moved:  # the snapshot may have caught a file half-saved: merge again
            return [], moved
        raise
    changes = _tree_changes(ws, mine, merged)
    deleted = {c.path for c in changes if c.status == "D"}
    for change in changes:
        _check_path(ws.root, change, deleted)
    blobs = _read_blobs(ws, [c.sha for c in changes if c.status != "D"])
    token = secrets.token_hex(4)
    entries = [
        _Entry(
            c.path,
            watched.get(c.path),
            None if c.status == "D" else _temp(ws.root, c.path, f"{token}-{i}"),
        )
        for i, c in enumerate(changes)
    ]
    # Named in the plan before any is made: a kill while staging leaves nothing unnamed.
    _write_plan(plan_path, entries, staged=False)
    try:
        for change, entry in zip(changes, entries, strict=True):
            if entry.temp is not None:
                _stage(ws.root, entry.temp, blobs[change.sha], change.mode, change.path)
    except BaseException:
        _unstage(ws.root, entries, plan_path)
        raise
    return entries, _moved(ws.root, watched)


def _moved(root: Path, watched: dict[str, Stat]) -> list[str]:
    return [path for path, before in watched.items() if _stat(root / path) != before]


def _run_paths(ws: Workspace, base: str, head: str) -> list[str]:
    out = git_bytes(ws.root, "diff", "--name-only", "-z", "--no-renames", base, head)
    return [os.fsdecode(name) for name in out.split(b"\0") if name]


def _apply(root: Path, plan_path: Path, entries: list[_Entry]) -> list[str]:
    """Deletes first (a file may replace a folder), then writes; each target only if it
    is still as it was when the merge was computed."""
    skipped: list[str] = []
    for entry in sorted(entries, key=lambda e: e.temp is not None):
        current = _stat(root / entry.path)
        if entry.temp is None:
            if current is None:
                continue  # gone already (an accept killed after deleting it)
            if current == entry.expect:
                _delete(root, entry.path)
                continue
        else:
            if not os.path.lexists(root / entry.temp):
                continue  # in place already (an accept killed after replacing it)
            folder = entry.expect == DIR and current in (None, DIR)
            if (current == entry.expect or folder) and _replace(root, entry):
                continue
        skipped.append(entry.path)
        _remove_own(root, entry.temp)
    plan_path.unlink()
    if skipped:
        raise AcceptIncomplete(sorted(e.path for e in entries if e.path not in skipped), skipped)
    return sorted(e.path for e in entries)


def _resume(root: Path, plan_path: Path) -> None:
    """Finish what an accept that was killed had begun: replacing, if its files were all
    staged (its merge stands); else take back what it staged. A plan NEXUS could not
    have written is set aside untouched, and nothing it names is touched."""
    try:
        plan = json.loads(plan_path.read_text(encoding="utf-8"))
        entries = [_Entry(e["path"], _expect(e["expect"]), e["temp"]) for e in plan["entries"]]
        staged = plan["staged"]
        wrong = next((e for e in entries if not _planned(e)), None)
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        wrong, entries, staged = _Entry("(unreadable)", None, None), [], False
    if wrong is not None or not isinstance(staged, bool):
        aside = plan_path.with_name(plan_path.name + ".rejected")
        os.replace(plan_path, aside)
        raise _refuse(
            f"the plan of an earlier accept ({plan_path}) is not one NEXUS wrote "
            f"(entry {str(getattr(wrong, 'path', '?'))[:80]!r}); it was moved to {aside.name} "
            "and nothing it names was touched: run accept again"
        )
    if not staged:
        _unstage(root, entries, plan_path)
        return
    with contextlib.suppress(AcceptIncomplete):  # what it skipped is merged afresh next
        _apply(root, plan_path, entries)


def _expect(value: object) -> Stat:
    if value is None:
        return None
    if not isinstance(value, list) or not all(type(n) is int for n in value):
        raise TypeError("expect")
    return tuple(value)


def _planned(entry: _Entry) -> bool:
    """Whether an entry is one accept writes: a safe relative path, and a staged name of
    accept's own beside it (or at the top of the tree)."""
    if not isinstance(entry.path, str) or not _safe(entry.path):
        return False
    if entry.temp is None:
        return True
    if not isinstance(entry.temp, str) or not _safe(entry.temp):
        return False
    temp, path = PurePosixPath(entry.temp), PurePosixPath(entry.path)
    if _TOP_TEMP.fullmatch(entry.temp):
        return True
    return (
        temp.parent == path.parent
        and temp.name.startswith(f".{path.name}.nexus-accept-")
        and (
            _TEMP_TAIL.fullmatch(temp.name[len(path.name) + len(".nexus-accept-") + 1 :])
            is not None
        )
    )


def _write_plan(plan_path: Path, entries: list[_Entry], staged: bool) -> None:
    data = json.dumps({"staged": staged, "entries": [asdict(e) for e in entries]}).encode()
    write_durably(plan_path, data, 0o600)


def _stat(path: Path) -> Stat:
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if os.path.isdir(path) and not os.path.islink(path):
        return DIR
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _temp(root: Path, path: str, token: str) -> str:
    """Beside the target (same folder, same file system), or at the top of the tree when
    a file that accept will delete stands where the target's folder must be."""
    name = PurePosixPath(path)
    for parent in name.parents:
        if str(parent) != "." and (root / parent).exists() and not (root / parent).is_dir():
            return f".nexus-accept-{token}"
    return str(name.with_name(f".{name.name}.nexus-accept-{token}"))


def _stage(root: Path, temp: str, data: bytes, mode: str, path: str) -> None:
    """Write the new content under its own fresh name; a file already there (not ours)
    stops the accept rather than being replaced."""
    target, staged = root / path, root / temp
    staged.parent.mkdir(parents=True, exist_ok=True)
    try:
        if mode == SYMLINK:
            os.symlink(os.fsdecode(data), staged)
            return
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        fd = os.open(staged, flags, 0o777 if mode == EXECUTABLE else 0o666)
    except FileExistsError:
        raise _refuse(f"{temp} is in the way (NEXUS did not make it); move it away") from None
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)
    if target.is_file() and not target.is_symlink():
        perms = target.stat().st_mode & 0o777
        exec_bits = (perms & 0o444) >> 2
        os.chmod(staged, (perms | exec_bits) if mode == EXECUTABLE else (perms & ~0o111))


def _unstage(root: Path, entries: list[_Entry], plan_path: Path) -> None:
    """Remove the staged files (only those: their names are this accept's own)."""
    for entry in entries:
        _remove_own(root, entry.temp)
    plan_path.unlink(missing_ok=True)


def _remove_own(root: Path, temp: str | None) -> None:
    if temp is not None:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            Path(root, temp).unlink()


def _replace(root: Path, entry: _Entry) -> bool:
    """Move the staged file into place; False if a folder there is not empty any more."""
    assert entry.temp is not None
    target = root / entry.path
    if target.is_dir() and not target.is_symlink():
        for dirpath, _dirs, _files in sorted(os.walk(target), reverse=True):
            try:
                os.rmdir(dirpath)  # only empty folders: anything in them is the user's
            except OSError:
                return False
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(root / entry.temp, target)
    return True


def _delete(root: Path, path: str) -> None:
    target = root / path
    if target.is_symlink() or target.is_file():
        target.unlink()
    parent = target.parent
    while parent != root and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def _safe(path: str) -> bool:
    name = PurePosixPath(path)
    bad = ("", ".", "..")
    return (
        bool(name.parts)
        and not name.is_absolute()
        and "\0" not in path
        and not any(p in bad or p.lower() == ".git" for p in name.parts)
    )
