"""`nexus acp`: the Agent Client Protocol face of NEXUS, for Zed, JetBrains and any ACP
client (`server.py` wires the SDK, `updates.py` maps journal events to session updates).

Its flags are the model and limit flags of `nexus run`; everything else comes from the
client. The SDK is imported only when the command runs.
"""

from __future__ import annotations

import argparse
from typing import Any

from nexus_ls.config import Limits
from nexus_ls.run_start import RunOptions, check_limits

HELP = "speak the Agent Client Protocol on stdio (Zed, JetBrains): a prompt is a run"


def add_acp_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("acp", help=HELP, description=HELP)
    p.add_argument("--model", help="model name (default: NEXUS_MODEL, else the endpoint's first)")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint (default: OPENAI_BASE_URL)")
    p.add_argument("--tool-mode", choices=("auto", "native", "text"), help="how tools are called")
    p.add_argument("--local-model", help="a GGUF file to serve (default: NEXUS_LOCAL_MODEL)")
    p.add_argument(
        "--guided",
        action=argparse.BooleanOptionalAction,
        help="let the harness drive the loop (default: on for the bundled model; NEXUS_GUIDED)",
    )
    p.add_argument(
        "--sandbox",
        choices=("auto", "bwrap", "landlock", "off"),
        help="how commands are confined (default: auto; NEXUS_SANDBOX, the policy file)",
    )
    p.add_argument(
        "--network",
        choices=("on", "off"),
        help="give the runs' commands the network (default: off; NEXUS_NETWORK)",
    )
    p.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="WORDS",
        help='allow commands starting with WORDS, network included (e.g. "git push")',
    )
    p.add_argument("--max-steps", type=int, default=Limits.max_steps)
    p.add_argument("--max-tokens", type=int, default=Limits.max_tokens)
    p.add_argument("--wall-time", type=float, default=Limits.wall_time, help="seconds")


def acp_options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(
        model=args.model,
        base_url=args.base_url,
        tool_mode=args.tool_mode,
        local_model=args.local_model,
        guided=args.guided,
        limits=Limits(
            max_steps=args.max_steps, max_tokens=args.max_tokens, wall_time=args.wall_time
        ),
        sandbox=args.sandbox,
        network=None if args.network is None else args.network == "on",
        allow=tuple(args.allow),
    )


def cmd_acp(args: argparse.Namespace) -> int:
    from nexus_ls.acp.server import main

    options = acp_options(args)
    check_limits(options.limits)  # a bad flag is said now, not at every prompt
    return main(options)
