"""Finding the user's repository and running git in it.

Every git call in the sandbox goes through `run_git`, so failures become one readable
`NexusError` line, commits never depend on the machine's git identity, and no git of
NEXUS's ever runs code that a repository's config names: hooks (a planted
`post-commit` runs even with `--no-verify`), fsmonitor, automatic gc.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nexus_ls.errors import NexusError

NEXUS_IDENTITY: dict[str, str] = {
    "GIT_AUTHOR_NAME": "NEXUS",
    "GIT_AUTHOR_EMAIL": "nexus@localhost",
    "GIT_COMMITTER_NAME": "NEXUS",
    "GIT_COMMITTER_EMAIL": "nexus@localhost",
}


# Config that would make git run a program of the repository's choosing, switched off.
SAFE_CONFIG = (
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.fsmonitor=false",
    "-c", "gc.auto=0",
    "-c", "maintenance.auto=false",
    "-c", "commit.gpgSign=false",
    # A repository nested in the worktree has a config the model writes; looking into it
    # (is the submodule dirty?) would run its filters.
    "-c", "diff.ignoreSubmodules=all",
    "-c", "status.submoduleSummary=false",
    "-c", "submodule.recurse=false",
)  # fmt: skip


def safe_git_environment() -> dict[str, str]:
    """SAFE_CONFIG as environment variables (GIT_CONFIG_COUNT, git 2.31+), for a git that
    NEXUS does not start itself: a command a rule lets out of the sandbox."""
    pairs = [SAFE_CONFIG[i + 1].split("=", 1) for i in range(0, len(SAFE_CONFIG), 2)]
    env = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for index, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


@dataclass(frozen=True)
class Workspace:
    """A user's repository as NEXUS sees it; state lives in the common dir, never the tree."""

    root: Path
    common_dir: Path
    state_dir: Path


@dataclass(frozen=True)
class GitResult:
    """Outcome of a git command whose exit status the caller wants to judge itself."""

    status: int
    stdout: bytes
    stderr: str


def open_workspace(path: str | Path) -> Workspace:
    """Find the repository around `path`, so commands work from any subdirectory.

    Git itself answers (one `rev-parse`, a few ms): it knows every shape of repository, and
    a command that only reads the journal should not pay for more."""
    start = Path(path).expanduser()
    if not start.exists():
        raise NexusError(f"{start} does not exist; pass an existing folder (-C DIR)")
    if not start.is_dir():
        start = start.parent
    asked = ("--is-bare-repository", "--git-common-dir", "--show-toplevel")
    try:
        found = subprocess.run(
            ["git", *SAFE_CONFIG, "rev-parse", *asked], cwd=start, capture_output=True, text=True
        )
    except FileNotFoundError:
        raise NexusError("git is not installed or not on PATH; NEXUS needs git") from None
    lines = found.stdout.splitlines()
    if not lines:
        if "not a git repository" in found.stderr:
            raise NexusError(
                f"{start} is not inside a git repository; "
                "run `git init` there to start, or open a folder inside a repository"
            )
        raise NexusError(f"cannot read the git repository at {start}: {_error_line(found.stderr)}")
    if lines[0] == "true":
        raise NexusError(
            f"{start} is a bare git repository; NEXUS needs a working tree "
            "(clone it and work in the clone)"
        )
    if found.returncode != 0 or len(lines) < 3:
        raise NexusError(
            f"{start} is inside a repository's git folder, not its working tree; "
            "open a folder of the working tree"
        )
    common_dir = (start / lines[1]).resolve()
    root = Path(lines[2]).resolve()
    state_dir = common_dir / "nexus"
    state_dir.mkdir(exist_ok=True)
    return Workspace(root=root, common_dir=common_dir, state_dir=state_dir)


def run_git(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
) -> GitResult:
    """Run git without judging the exit status (merge-tree and diff --quiet speak through it)."""
    # GitPython silently falls back to the process's cwd when the given one is missing,
    # which could aim a destructive command at the wrong repository.
    if not Path(cwd).is_dir():
        raise NexusError(f"{cwd} does not exist; cannot run git {args[0] if args else ''}")
    from git import Git

    command = [Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *SAFE_CONFIG, *args]
    with tempfile.TemporaryFile() as stream:
        if stdin is not None:
            stream.write(stdin)
            stream.seek(0)
        status, out, err = Git(str(cwd)).execute(
            command,
            istream=stream if stdin is not None else None,
            with_extended_output=True,
            with_exceptions=False,
            stdout_as_string=False,
            strip_newline_in_stdout=False,
            env=env,
        )
    return GitResult(status=status, stdout=out, stderr=err)


def git_bytes(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
) -> bytes:
    """Raw stdout, for blobs and NUL-separated listings whose bytes matter."""
    result = run_git(cwd, *args, env=env, stdin=stdin)
    if result.status != 0:
        raise NexusError(f"git {args[0] if args else ''} failed: {_error_line(result.stderr)}")
    return result.stdout


