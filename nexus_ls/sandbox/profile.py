"""What a run's commands may touch: the one description both sandboxes enforce.

Writable: the run's worktree, and a private home and /tmp kept under the run's state.
Readable: the rest of the machine, except homes (the user's keys, tokens, shell
history), the user's working tree (a run works on its snapshot), /run (sockets of
services that a read-only mount does not stop), the system's password hashes and host
keys. Tools on PATH and the Python running NEXUS
stay readable even where they live under a home. Git's metadata is read-only, also
the worktree's own `.git` pointer, so no command can move a branch or plant a hook.
"""

from __future__ import annotations

import glob
import os
import re
import site
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nexus_ls.sandbox.command_env import PATH_VARIABLES, command_environment
from nexus_ls.sandbox.rlimits import ResourceLimits

_URL_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*://)[^/@\s]*@", re.IGNORECASE)
_SECRET_KEY = re.compile(
    r"\s*(\w*(password|passwd|token|secret|extraheader|key)\w*)\s*=", re.IGNORECASE
)
HIDDEN_ROOTS = ("/home", "/root", "/run", "/var/run", "/var/tmp", "/etc/ssl/private")
MASKED_FILES = (
    "/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-",
    "/etc/security/opasswd", "/etc/sudoers", "/etc/ssh/ssh_host_*_key",
)  # fmt: skip
# Folders of a home that hold credentials; a tool under one is exposed alone, not the folder.
PRIVATE_HOME_DIRS = frozenset(
    {".ssh", ".gnupg", ".aws", ".azure", ".config", ".local", ".docker", ".kube", ".netrc",
     ".password-store", ".mozilla", ".git-credentials", ".cache", ".npmrc", ".pypirc"}
)  # fmt: skip


@dataclass
class SandboxProfile:
    mode: str  # "bwrap", "landlock" or "off"
    worktree: str
    home: str  # HOME as commands see it
    tmp: str  # TMPDIR as commands see it
    private_home: str
    private_tmp: str
    hidden: list[str] = field(default_factory=list)
    read_only: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (target, link) recreated
    masked: list[str] = field(default_factory=list)
    replaced: list[tuple[str, str]] = field(default_factory=list)  # (file, shown instead of)
    protected: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    network: bool = False
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    bwrap: str | None = None
    prlimit: str | None = None
    landlock_abi: int = 0
    pids_cgroup: str | None = None  # where per-command pids cgroups go (root only)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["limits"] = self.limits.public()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SandboxProfile:
        values = dict(data)
        values["limits"] = ResourceLimits(**values.get("limits", {}))
        values["links"] = [tuple(pair) for pair in values.get("links", [])]
        values["replaced"] = [tuple(pair) for pair in values.get("replaced", [])]
        return cls(**values)


def private_dirs(state_dir: Path, run_id: str) -> tuple[Path, Path]:
    """The run's own home and /tmp, made empty; removed when the run ends."""
    base = state_dir / "sandbox" / run_id
    home, tmp = base / "home", base / "tmp"
    for path in (home, tmp):
        path.mkdir(parents=True, exist_ok=True)
    return home, tmp


