"""`nexus demo`: a real agent run on a small example project, in a fresh git repository.

The project ships inside the package, so the demo works from any install: it is copied to
a new folder, committed, and handed to `nexus run` like any user repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from nexus_ls.errors import NexusError
from nexus_ls.sandbox import NEXUS_IDENTITY

PROJECT = Path(__file__).parent / "calc"
TASK = "fix the failing test"


def prepare(target: str | None) -> Path:
    """Copy the example project to `target` (default: a new temp folder) and commit it."""
    root = Path(target) if target else Path(tempfile.mkdtemp(prefix="nexus-demo-")) / "calc"
    if root.exists() and any(root.iterdir()):
        raise NexusError(f"{root} is not empty; give --dir a new or empty folder")
    shutil.copytree(PROJECT, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, **NEXUS_IDENTITY}
    for command in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "--no-verify", "-m", "calc: the example project"],
    ):
        subprocess.run(command, cwd=root, env=env, check=True, capture_output=True)
    return root
