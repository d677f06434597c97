"""One commit per step that changed files, with the model's reasons and run trailers.

The trailers make a run's history searchable with plain git
(`git log --grep 'Nexus-Run: <id>'`) long after the journal is gone. Two things never
enter a commit (and so never the user's object store or an accept): a file over the
size limit (a 2 GB sparse file would take a minute to hash and grow the store by its
size), and a change that adds a secret NEXUS knows or a private key.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexus_ls.sandbox.repo import (
    NEXUS_IDENTITY,
    batch_check,
    changed_files,
    git,
    git_bytes,
    object_id,
    run_git,
    stage_paths,
)
from nexus_ls.sandbox.rlimits import human_size

SUMMARY_LIMIT = 72
DEFAULT_SIZE_LIMIT = 10 << 20
# PEM and OpenSSH keys, PGP secret key blocks, PuTTY key files.
PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|^\+?PuTTY-User-Key-File-\d+:"
)
# PRIVATE_KEY's PuTTY line at the start of any line of a file, not only of a diff line.
ANY_LINE_PUTTY = re.compile(r"^\+?PuTTY-User-Key-File-\d+:", re.MULTILINE)


@dataclass(frozen=True)
class CommitGuard:
    """What a step commit refuses: files over `size_limit` bytes, and added lines holding
    one of `secrets` (name -> value) or a private key."""

    size_limit: int = DEFAULT_SIZE_LIMIT
    secrets: Mapping[str, str] = field(default_factory=dict)


@dataclass
class StepCommit:
    sha: str | None = None
    too_large: dict[str, int] = field(default_factory=dict)  # path -> size, left uncommitted
    nested: list[str] = field(default_factory=list)  # git repositories inside, left out
    refused: list[str] = field(default_factory=list)  # why nothing was committed
    files: list[str] = field(default_factory=list)  # what the commit changed (commit_paths)


def format_message(tool: str, summary: str, rationale: str, run_id: str, step: int) -> str:
    """Subject: what the step changed (`tool` only when nothing says more), then the
    rationale, then Nexus-Run / Nexus-Step trailers."""
    lines = summary.strip().splitlines()
    subject = lines[0].strip() if lines else ""
    if len(subject) > SUMMARY_LIMIT:
        subject = subject[: SUMMARY_LIMIT - 3].rstrip() + "..."
    parts = [subject or tool]
    if rationale.strip():
        parts.append(rationale.strip())
    parts.append(f"Nexus-Run: {run_id}\nNexus-Step: {step}")
    return "\n\n".join(parts) + "\n"


def worktree_env(worktree: Path, git_dir: Path | None) -> dict[str, str]:
    """Git's environment for the run's worktree, naming its git dir outright.

    A command may rewrite the worktree's `.git` pointer where the sandbox cannot keep it
    read-only; following it could stage the run's files into another repository.
    """
    if git_dir is None:
        return {}
    return {"GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(worktree)}


def commit_step(
    worktree: Path,
    tool: str,
    summary: str,
    rationale: str,
    run_id: str,
    step: int,
    git_dir: Path | None = None,
    guard: CommitGuard | None = None,
) -> StepCommit:
    """Commit what the step changed except files over the size limit; nothing at all if
    the change adds a known secret or a private key (it stays in the worktree)."""
    guard = guard or CommitGuard()
    env = worktree_env(worktree, git_dir)
    changed = changed_files(worktree, env)
    if not changed:
        return StepCommit()  # nothing to commit: no need to look for nested repositories
    outcome = StepCommit(too_large=_too_large(worktree, changed, guard.size_limit))
    outcome.nested = nested_repositories(worktree, env, changed)
    left_out = [*outcome.too_large, *outcome.nested]
    staged = [p for p in changed if not _inside(p.rstrip("/"), outcome.nested)]
    staged = [p for p in staged if p not in outcome.too_large]
    if not staged:
        return outcome
    stage_paths(worktree, staged, env, exclude=left_out)
    # Attributes can make a blob bigger than its file (working-tree-encoding): check the
    # staged sizes too, and unstage what is over the limit.
    grown = _staged_too_large(worktree, env, guard.size_limit)
    if grown:
        outcome.too_large.update(grown)
        paths = b"\0".join(os.fsencode(f":(literal){p}") for p in grown) + b"\0"
        from_stdin = ("--pathspec-from-file=-", "--pathspec-file-nul")
        git(worktree, "reset", "--quiet", *from_stdin, env=env, stdin=paths)
    quiet = ("diff", "--cached", "--quiet", "--ignore-submodules=all")
    if run_git(worktree, *quiet, env=env).status == 0:
        return outcome
    outcome.refused = _secrets_added(worktree, env, guard.secrets)
    if outcome.refused:
        git(worktree, "reset", "--quiet", env=env)  # unstage only: the files stay as they are
        return outcome
    message = format_message(tool, summary, rationale, run_id, step)
    # Hooks and signing belong to the user's own commits, not to a run's steps.
    git(
        worktree,
        "commit",
        "--quiet",
        "--no-verify",
        "--no-gpg-sign",
        "--cleanup=verbatim",
        "-F",
        "-",
        env={**NEXUS_IDENTITY, **env},
        stdin=message.encode("utf-8", "replace"),  # a model's lone surrogate, say
    )
    outcome.sha = git(worktree, "rev-parse", "HEAD", env=env)
    return outcome


def commit_paths(
    worktree: Path,
    paths: Sequence[str],
    tool: str,
    summary: str,
    rationale: str,
    run_id: str,
    step: int,
    git_dir: Path | None = None,
    guard: CommitGuard | None = None,
) -> StepCommit:
    """Commit exactly `paths`, the files a step wrote or removed, without scanning the tree.

    For a step whose tool knows what it changed (write_file, edit_file). The precondition
    is the caller's to keep: nothing else in the worktree differs from HEAD but what step
    commits always leave out (files over the size limit, nested repositories), i.e. the
    run's last step commit was neither refused nor failed. Then the commit, its tree and
    the index are the ones `commit_step` would make, with about half the git processes
    and none that reads the whole worktree: `git add` of the paths (the same staging
    `commit_step` does, ignore rules and attributes included), `write-tree`, one
    `cat-file --batch-check`, `commit-tree`, `update-ref`.

    The guard's checks run on the bytes in the worktree, and hold for the commit because
    each staged blob is checked to be those very bytes. Whatever this cannot decide
    exactly (content that may hold a secret, a blob a filter changed, an ignored new
    file, a folder, a link among the parents, a path git refuses) goes to `commit_step`.
    """
    guard = guard or CommitGuard()
    env = worktree_env(worktree, git_dir)

    def slow() -> StepCommit:
        return commit_step(worktree, tool, summary, rationale, run_id, step, git_dir, guard)

    names = _plain_paths(paths)
    if names is None:
        return slow()
    outcome = StepCommit()
    contents: dict[str, bytes | None] = {}  # path -> its bytes (a link: its target); None: gone
    for name in names:
        nested = _nested_parent(worktree, name)
        if nested is None:
            return slow()  # a link among the parents: git says what it makes of that
        if nested:
            outcome.nested.append(nested)
            continue
        try:
            info = os.lstat(worktree / name)
        except (FileNotFoundError, NotADirectoryError):
            contents[name] = None
            continue
        if stat.S_ISLNK(info.st_mode):
            contents[name] = os.fsencode(os.readlink(worktree / name))
        elif not stat.S_ISREG(info.st_mode):
            return slow()  # a folder now, or a fifo
        elif info.st_size > guard.size_limit:
            outcome.too_large[name] = info.st_size
            continue
        else:
            contents[name] = _read_plain(worktree / name)
        if _may_add_secret(contents[name] or b"", guard.secrets):
            return slow()  # the exact check needs the diff against the old blob
    outcome.nested = sorted(set(outcome.nested))
    if not contents:
        return outcome
    spec = b"".join(os.fsencode(f":(literal){name}") + b"\0" for name in contents)
    # `add -A` of literal paths, as `commit_step` stages them: it stages a removal too,
    # fails on a path that neither exists nor is tracked, and stops at an ignored new
    # file (having staged the others, which `commit_step` then commits as they are).
    added = run_git(worktree, "add", "-A", "--pathspec-from-file=-", "--pathspec-file-nul",
                    env=env, stdin=spec)  # fmt: skip
    if added.status != 0:
        return slow()
    tree = git(worktree, "write-tree", env=env)
    listed = list(contents)
    try:
        answers = batch_check(
            worktree,
            [
                "HEAD",
                "HEAD^{tree}",
                *(f"{tree}:{n}" for n in listed),
                *(f"HEAD:{n}" for n in listed),
            ],
            env,
        )
    except ValueError:
        return slow()
    head, head_tree = answers[0], answers[1]
    staged, before = answers[2 : 2 + len(listed)], answers[2 + len(listed) :]
    if head is None or head_tree is None:
        return slow()  # no commit yet
    for name, entry in zip(listed, staged, strict=True):
        content = contents[name]
        if content is None:
            if entry is not None:
                return slow()
        elif (
            entry is None
            or entry[1] != "blob"
            or entry[0] != object_id(content, "blob", len(head[0]))
        ):
            return slow()  # an attribute changed the bytes: the checks must see the blob
    if tree == head_tree[0]:
        return outcome  # the step wrote what was there
    changed = [
        n for n, new, old in zip(listed, staged, before, strict=True) if _id(new) != _id(old)
    ]
    outcome.files = changed or listed  # no blob changed: a mode did
    message = format_message(tool, summary, rationale, run_id, step)
    # Hooks and signing belong to the user's own commits, not to a run's steps.
    sha = git(
        worktree, "commit-tree", "--no-gpg-sign", "-p", head[0], tree,
        env={**NEXUS_IDENTITY, **env}, stdin=message.encode("utf-8", "replace"),
    )  # fmt: skip
    subject = message.split("\n", 1)[0]
    git(worktree, "update-ref", "-m", f"commit: {subject}", "HEAD", sha, head[0], env=env)
    outcome.sha = sha
    return outcome


def _id(entry: tuple[str, str, int] | None) -> str | None:
    return entry[0] if entry else None


def _plain_paths(paths: Sequence[str]) -> list[str] | None:
    """`paths` as git spells them (relative, `/`-separated, sorted, once each), or None if
    one is not a plain path inside the worktree."""
    names = set()
    for path in paths:
        name = posixpath.normpath(path.replace(os.sep, "/")) if path else ""
        parts = name.split("/")
        if (
            name in ("", ".")
            or name.startswith("/")
            or ".." in parts
            or any(part.lower() == ".git" for part in parts)
            or "\n" in name
            or "\0" in name
        ):
            return None
        names.add(name)
    return sorted(names)


def _nested_parent(worktree: Path, name: str) -> str | None:
    """The nested repository `name` is inside ("" if none), or None if a parent folder is
    a symbolic link or not a folder."""
    parent = ""
    for part in name.split("/")[:-1]:
        parent = f"{parent}/{part}" if parent else part
        try:
            info = os.lstat(worktree / parent)
        except FileNotFoundError:
            return ""  # the path is gone with its folder
        if not stat.S_ISDIR(info.st_mode):
            return None
        if os.path.lexists(worktree / parent / ".git"):
            return parent
    return ""


def _read_plain(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as stream:
        return stream.read()


def _may_add_secret(content: bytes, secrets: Mapping[str, str]) -> bool:
    """Whether some line of `content`, as a diff would add it (`+line`), could hold a
    known secret or a private key: never false where `_secrets_added` would find one."""
    text = content.decode("utf-8", "replace")
    if PRIVATE_KEY.search(text) or ANY_LINE_PUTTY.search(text):
        return True
    for value in secrets.values():
        if len(value) >= 8 and (value in text or value.startswith("+") and value[1:] in text):
            return True
    return False


def _inside(path: str, folders: list[str]) -> bool:
    return any(path == folder or path.startswith(folder + "/") for folder in folders)


def nested_repositories(
    worktree: Path, env: dict[str, str], changed: list[str] | None = None
) -> list[str]:
    """Repositories inside the worktree (new ones, and submodules of the base).

    Each has a config of its own that a command can write; `git add` asks a nested
    repository whether it is dirty, which runs that config's filters outside the sandbox.
    They are never staged, so NEXUS's git never looks inside them.
    """
    found = []
    listing = git_bytes(
        worktree, "ls-files", "-z", "--others", "--directory", "--exclude-standard", env=env
    )
    for entry in listing.split(b"\0"):
        name = os.fsdecode(entry)
        if not name.endswith("/"):
            continue
        # git shows a new folder once, however deep the repository inside it is.
        for folder, dirs, files in os.walk(worktree / name):
            if ".git" in dirs or ".git" in files:
                found.append(Path(folder).relative_to(worktree).as_posix())
                dirs.clear()
    for line in git_bytes(worktree, "ls-files", "--stage", "-z", env=env).split(b"\0"):
        if line.startswith(b"160000 "):
            found.append(os.fsdecode(line.split(b"\t", 1)[1]))
    # A repository made inside a folder the project already tracks: look up from each
    # changed file for a `.git` of its own.
    for path in changed or []:
        parent = Path(path).parent
        while parent != Path("."):
            if os.path.lexists(worktree / parent / ".git"):
                found.append(parent.as_posix())
                break
            parent = parent.parent
    return sorted(set(found))


def _too_large(worktree: Path, changed: list[str], limit: int) -> dict[str, int]:
    """Changed files over `limit` bytes, by their size on disk (never hashed)."""
    found = {}
    for path in changed:
        try:
            info = os.lstat(worktree / path)
        except OSError:
            continue  # deleted
        # Links and folders (a nested repository, `sub/`) have no size of their own here.
        if stat.S_ISREG(info.st_mode) and info.st_size > limit:
            found[path] = info.st_size
    return found


def _staged_too_large(worktree: Path, env: dict[str, str], limit: int) -> dict[str, int]:
    """Staged new or changed blobs over `limit` bytes, by path."""
    raw = git_bytes(
        worktree, "diff", "--cached", "--raw", "-z", "--no-abbrev", "--no-renames",
        "--diff-filter=AM", "--ignore-submodules=all", env=env,
    ).split(b"\0")  # fmt: skip
    blobs = {}
    for meta, path in zip(raw[0::2], raw[1::2], strict=False):
        fields = meta.split()
        if len(fields) >= 4:
            blobs[os.fsdecode(path)] = fields[3].decode()
    if not blobs:
        return {}
    answer = git_bytes(
        worktree, "cat-file", "--batch-check", env=env, stdin="\n".join(blobs.values()).encode()
    ).decode()
    sizes = {}
    for line in answer.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "blob":
            sizes[parts[0]] = int(parts[2])
    return {p: sizes[sha] for p, sha in blobs.items() if sizes.get(sha, 0) > limit}


def _secrets_added(worktree: Path, env: dict[str, str], secrets: Mapping[str, str]) -> list[str]:
    """One line per staged file whose added lines hold a known secret or a private key."""
    diff = git_bytes(
        worktree, "diff", "--cached", "--no-ext-diff", "--no-textconv", "-U0", "--no-color",
        "--text", "--ignore-submodules=all", env=env,
    ).decode("utf-8", "replace")  # fmt: skip
    problems: dict[str, set[str]] = {}
    current = "?"
    for line in diff.split("\n"):
        if line.startswith("+++ "):
            current = line[6:] if line.startswith("+++ b/") else line[4:]
            continue
        if not line.startswith("+"):
            continue
        for name, value in secrets.items():
            if len(value) >= 8 and value in line:
                problems.setdefault(current, set()).add(f"the value of {name}")
        if PRIVATE_KEY.search(line):
            problems.setdefault(current, set()).add("a private key")
    return [f"{path} adds {' and '.join(sorted(what))}" for path, what in sorted(problems.items())]


def describe_refusals(outcome: StepCommit, size_limit: int) -> str | None:
    """What the model is told when (part of) its step was not committed."""
    lines = []
    if outcome.refused:
        lines.append(
            "note: this step was NOT committed: "
            + "; ".join(outcome.refused)
            + ". Secrets never go into a commit; remove them (read them from the environment "
            "or a file outside the project at run time). The change stays in the worktree."
        )
    if outcome.nested:
        lines.append(
            "note: not committed: " + ", ".join(outcome.nested) + " (a git repository inside "
            "the project; NEXUS commits the project's own files only)"
        )
    if outcome.too_large:
        files = ", ".join(f"{p} ({human_size(n)})" for p, n in sorted(outcome.too_large.items()))
        lines.append(
            f"note: not committed, over the {human_size(size_limit)} limit for a step commit: "
            f"{files}. They stay in the worktree only; delete them or add them to .gitignore."
        )
    return "\n".join(lines) or None


DIFF_LIMIT = 200_000  # the most of a commit's patch an event carries


def commit_change(cwd: Path, sha: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """A commit's files and patch (cut at DIFF_LIMIT), as a step's `edit` event holds them."""
    show = ("show", "--format=", "--no-ext-diff", "--no-textconv")
    diff = git(cwd, *show, "--patch", sha, env=env)
    files = git(cwd, *show, "--name-only", sha, env=env).splitlines()
    return {
        "commit": sha,
        "files": files,
        "diff": diff[:DIFF_LIMIT],
        "diff_truncated": len(diff) > DIFF_LIMIT,
    }


def tool_change(sha: str, files: list[str], diff: str) -> dict[str, Any]:
    """What `commit_change` gives, built from what the step's tools already know (the
    paths `commit_paths` committed, the tools' own diff of their before and after text)
    instead of two `git show`s."""
    return {
        "commit": sha,
        "files": files,
        "diff": diff[:DIFF_LIMIT],
        "diff_truncated": len(diff) > DIFF_LIMIT,
    }
