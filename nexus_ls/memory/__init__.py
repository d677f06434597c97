"""Workspace memory: lessons NEXUS learns from what runs did and how the user judged them.

`lessons` is what a lesson is and how much it is trusted now; `store` keeps them in one
TinyDB file only the host writes, under a lock; `ranking` finds the ones that fit a task;
`learning` reads lessons out of a finished run's journal events; `workspace` is the one
door (every change journaled, no secret stored); `serving` answers the agents' `remember`
and `recall` requests.
"""

from .lessons import FLOOR, HALF_LIFE_DAYS, Lesson
from .serving import serve_memory
from .workspace import WorkspaceMemory

__all__ = ["FLOOR", "HALF_LIFE_DAYS", "Lesson", "WorkspaceMemory", "serve_memory"]
