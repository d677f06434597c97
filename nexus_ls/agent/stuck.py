"""Being stuck, beyond repeating one failing call: steps that change no file and show the
model nothing it has not seen before.

Each call's whole output is hashed (durations and addresses masked, so the same test run
twice is the same output); a step learned something if one of its outputs is new, and
changed something if its step commit moved the branch. `WARN_AFTER` idle steps in a row
get the model a warning, `STOP_AFTER` end the run `failed`. Reading new files, or
running the tests again after an edit, is never idle.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

WARN_AFTER = 8  # idle steps in a row: the model is warned
STOP_AFTER = 12  # idle steps in a row: the run stops, failed

# What differs between two runs of the same command without saying anything new.
_NOISE = re.compile(
    r"\b\d+(?:\.\d+)?\s?(?:ms|s|sec|secs|seconds?|min|minutes?)\b"  # durations
    r"|\b0x[0-9a-fA-F]{6,}\b"  # object addresses
    r"|\bpid \d+\b"
)

WARNING = (
    "For {idle} steps no file has changed and no call has shown you anything you had not "
    "seen already: you seem stuck. Change your approach (read what you have not read, make "
    "the change, check it another way), or call `finish` with success false saying what "
    "blocks you. After {stop} such steps in a row the run stops."
)


def fingerprint(text: str) -> str:
    return hashlib.sha1(_NOISE.sub("#", text).encode("utf-8", "replace")).hexdigest()


class Stuck:
    def __init__(self, warn_after: int = WARN_AFTER, stop_after: int = STOP_AFTER) -> None:
        self.warn_after, self.stop_after = warn_after, stop_after
        self.seen: set[str] = set()
        self.idle = 0  # steps in a row that changed nothing and learned nothing
        self.learned = False  # in the step being taken

    def observe(self, output: str) -> None:
        """One call's whole output; new if no earlier call of the run showed the same."""
        key = fingerprint(output)
        if key not in self.seen:
            self.seen.add(key)
            self.learned = True

    def step(self, changed: bool) -> Literal["warn", "stop"] | None:
        """The step is over: what the loop must do about it."""
        self.idle = 0 if changed or self.learned else self.idle + 1
        self.learned = False
        if self.idle >= self.stop_after:
            return "stop"
        return "warn" if self.idle == self.warn_after else None

    def warning(self) -> str:
        return WARNING.format(idle=self.idle, stop=self.stop_after)

    def reason(self) -> str:
        return (
            f"stopped: {self.idle} steps in a row changed no file and showed nothing new "
            "(the model seems stuck)"
        )
