"""Asking the user at the terminal whether a command may run.

On a terminal `nexus run` asks and waits; without one (a script, CI) nobody can answer,
so the command is refused and the model is told why, unless `--yes` allowed everything
that asks. `--allow WORDS` never reaches here: it is a rule that allows outright.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

from nexus_ls.journal.printable import one_line
from nexus_ls.runs import RunRecord

_ANSWERS = {"o": "once", "once": "once", "y": "once", "yes": "once", "r": "run", "run": "run"}


class TerminalApprover:
    def __init__(self, yes: bool = False, ask_in: TextIO | None = None, tell: TextIO | None = None):
        self.yes = yes
        self.ask_in = ask_in or sys.stdin
        self.tell = tell or sys.stderr
        self._lock = threading.Lock()  # one question at a time on one terminal

    def __call__(self, record: RunRecord, request: dict[str, Any]) -> tuple[str, str]:
        if self.yes:
            return "once", "--yes"
        if not self.ask_in.isatty():
            return "deny", "no one could be asked (nexus run has no terminal)"
        command = one_line(str(request.get("command", "")))
        network = " with network" if request.get("network") else ""
        with self._lock:
            print(
                f"nexus: run {record.id} asks to run `{command}`{network}\n"
                f"nexus:   why asked: {one_line(str(request.get('reason', '')))}\n"
                "nexus: allow it? [o]nce, for this [r]un, [N]o: ",
                end="",
                file=self.tell,
                flush=True,
            )
            line = self.ask_in.readline()
        answer = _ANSWERS.get(line.strip().lower(), "deny")
        return answer, "you, at the terminal" if line else "no answer (end of input)"