def build_profile(
    *,
    mode: str,
    worktree: Path,
    repo_root: Path,
    common_dir: Path,
    private_home: Path,
    private_tmp: Path,
    environ: Mapping[str, str],
    state_dir: Path | None = None,
    network: bool = False,
    limits: ResourceLimits | None = None,
    pass_env: Iterable[str] = (),
    read_paths: Iterable[str] = (),
) -> SandboxProfile:
    """The profile for one run; `mode` says which sandbox will enforce it."""
    real_home = _real(environ.get("HOME") or "")
    # The user's own tree is hidden too: a run works on its snapshot, never on live files.
    # So is NEXUS's state (the journal, other runs' worktrees and private folders).
    roots = [*HIDDEN_ROOTS, real_home, _real(str(repo_root))]
    if state_dir is not None:
        roots.append(_real(str(state_dir)))
    hidden = _existing_dirs(r for r in roots if r != "/")
    confined = mode == "bwrap"
    # bwrap mounts the private home where the real one was, so tools that look for
    # $HOME/.pyenv and the like still find what is exposed there.
    home = real_home if confined and real_home not in ("", "/") else str(private_home)
    tmp = "/tmp" if confined else str(private_tmp)
    env, refused = command_environment(environ, home, tmp, pass_env)
    covering = [*hidden, "/tmp"]
    wanted = [
        *environ.get("PATH", "").split(os.pathsep),
        *(environ.get(name, "") for name in PATH_VARIABLES),
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        site.getusersitepackages(),
    ]
    exposed, links = _exposures(wanted, covering, real_home)
    for extra in read_paths:
        path = os.path.expanduser(extra)
        if os.path.exists(path):
            exposed.append(_real(path))
    exposed.append(_real(str(common_dir)))
    notes = [f"pass_env: {name} looks like a secret and is not passed" for name in refused]
    masked = [
        p for pattern in MASKED_FILES for p in sorted(glob.glob(pattern)) if os.path.isfile(p)
    ]
    dot_git = worktree / ".git"
    return SandboxProfile(
        mode=mode,
        worktree=_real(str(worktree)),
        home=home,
        tmp=tmp,
        private_home=str(private_home),
        private_tmp=str(private_tmp),
        hidden=hidden,
        read_only=_unique(exposed),
        links=links,
        masked=masked,
        protected=[_real(str(dot_git))] if dot_git.exists() else [],
        env=env,
        network=network,
        limits=limits or ResourceLimits(),
        notes=notes,
    )


def sanitized_git_config(common_dir: Path, into: Path) -> list[tuple[str, str]]:
    """A copy of the repository's config without credentials (a token in a remote's URL,
    an auth header), shown to commands in place of the real one; [] when there is none."""
    config = common_dir / "config"
    try:
        text = config.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return []
    text = _URL_USERINFO.sub(r"\1", text)
    kept = [line for line in text.splitlines(keepends=True) if not _SECRET_KEY.match(line)]
    into.write_text("".join(kept), encoding="utf-8", errors="surrogateescape")
    return [(str(into), _real(str(config)))]


def _exposures(
    wanted: Iterable[str], covering: list[str], home: str
) -> tuple[list[str], list[tuple[str, str]]]:
    """The folders to make readable again so `wanted` paths under hidden ones still work.

    A tool at `~/.pyenv/shims` exposes `~/.pyenv` (the shims need the versions beside
    them); one under `~/.local` or `~/.config` exposes only its own folder.
    """
    exposed: list[str] = []
    links: list[tuple[str, str]] = []
    for raw in wanted:
        if not raw or not os.path.isabs(raw):
            continue
        path = os.path.normpath(raw)
        base = _base_under(path, covering, home)
        if base is None or path == base:
            continue
        first = os.path.join(base, os.path.relpath(path, base).split(os.sep)[0])
        target = path if os.path.basename(first) in PRIVATE_HOME_DIRS else first
        if not os.path.exists(target):
            continue
        real = _real(target)
        exposed.append(real)
        if real != target:
            links.append((real, target))
    return exposed, links


def _base_under(path: str, covering: list[str], home: str) -> str | None:
    """The folder whose first level decides what `path` exposes, if a hidden one holds it."""
    holder = next((c for c in covering if _within(c, path)), None)
    if holder is None:
        return None
    if home and _within(home, path):
        return home
    if holder == "/home":  # /home/<user>/<tool>: decide at the user's level
        parts = os.path.relpath(path, holder).split(os.sep)
        return os.path.join(holder, parts[0]) if len(parts) > 1 else None
    return holder


def _within(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _real(path: str) -> str:
    return os.path.realpath(path) if path else ""


def _existing_dirs(paths: Iterable[str]) -> list[str]:
    found = []
    for path in paths:
        if path and os.path.isdir(path) and not os.path.islink(path):
            found.append(os.path.normpath(path))
    return _unique(found)


def _unique(paths: Iterable[str]) -> list[str]:
    """Without repeats, parents before children (mount order)."""
    seen = dict.fromkeys(p for p in paths if p)
    return sorted(seen, key=lambda p: (p.count(os.sep), p))
