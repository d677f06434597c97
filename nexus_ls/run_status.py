"""A run's statuses, and how a run ended, decided from what its host and its agent said.

Pure: no I/O, no imports above the standard library, so any layer may use the names
(run records, the supervisor, the agent's outcome, the front ends).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

# Every status a run record holds. `queued` until its sandbox is made, `running` while its
# agent works, then one of the final four (`interrupted`: its host stopped first).
Status = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
STATUSES: tuple[Status, ...] = get_args(Status)
FINAL_STATUSES: frozenset[Status] = frozenset(("succeeded", "failed", "cancelled", "interrupted"))
# What an agent's `result` message may say it ended as.
Reported = Literal["succeeded", "failed", "cancelled"]
REPORTED: tuple[Reported, ...] = get_args(Reported)
# How the host ends a run it stopped: the user cancelled, the host shut down, a limit.
StopAs = Literal["cancelled", "interrupted", "failed"]
# What a listing shows for a run without a readable record (not a run status).
Leftover = Literal["damaged", "orphaned"]

CANCELLED_BY_USER = "cancelled by the user"
HOST_STOPPED = "the host stopped before the run ended"


def final_status(
    stop_as: StopAs | None,
    stop_error: str | None,
    result: Mapping[str, Any] | None,
    code: int,
    stderr_tail: str,
) -> tuple[Status, str | None]:
    """How a run ended, and why when it did not succeed.

    `stop_as`/`stop_error`: how the host asked it to stop, if it did; `result`: the agent's
    `result` message, None if it sent none; `code`: the agent's exit code (negative: the
    signal that killed it); `stderr_tail`: the last of its stderr, for a death unexplained.
    A success the agent reported wins over a stop that came too late to matter.
    """
    reported = result.get("status") if result is not None else None
    if stop_as is not None and reported != "succeeded":
        default = CANCELLED_BY_USER if stop_as == "cancelled" else HOST_STOPPED
        return stop_as, stop_error or default
    if result is None:
        cause = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return "failed", f"agent process died ({cause}): {stderr_tail}"
    error = result.get("error")
    error = None if error is None else str(error)
    for status in REPORTED:  # only a status NEXUS knows reaches the record
        if reported == status:
            return status, error
    said = "no status" if reported is None else f"the status {str(reported)[:60]!r}"
    why = f"the agent's result gave {said}, which is not one NEXUS knows"
    return "failed", f"{why}: {error}" if error else why


def reported_counts(
    result: Mapping[str, Any], tokens: Mapping[str, int]
) -> tuple[str, int, dict[str, int]]:
    """The summary, steps and token counts of an agent's result, each kept only when it is
    of the record's type (a record holding anything else would read as damaged); `tokens`
    stand in for counts that are not."""
    summary, steps, counts = result.get("summary"), result.get("steps"), result.get("tokens")
    if not (
        isinstance(counts, dict)
        and all(isinstance(k, str) and _whole(n) for k, n in counts.items())
    ):
        counts = tokens
    return (
        summary if isinstance(summary, str) else "",
        steps if isinstance(steps, int) and _whole(steps) else 0,
        dict(counts),
    )


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
