"""Looking at a run's net change and bringing it into the user's working tree.

Accept is a three-way merge of the user's current state (including uncommitted work)
with the run's tip, over the run's base. It is all or nothing: conflicts, and anything
else that would clobber the user's files, are found before a single file is written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nexus_ls.errors import NexusError
from nexus_ls.sandbox.repo import Workspace, git_bytes, run_git
from nexus_ls.sandbox.snapshot import snapshot
from nexus_ls.sandbox.worktree import remove_worktree

GITLINK = "160000"
SYMLINK = "120000"
EXECUTABLE = "100755"


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


def net_diff(ws: Workspace, base: str, head: str) -> str:
    """The run's whole change as a patch (binary files are named, not dumped)."""
    out = git_bytes(ws.root, "diff", "--no-color", "--no-ext-diff", "--no-textconv", base, head)
    return out.decode("utf-8", "replace")


def changed_paths(ws: Workspace, base: str, head: str) -> list[str]:
    """Paths the run added, changed or deleted (a rename counts as both of its paths)."""
    out = git_bytes(ws.root, "diff", "--name-only", "-z", "--no-renames", base, head)
    return [os.fsdecode(name) for name in out.split(b"\0") if name]


def accept(ws: Workspace, base: str, head: str) -> list[str]:
    """Merge the run's change into the working tree; return the paths written or deleted.

    The user's state is snapshotted as a child of `base`, so `base` is the merge base of
    that snapshot and the run's tip. Never touches the index, HEAD or branches.
    """
    mine = snapshot(ws, parent=base, message="nexus: working tree before accept")
    merged = _merge_tree(ws, mine, head)
    changes = _tree_changes(ws, mine, merged)
    deleted = {c.path for c in changes if c.status == "D"}
    writes = [c for c in changes if c.status != "D"]
    for change in changes:
        _check_path(ws.root, change, deleted)
    blobs = _read_blobs(ws, [c.sha for c in writes])
    for change in changes:
        if change.status == "D":
            _delete(ws.root, change.path)
    for change in writes:
        _write(ws.root / change.path, blobs[change.sha], change.mode)
    return sorted(c.path for c in changes)


def discard(ws: Workspace, run_id: str) -> None:
    """Drop the run's worktree and branch; the journal keeps its diff."""
    remove_worktree(ws, run_id)


def _merge_tree(ws: Workspace, mine: str, head: str) -> str:
    result = run_git(
        ws.root, "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", mine, head
    )
    fields = [os.fsdecode(f) for f in result.stdout.split(b"\0") if f]
    if result.status == 1:
        raise MergeConflict(list(dict.fromkeys(fields[1:])))
    if result.status != 0 or not fields:
        raise NexusError(f"accept failed: git merge-tree: {result.stderr.strip()}")
    return fields[0]


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
    parts = PurePosixPath(change.path).parts
    if any(p in ("", ".", "..") or p.lower() == ".git" for p in parts):
        raise _refuse(f"the run's tree holds an unsafe path {change.path!r}")
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


def _delete(root: Path, path: str) -> None:
    target = root / path
    if target.is_symlink() or target.is_file():
        target.unlink()
    parent = target.parent
    while parent != root and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def _write(target: Path, data: bytes, mode: str) -> None:
    """Replace `target` atomically, keeping its permissions apart from the exec bit."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)  # only empty folders are left: _check_path saw to that
    tmp = target.with_name(f".{target.name}.nexus-accept")
    if os.path.lexists(tmp):
        tmp.unlink()
    if mode == SYMLINK:
        os.symlink(os.fsdecode(data), tmp)
    else:
        executable = mode == EXECUTABLE
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o777 if executable else 0o666)
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        if target.is_file() and not target.is_symlink():
            perms = target.stat().st_mode & 0o777
            exec_bits = (perms & 0o444) >> 2
            os.chmod(tmp, (perms | exec_bits) if executable else (perms & ~0o111))
    os.replace(tmp, target)


def blob_text(ws: Workspace, rev: str, path: str) -> str | None:
    """A file's text at a commit, or None where the commit has no such file."""
    result = run_git(ws.root, "cat-file", "blob", f"{rev}:{path}")
    return result.stdout.decode("utf-8", "surrogateescape") if result.status == 0 else None


def merge_texts(ours: str, base: str, theirs: str) -> str | None:
    """Three-way merge of three texts (an editor buffer against a run's change), or None
    when they conflict. `git merge-file` on temp files, so nothing in the repo is touched."""
    with tempfile.TemporaryDirectory(prefix="nexus-merge-") as tmp:
        names = []
        for name, text in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(tmp) / name
            path.write_bytes(text.encode("utf-8", "surrogateescape"))
            names.append(str(path))
        result = run_git(Path(tmp), "merge-file", "-p", *names)
    if result.status != 0:
        return None
    return result.stdout.decode("utf-8", "surrogateescape")
