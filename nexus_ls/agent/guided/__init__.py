"""Guided mode, for small models: the harness plans and acts, the model fills in blanks.

`run` holds the plans, one per kind of task; `plans` classifies a task and finds what it
works on; `harness` makes the tool calls and asks one constrained question at a time;
`prompts` holds those questions and their answer schemas.
"""

from nexus_ls.agent.guided.run import GuidedAgent

__all__ = ["GuidedAgent"]
