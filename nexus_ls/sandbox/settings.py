"""How runs are confined, as the user set it: flags, then environment, then their policy file.

Only the user's own sources count. A repository's `.nexus/policy.toml` may add command
rules (see `policy.py`) but can never turn the sandbox off or grant the network: a
malicious repository must not be able to loosen its own cage.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from nexus_ls.errors import NexusError
from nexus_ls.sandbox.policy import Rule, parse_rules
from nexus_ls.sandbox.rlimits import ResourceLimits, parse_count, parse_size

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MODES = ("auto", "bwrap", "landlock", "off")
DEFAULT_SENSITIVE = (".env", ".env.*", "*.pem", "id_*", "*.key", "*.p12", "*.pfx", ".netrc")
DEFAULT_COMMIT_LIMIT = 10 << 20
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class SandboxSettings:
    mode: str = "auto"
    network: bool = False  # every command of the run gets the network
    bwrap: str | None = None  # a bubblewrap binary to use instead of the one found
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    commit_size_limit: int = DEFAULT_COMMIT_LIMIT
    sensitive_files: tuple[str, ...] = DEFAULT_SENSITIVE
    pass_env: tuple[str, ...] = ()  # extra variable names commands may see
    read_paths: tuple[str, ...] = ()  # extra paths under a hidden home commands may read
    rules: tuple[Rule, ...] = ()  # the user's command rules (policy.py)
    allow: tuple[str, ...] = ()  # --allow: leading words allowed, network included
    source: str = "default"  # where `mode` came from, for the run-start line

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data["limits"] = self.limits.public()
        return data


def policy_path(environ: Mapping[str, str] | None = None) -> Path:
    """The user's policy file: `$XDG_CONFIG_HOME/nexus/policy.toml`, else `~/.config/...`."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME") or "~", ".config")
    return Path(base).expanduser() / "nexus" / "policy.toml"


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict ({} when absent); a broken one is an error naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise NexusError(f"cannot read {path}: {exc.strerror}") from None
    return parse_toml(text, str(path))


def parse_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NexusError(f"{where} is not valid TOML: {exc}") from None


def flag(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise NexusError(f"{name} must be on or off, not {value!r}")


def check_mode(value: object, name: str) -> str:
    mode = str(value).strip().lower()
    if mode not in MODES:
        raise NexusError(f"{name} {value!r} is not one of {', '.join(MODES)}")
    return mode


def from_file(data: Mapping[str, Any], where: str) -> SandboxSettings:
    """Settings from the user's policy file (its `rules` are read by `policy.py`)."""
    known = {
        "sandbox", "network", "bwrap", "limits", "commit_size_limit",
        "sensitive_files", "pass_env", "read_paths", "rules",
    }  # fmt: skip
    unknown = sorted(set(data) - known)
    if unknown:
        raise NexusError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    s = SandboxSettings()
    if "sandbox" in data:
        s = replace(s, mode=check_mode(data["sandbox"], f"{where}: sandbox"), source=where)
    if "network" in data:
        s = replace(s, network=flag(data["network"], f"{where}: network"))
    if "bwrap" in data:
        s = replace(s, bwrap=str(data["bwrap"]))
    if "commit_size_limit" in data:
        size = parse_size(data["commit_size_limit"], f"{where}: commit_size_limit")
        s = replace(s, commit_size_limit=size)
    if "sensitive_files" in data:
        s = replace(
            s, sensitive_files=_strings(data["sensitive_files"], f"{where}: sensitive_files")
        )
    if "pass_env" in data:
        s = replace(s, pass_env=_strings(data["pass_env"], f"{where}: pass_env"))
    if "read_paths" in data:
        s = replace(s, read_paths=_strings(data["read_paths"], f"{where}: read_paths"))
    if "limits" in data:
        s = replace(s, limits=_limits(data["limits"], f"{where}: limits"))
    if "rules" in data:
        s = replace(s, rules=tuple(parse_rules(data["rules"], where, may_grant=True)))
    return s


def _strings(value: object, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise NexusError(f"{name} must be a list of strings")
    return tuple(value)


def _limits(value: object, name: str) -> ResourceLimits:
    if not isinstance(value, dict):
        raise NexusError(f"{name} must be a table")
    unknown = sorted(set(value) - {"file_size", "processes", "cpu_time", "address_space"})
    if unknown:
        raise NexusError(f"{name}: unknown limit(s) {', '.join(unknown)}")
    base = ResourceLimits()
    return ResourceLimits(
        file_size=parse_size(value.get("file_size", base.file_size), f"{name}.file_size"),
        processes=parse_count(value.get("processes", base.processes), f"{name}.processes"),
        cpu_time=parse_count(value.get("cpu_time", base.cpu_time), f"{name}.cpu_time"),
        address_space=parse_size(
            value.get("address_space", base.address_space), f"{name}.address_space"
        ),
    )


def resolve_sandbox(
    *,
    mode: str | None = None,
    network: bool | None = None,
    allow: tuple[str, ...] = (),
    environ: Mapping[str, str] | None = None,
    file_data: Mapping[str, Any] | None = None,
) -> SandboxSettings:
    """Flags (or editor settings) first, then NEXUS_SANDBOX / NEXUS_NETWORK / NEXUS_BWRAP,
    then the user's policy file, then the defaults."""
    env = os.environ if environ is None else environ
    if file_data is None:
        path = policy_path(env)
        s = from_file(read_toml(path), str(path))
    else:
        s = from_file(file_data, "policy")
    if env.get("NEXUS_BWRAP"):
        s = replace(s, bwrap=env["NEXUS_BWRAP"])
    if env.get("NEXUS_NETWORK"):
        s = replace(s, network=flag(env["NEXUS_NETWORK"], "NEXUS_NETWORK"))
    if env.get("NEXUS_SANDBOX"):
        mode_set = check_mode(env["NEXUS_SANDBOX"], "NEXUS_SANDBOX")
        s = replace(s, mode=mode_set, source="NEXUS_SANDBOX")
    if network is not None:
        s = replace(s, network=network)
    if mode is not None:
        s = replace(s, mode=check_mode(mode, "--sandbox"), source="flag")
    if allow:
        s = replace(s, allow=tuple(allow))
    return s
