"""`nexus acp`: the Agent Client Protocol face of NEXUS, for Zed, JetBrains and any ACP
client (`server.py` wires the SDK, `updates.py` maps journal events to session updates).

Its flags are those of `nexus run` that set a run (`run_flags.py`); everything else
comes from the client. The SDK is imported only when the command runs.
"""

from __future__ import annotations

import argparse
from typing import Any

HELP = "speak the Agent Client Protocol on stdio (Zed, JetBrains): a prompt is a run"


def add_acp_parser(sub: Any, *, flags: bool = True) -> None:
    """`nexus acp`; without `flags` only its name and help (for a parser of another command,
    which should not import the run's modules to build them)."""
    p: argparse.ArgumentParser = sub.add_parser("acp", help=HELP, description=HELP)
    if flags:
        from nexus_ls.run_flags import add_run_flags

        add_run_flags(p, terminal=False)


def cmd_acp(args: argparse.Namespace) -> int:
    from nexus_ls.acp.server import main
    from nexus_ls.run_flags import run_options
    from nexus_ls.run_start import check_limits

    options = run_options(args)
    check_limits(options.limits)  # a bad flag is said now, not at every prompt
    return main(options)