def git(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
) -> str:
    """Text stdout without its trailing newline; a failure raises NexusError with git's reason."""
    out = git_bytes(cwd, *args, env=env, stdin=stdin).decode("utf-8", "surrogateescape")
    return out[:-1] if out.endswith("\n") else out


def _error_line(stderr: str) -> str:
    """Pick the line of git's stderr that says what went wrong."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line
    return lines[0] if lines else "no message from git"


def head_commit(cwd: Path) -> str | None:
    """HEAD's commit, or None in a repository without commits yet."""
    result = run_git(cwd, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if result.status != 0:
        return None
    return result.stdout.decode().strip()


def changed_files(worktree: Path, env: dict[str, str] | None = None) -> list[str]:
    """Paths with uncommitted changes (staged, unstaged or untracked) in the worktree."""
    return sorted({path for _, path in status_entries(worktree, env)})


def status_entries(worktree: Path, env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(status code, path) of each uncommitted change, as `git status --porcelain` gives
    them: `??` for an untracked file (a nested repository ends in `/`), a rename or copy
    twice (its new path, then its source under the same code)."""
    out = git_bytes(
        worktree, "status", "--porcelain", "-z", "--untracked-files=all",
        "--ignore-submodules=all", env=env,
    )  # fmt: skip
    fields = out.split(b"\0")
    entries: list[tuple[str, str]] = []
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        code = entry[:2].decode("ascii", "replace")
        entries.append((code, os.fsdecode(entry[3:])))
        if entry[0:1] in (b"R", b"C") or entry[1:2] in (b"R", b"C"):
            # A rename or copy, staged or (from an intent-to-add entry) in the worktree, is
            # followed by its source path.
            entries.append((code, os.fsdecode(fields[i])))
            i += 1
    return entries


def stage_paths(
    cwd: Path, paths: list[str], env: dict[str, str], exclude: list[str] | tuple[str, ...] = ()
) -> None:
    """Stage exactly `paths` (as `git status` names them), never the rest of the tree:
    `add -A .` re-hashes every file whose timestamp is too new to trust, and one file git
    cannot convert (an unknown `working-tree-encoding`) then fails the whole add."""
    present = [p for p in paths if os.path.lexists(cwd / p) and not _behind_link(cwd, p)]
    gone = [p for p in paths if p not in present]
    excluded = [f":(exclude,literal){path}" for path in exclude]
    from_stdin = ("--pathspec-from-file=-", "--pathspec-file-nul")
    for command, chosen in ((("add", "-A"), present), (("rm", "-q", "--cached"), gone)):
        if chosen:
            specs = [*(f":(literal){path}" for path in chosen), *excluded]
            stdin = b"\0".join(os.fsencode(spec) for spec in specs) + b"\0"
            extra = ("-r", "--ignore-unmatch") if command[0] == "rm" else ()
            git(cwd, *command, *extra, *from_stdin, env=env, stdin=stdin)


def _behind_link(root: Path, path: str) -> bool:
    """Whether a folder on the way to `path` is a symlink: git holds no file behind one,
    so what git has there is gone, whatever the link leads to."""
    parts = path.rstrip("/").split("/")[:-1]
    return any(os.path.islink(root.joinpath(*parts[: n + 1])) for n in range(len(parts)))


def object_id(content: bytes, kind: str = "blob", hex_length: int = 40) -> str:
    """The id git gives an object of `kind` holding `content` (SHA-1, or SHA-256 for a
    repository whose ids have 64 hex digits), computed without running git."""
    import hashlib  # here: a command that only reads the journal never needs it

    digest = hashlib.sha256() if hex_length == 64 else hashlib.sha1()
    digest.update(f"{kind} {len(content)}\0".encode() + content)
    return digest.hexdigest()


def batch_check(
    cwd: Path, names: list[str], env: dict[str, str] | None = None
) -> list[tuple[str, str, int] | None]:
    """`git cat-file --batch-check` of each name (`HEAD`, `<tree>:<path>`, ...), in order:
    (id, type, size), or None for a name that does not resolve. Names must not hold a
    newline (the batch is line-based)."""
    if any("\n" in name for name in names):
        raise ValueError("a name for cat-file --batch-check holds a newline")
    stdin = "".join(f"{name}\n" for name in names).encode("utf-8", "surrogateescape")
    out = git_bytes(cwd, "cat-file", "--batch-check", env=env, stdin=stdin)
    answers: list[tuple[str, str, int] | None] = []
    for line in out.split(b"\n")[: len(names)]:
        fields = line.split(b" ")
        if len(fields) == 3 and fields[2].isdigit():
            answers.append((fields[0].decode(), fields[1].decode(), int(fields[2])))
        else:  # "<name> missing", "<name> ambiguous"
            answers.append(None)
    if len(answers) != len(names):
        raise NexusError("git cat-file --batch-check answered fewer names than it was asked")
    return answers
