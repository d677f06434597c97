"""The command line's flags that set a run (model, sandbox, limits), shared by `nexus run`,
`nexus demo` and `nexus acp`, and the `RunOptions` they make."""

from __future__ import annotations

import argparse

from nexus_ls.config import Limits
from nexus_ls.run_start import RunOptions


def add_run_flags(p: argparse.ArgumentParser, *, terminal: bool = True) -> None:
    """The flags that set a run; `terminal` (`run`, `demo`): also `--yes` and `--json`,
    which an editor-facing command (`acp`) answers its own way."""
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
        help="give the run's commands the network (default: off; NEXUS_NETWORK)",
    )
    p.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="WORDS",
        help='allow commands starting with WORDS, network included (e.g. "git push")',
    )
    if terminal:
        p.add_argument(
            "--yes", action="store_true", help="allow every command that would be asked for"
        )
    p.add_argument("--max-steps", type=int, default=Limits.max_steps)
    p.add_argument("--max-tokens", type=int, default=Limits.max_tokens)
    p.add_argument("--wall-time", type=float, default=Limits.wall_time, help="seconds")
    p.add_argument(
        "--context-tokens",
        type=int,
        default=Limits.context_tokens,
        help="the starting context's share of the first prompt, in tokens (0: none)",
    )
    p.add_argument(
        "--memory-tokens",
        type=int,
        default=Limits.memory_tokens,
        help="lessons from the workspace's memory in the starting context, in tokens (0: none)",
    )
    p.add_argument(
        "--context-window",
        type=int,
        default=None,
        help="the model's context in tokens (default: what the endpoint says, else 32768)",
    )
    p.add_argument("--max-depth", type=int, default=Limits.max_depth,
                   help="how deep sub-agents may spawn sub-agents (0: none)")  # fmt: skip
    p.add_argument("--max-agents", type=int, default=Limits.max_agents,
                   help="sub-agents one run may start in all (its sub-agents' count)")  # fmt: skip
    p.add_argument("--parallel-agents", type=int, default=Limits.parallel_agents,
                   help="sub-agents running at once; the others wait their turn")  # fmt: skip
    p.add_argument("--candidates", type=int, default=Limits.candidates,
                   help="guided mode: candidates tried per step (the model's and generated "
                   "edits, each checked) before it gives up")  # fmt: skip
    if terminal:
        p.add_argument("--json", action="store_true", help="print the outcome as one JSON object")


def run_options(args: argparse.Namespace) -> RunOptions:
    """What the flags of `add_run_flags` set for a run."""
    return RunOptions(
        model=args.model,
        base_url=args.base_url,
        tool_mode=args.tool_mode,
        local_model=args.local_model,
        guided=args.guided,
        limits=Limits(
            max_steps=args.max_steps,
            max_tokens=args.max_tokens,
            wall_time=args.wall_time,
            context_tokens=args.context_tokens,
            context_window=args.context_window,
            memory_tokens=args.memory_tokens,
            max_depth=args.max_depth,
            max_agents=args.max_agents,
            parallel_agents=args.parallel_agents,
            candidates=args.candidates,
        ),
        sandbox=args.sandbox,
        network=None if args.network is None else args.network == "on",
        allow=tuple(args.allow),
    )
