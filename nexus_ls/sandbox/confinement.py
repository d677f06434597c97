"""Which sandbox a run gets, and how a command is started inside it.

The host decides once per run (`prepare`) and states it; the agent wraps each command
(`wrap`). Bubblewrap first; where it cannot run, Landlock; where neither can, NEXUS
refuses to start the run and says how to fix that, unless the user turned the sandbox
off, which every run then states.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nexus_ls.errors import NexusError
from nexus_ls.sandbox import bwrap, landlock
from nexus_ls.sandbox.cgroups import pids_hierarchy, prune_stale
from nexus_ls.sandbox.netns import RunNetwork
from nexus_ls.sandbox.profile import (
    SandboxProfile,
    build_profile,
    private_dirs,
    sanitized_git_config,
)
from nexus_ls.sandbox.rlimits import human_size
from nexus_ls.sandbox.settings import SandboxSettings, policy_path

LANDLOCK_SCRIPT = str(Path(landlock.__file__).resolve())
DEVICE_FILES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")
FIX = (
    "to fix: allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
    "or on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0) or install bubblewrap; "
    "or use a Linux kernel with Landlock (5.13 or later, `lsm=landlock`)"
)


def choose_mode(settings: SandboxSettings) -> tuple[str, str | None, int, list[str]]:
    """(mode, bwrap binary, Landlock ABI, why stronger modes were passed over)."""
    if settings.mode == "off":
        return "off", None, 0, []
    if not sys.platform.startswith("linux"):
        raise NexusError(
            f"NEXUS can confine commands only on Linux for now ({sys.platform} is not); "
            'set sandbox = "off" in your policy file or pass --sandbox off to run commands '
            "unconfined (docs/security.md says what that means)"
        )
    passed: list[str] = []
    if settings.mode in ("auto", "bwrap"):
        binary, failures = bwrap.find_working(settings.bwrap)
        if binary:
            return "bwrap", binary, 0, []
        passed += [f"bubblewrap: {f}" for f in failures]
        if settings.mode == "bwrap":
            raise NexusError(f"sandbox = bwrap, but {'; '.join(failures)}; {FIX}")
    abi = landlock.abi_version()
    if abi >= 1:
        return "landlock", None, abi, passed
    passed.append("Landlock: not available in this kernel")
    off = f'or set sandbox = "off" in {policy_path()} (or --sandbox off) to run them unconfined'
    raise NexusError(
        f"NEXUS cannot confine the commands a run starts here ({'; '.join(passed)}); {FIX}; {off}"
    )


def prepare(
    *,
    state_dir: Path,
    run_id: str,
    worktree: Path,
    repo_root: Path,
    common_dir: Path,
    settings: SandboxSettings,
    environ: Mapping[str, str] | None = None,
) -> SandboxProfile:
    """The run's profile in the mode that can enforce it here (or NexusError saying why not)."""
    mode, binary, abi, passed = choose_mode(settings)
    home, tmp = private_dirs(state_dir, run_id)
    profile = build_profile(
        mode=mode,
        worktree=worktree,
        repo_root=repo_root,
        common_dir=common_dir,
        private_home=home,
        private_tmp=tmp,
        environ=os.environ if environ is None else environ,
        state_dir=state_dir,
        network=settings.network,
        limits=settings.limits,
        pass_env=settings.pass_env,
        read_paths=settings.read_paths,
    )
    notes = [*passed, *profile.notes]
    prlimit = shutil.which("prlimit") if mode == "bwrap" else None
    if mode == "bwrap" and not prlimit:
        notes.append("resource limits not set: util-linux `prlimit` is not installed")
    if mode == "landlock" and not settings.network and landlock.socket_filter(False) is None:
        notes.append(
            f"network not fully confined: no socket filter for {os.uname().machine}"
            + (f", and Landlock ABI {abi} cannot restrict TCP (needs 4)" if abi < 4 else "")
        )
    cgroup = None
    if mode != "off" and os.geteuid() == 0 and settings.limits.processes:
        # The kernel never counts root's processes against RLIMIT_NPROC.
        cgroup = pids_hierarchy()
        prune_stale(cgroup)
        if cgroup is None:
            notes.append(
                "process limit not enforced: NEXUS runs as root, whose processes the kernel "
                "does not count, and no pids cgroup can be made here"
            )
    # Under bubblewrap commands see the repository's config without its credentials;
    # Landlock cannot show a file in place of another.
    replaced = sanitized_git_config(common_dir, home.parent / "gitconfig") if binary else []
    return replace(
        profile, bwrap=binary, prlimit=prlimit, landlock_abi=abi, pids_cgroup=cgroup,
        notes=notes, replaced=replaced,
    )  # fmt: skip


