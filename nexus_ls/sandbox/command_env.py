"""The environment a command starts with: an allowlist, never the agent's own.

Denylists leak: a secret under an unusual name (`DB_PASS`, `SENTRY_DSN`) passes any
pattern. So commands see only what tools need to find themselves and talk to a
terminal, plus names the user lists in `pass_env`; a name that looks like a secret is
dropped even then.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

ALLOWED = (
    "PATH", "LANG", "LANGUAGE", "TERM", "TZ", "COLORTERM", "NO_COLOR", "USER", "LOGNAME",
    "SHELL", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PYENV_ROOT",
    "PYENV_VERSION", "JAVA_HOME", "GOROOT", "GOPATH", "CARGO_HOME", "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN", "NVM_DIR", "NODE_PATH",
)  # fmt: skip
ALLOWED_PREFIXES = ("LC_",)
SECRET_NAME = re.compile(
    r"KEY|TOKEN|SECRET|PASS(?!PORT)|CREDENTIAL|AUTH(?!OR)|COOKIE|SESSION|DSN", re.IGNORECASE
)
# Variables naming folders whose tools commands may run; they are made readable.
PATH_VARIABLES = (
    "VIRTUAL_ENV", "CONDA_PREFIX", "PYENV_ROOT", "JAVA_HOME", "GOROOT", "GOPATH",
    "CARGO_HOME", "RUSTUP_HOME", "NVM_DIR",
)  # fmt: skip


def command_environment(
    environ: Mapping[str, str], home: str, tmp: str, pass_env: Iterable[str] = ()
) -> tuple[dict[str, str], list[str]]:
    """The allowlisted environment, and the `pass_env` names refused as secret-looking."""
    env = {
        name: value
        for name, value in environ.items()
        if name in ALLOWED or name.startswith(ALLOWED_PREFIXES)
    }
    refused = []
    for name in pass_env:
        if SECRET_NAME.search(name):
            refused.append(name)
        elif name in environ:
            env[name] = environ[name]
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(HOME=home, TMPDIR=tmp, PYTHONDONTWRITEBYTECODE="1")
    return env, refused
