"""How a run ended, from what its host and its agent said: every rule of `final_status`."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from nexus_ls.run_status import (
    CANCELLED_BY_USER,
    FINAL_STATUSES,
    HOST_STOPPED,
    REPORTED,
    STATUSES,
    Status,
    final_status,
    reported_counts,
)
from nexus_ls.runs import RunRecord, check_record

TAIL = "Traceback ... | MemoryError"


def result(status: Any = "succeeded", error: Any = None, **more: Any) -> dict[str, Any]:
    return {"type": "result", "status": status, "error": error, "summary": "done", **more}


def test_the_statuses_are_defined_once() -> None:
    assert get_args(Status) == STATUSES
    assert STATUSES == ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
    assert set(STATUSES) - {"queued", "running"} == FINAL_STATUSES
    assert set(REPORTED) <= FINAL_STATUSES


@pytest.mark.parametrize("stop_as", ["cancelled", "interrupted", "failed"])
def test_a_success_reported_before_the_stop_took_effect_stands(stop_as: Any) -> None:
    assert final_status(stop_as, "time limit reached", result(), 0, "") == ("succeeded", None)


@pytest.mark.parametrize("reported", [result("failed", "step limit"), result("cancelled"), None])
def test_a_user_cancel_wins_over_anything_but_a_success(reported: Any) -> None:
    code = -9 if reported is None else 0
    assert final_status("cancelled", None, reported, code, TAIL) == (
        "cancelled",
        CANCELLED_BY_USER,
    )


def test_a_host_stop_is_an_interruption() -> None:
    assert final_status("interrupted", None, None, -9, TAIL) == ("interrupted", HOST_STOPPED)
    assert final_status("interrupted", None, result("cancelled"), 0, "") == (
        "interrupted",
        HOST_STOPPED,
    )


def test_a_limit_the_host_enforced_says_which() -> None:
    why = "time limit reached (60 s); the agent did not stop by itself and was stopped by NEXUS"
    assert final_status("failed", why, None, -9, TAIL) == ("failed", why)


def test_an_agent_killed_by_a_signal_says_so_with_its_last_words() -> None:
    assert final_status(None, None, None, -9, TAIL) == (
        "failed",
        f"agent process died (killed by signal 9): {TAIL}",
    )


def test_an_agent_that_exited_without_a_result_gives_its_exit_code() -> None:
    assert final_status(None, None, None, 1, "no output") == (
        "failed",
        "agent process died (exited with code 1): no output",
    )
    # Exiting 0 without a result is a death too.
    assert final_status(None, None, None, 0, "no output")[1] == (
        "agent process died (exited with code 0): no output"
    )


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_the_agent_s_result_is_taken_as_it_says(status: str) -> None:
    error = None if status == "succeeded" else "it went wrong"
    assert final_status(None, None, result(status, error), 0, "") == (status, error)


def test_a_result_counts_even_when_the_agent_then_died() -> None:
    assert final_status(None, None, result("failed", "gave up"), -11, TAIL) == (
        "failed",
        "gave up",
    )


@pytest.mark.parametrize(
    ("message", "said"),
    [
        ({"type": "result"}, "no status"),
        (result(None), "no status"),
        (result("running"), "the status 'running'"),
        (result("queued"), "the status 'queued'"),
        (result("interrupted"), "the status 'interrupted'"),
        (result("exploded"), "the status 'exploded'"),
        (result(42), "the status '42'"),
        (result(["succeeded"]), "the status \"['succeeded']\""),
        (result("x" * 500), "the status '" + "x" * 60 + "'"),
    ],
)
def test_a_missing_or_unknown_status_fails_the_run_saying_so(message: Any, said: str) -> None:
    status, error = final_status(None, None, message, 0, "")
    assert status == "failed"
    assert error == f"the agent's result gave {said}, which is not one NEXUS knows"


def test_an_unknown_status_keeps_the_agent_s_error() -> None:
    _, error = final_status(None, None, result("weird", "the real reason"), 0, "")
    assert error is not None and error.endswith(": the real reason")


def test_an_error_that_is_not_text_becomes_text() -> None:
    assert final_status(None, None, result("failed", {"why": 1}), 0, "") == (
        "failed",
        "{'why': 1}",
    )


def test_counts_of_the_record_s_types_are_kept() -> None:
    message = result(steps=3, tokens={"prompt": 10, "completion": 2})
    assert reported_counts(message, {"prompt": 0, "completion": 0}) == (
        "done",
        3,
        {"prompt": 10, "completion": 2},
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"summary": 7, "steps": "3", "tokens": {"prompt": "10"}},
        {"summary": None, "steps": True, "tokens": [1, 2]},
        {"summary": ["x"], "steps": -1, "tokens": {"prompt": 1.5}},
        {"steps": None, "tokens": None},
    ],
)
def test_garbage_counts_never_damage_the_record(bad: dict[str, Any]) -> None:
    before = {"prompt": 5, "completion": 1}
    summary, steps, tokens = reported_counts({"type": "result", **bad}, before)
    assert (steps, tokens) == (0, before)
    assert summary == ""
    record = RunRecord(id="r1", task="t", status="failed", summary=summary, steps=steps,
                       tokens=tokens)  # fmt: skip
    assert check_record(record.to_json(), "r1") == record