def describe(profile: SandboxProfile) -> str:
    """One line for the run's start: what is confined and how."""
    if profile.mode == "off":
        return (
            "sandbox OFF: commands run unconfined, with your files, home and network "
            "(the sandbox setting is off)"
        )
    how = "bubblewrap" if profile.mode == "bwrap" else f"Landlock (ABI {profile.landlock_abi})"
    net = "network on" if profile.network else "network off"
    limits = profile.limits
    parts = [
        f"sandbox: {how}; writable: the worktree, a private home and /tmp; {net}",
        f"limits: files {human_size(limits.file_size)}, {limits.processes} processes, "
        f"{limits.cpu_time} s CPU, {human_size(limits.address_space)} memory",
    ]
    return "; ".join(parts + profile.notes)


@dataclass(frozen=True)
class Launch:
    """How to start a confined command: its argv, and the descriptors it must get as
    stdin and stdout (None: /dev/null, and where its output goes) to enter the run's
    network namespace; its output then goes to its stderr."""

    argv: list[str]
    stdin: int | None = None
    stdout: int | None = None


def launch(
    profile: SandboxProfile,
    command: str,
    network: bool = False,
    run_network: RunNetwork | None = None,
) -> Launch:
    """`wrap`, in the run's own network namespace (shared by all of its commands and
    services) when the command has no network and the run has one; else as `wrap`."""
    if profile.mode == "bwrap" and not (network or profile.network) and run_network:
        entry = run_network.entry()
        if entry is not None:
            # No --unshare-net: the command stays in the namespace nsenter joined.
            argv = bwrap.command_line(profile, ["/bin/sh", "-c", command], True)
            return Launch(entry.prefix + argv, entry.stdin, entry.stdout)
    return Launch(wrap(profile, command, network))


def wrap(profile: SandboxProfile, command: str, network: bool = False) -> list[str]:
    """The argv that runs the shell `command` under the profile (`network`: this command
    may use the network, as granted by the run's settings or an approval)."""
    argv = ["/bin/sh", "-c", command]
    allow_net = network or profile.network
    if profile.mode == "bwrap":
        return bwrap.command_line(profile, argv, allow_net)
    if profile.mode == "landlock":
        spec = _landlock_spec(profile, allow_net)
        return [sys.executable, "-I", "-S", LANDLOCK_SCRIPT, spec, "--", *argv]
    return argv


def _landlock_spec(profile: SandboxProfile, network: bool) -> str:
    spec: dict[str, Any] = {
        "abi": profile.landlock_abi,
        "network": network,
        "read": _readable(tuple(profile.hidden), tuple(profile.masked), tuple(profile.read_only)),
        "write": [profile.worktree, profile.private_home, profile.private_tmp, "/dev/shm"],
        "write_files": [p for p in DEVICE_FILES if os.path.exists(p)],
        "limits": profile.limits.public(),
    }
    return json.dumps(spec)


@functools.lru_cache(maxsize=4)
def _readable(
    hidden: tuple[str, ...], masked: tuple[str, ...], extra: tuple[str, ...]
) -> list[str]:
    return landlock.readable((*hidden, "/tmp"), masked, extra)
