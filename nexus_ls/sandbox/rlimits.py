"""Resource limits for every command a run starts.

The defaults sit far above what a normal test suite needs; they are there so a runaway
command (`yes > file`, a fork bomb, an endless loop) hurts only itself. Limits are set
both soft and hard inside the sandbox, where no process can raise them again.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass

from nexus_ls.errors import NexusError

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", re.IGNORECASE)


def _memory() -> int:
    """This machine's memory in bytes (32 GiB where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 32 << 30


@dataclass(frozen=True)
class ResourceLimits:
    """Per-process limits; 0 means no limit."""

    file_size: int = 1 << 30  # bytes one file may grow to
    processes: int = 1024  # processes and threads the sandbox may run at once
    cpu_time: int = 3600  # CPU seconds per process
    # Bytes of virtual memory per process: at most the machine's memory, so one command
    # meets its limit before the kernel's out-of-memory killer picks a victim.
    address_space: int = min(32 << 30, _memory())

    def public(self) -> dict[str, int]:
        return asdict(self)

    def prlimit_args(self) -> list[str]:
        """Options for util-linux `prlimit`, which sets soft and hard limits alike."""
        pairs = (
            ("--fsize", self.file_size),
            ("--nproc", self.processes),
            ("--cpu", self.cpu_time),
            ("--as", self.address_space),
        )
        return [f"{flag}={value}" for flag, value in pairs if value]


def parse_size(value: object, name: str) -> int:
    """Bytes from 1048576, "512M", "1 GiB" or "2g"; a bad value names its setting."""
    if isinstance(value, bool):
        raise NexusError(f"{name} must be a size such as 512M or 2G, not {value!r}")
    if isinstance(value, int):
        number, unit = float(value), ""
    else:
        match = _SIZE.fullmatch(str(value))
        if not match:
            raise NexusError(f"{name} must be a size such as 512M or 2G, not {value!r}")
        number, unit = float(match.group(1)), match.group(2).lower()
    if number < 0:
        raise NexusError(f"{name} must not be negative")
    return int(number * _UNITS[unit])


def parse_count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise NexusError(f"{name} must be a whole number, 0 or more (0: no limit), not {value!r}")
    return value


def human_size(size: int) -> str:
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size} bytes"
