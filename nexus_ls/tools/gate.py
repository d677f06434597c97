"""The gate every command passes before it starts: the policy's verdict, and the user's
answer when the policy says to ask.

An answer of "for this run" is remembered by what was asked (the rule's words, or the
command's own leading words for a network request), so the user is not asked again
for the same thing in the same run; it covers only a command that is that one thing
(`git push origin main`), never a line that does more (`curl ...; git push`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nexus_ls.sandbox.policy import Decision, Policy, is_single, simple_commands

# request -> (decision: "once" | "run" | "deny", who decided, in words)
Ask = Callable[[dict[str, Any]], tuple[str, str]]


@dataclass
class Verdict:
    run: bool
    network: bool
    refusal: str = ""  # what the model is told when the command does not run
    data: dict[str, Any] = field(default_factory=dict)
    unconfined: bool = False  # the user's rule lets it run outside the sandbox


class CommandGate:
    def __init__(self, policy: Policy, ask: Ask | None = None, network_on: bool = False) -> None:
        self.policy, self.ask, self.network_on = policy, ask, network_on
        self.for_run: set[tuple[str, ...]] = set()

    def check(self, command: str, wants_network: bool = False) -> Verdict:
        decision = self.policy.decide(command, wants_network and not self.network_on)
        data: dict[str, Any] = {"policy": decision.public()}
        if decision.action == "deny":
            return Verdict(False, False, f"not run: the policy refuses it: {decision.reason}", data)
        if decision.action == "allow":
            return Verdict(True, decision.network, data=data, unconfined=decision.unconfined)
        key = _key(command, decision)
        if key in self.for_run and is_single(command):
            data["approved"] = "allowed earlier in this run"
            return Verdict(True, decision.network, data=data, unconfined=decision.unconfined)
        if self.ask is None:
            answer, by = "deny", "no one could be asked"
        else:
            request = {"command": command, "network": decision.network, **decision.public()}
            answer, by = self.ask(request)
        data["approved"] = f"{answer} ({by})"
        if answer == "run":
            self.for_run.add(key)
        if answer in ("once", "run"):
            return Verdict(True, decision.network, data=data, unconfined=decision.unconfined)
        what = " with network" if decision.network else ""
        hint = " ".join(key[:-1]) if key[-1] in ("network", "no-network") else " ".join(key)
        return Verdict(
            False,
            False,
            f"not run: running it{what} needs the user's approval ({decision.reason}), and it "
            f"was not given: {by}. Work without it, or ask the user to allow it "
            f'(nexus run --allow "{hint}", or --yes)',
            data,
        )

    def approve(self, command: str, why: str, wants_network: bool = True) -> Verdict:
        """A command that runs only after the user says yes, whatever the rules allow (the
        project's deploy command): a rule that denies it still does, nobody to ask is a
        no, and "for this run" spares asking again for this same command."""
        decision = self.policy.decide(command, wants_network and not self.network_on)
        data: dict[str, Any] = {"policy": decision.public()}
        network = wants_network or decision.network
        if decision.action == "deny":
            return Verdict(False, False, f"not run: the policy refuses it: {decision.reason}", data)
        key = ("approve", command, "network" if network else "no-network")
        if key in self.for_run:
            data["approved"] = "allowed earlier in this run"
            return Verdict(True, network, data=data, unconfined=decision.unconfined)
        if self.ask is None:
            answer, by = "deny", "no one could be asked"
        else:
            request = {"command": command, **decision.public(), "network": network,
                       "action": "ask", "reason": why}  # fmt: skip
            answer, by = self.ask(request)
        data["approved"] = f"{answer} ({by})"
        if answer == "run":
            self.for_run.add(key)
        if answer in ("once", "run"):
            return Verdict(True, network, data=data, unconfined=decision.unconfined)
        return Verdict(
            False, False,
            f"not run: it needs the user's approval ({why}), and it was not given: {by}",
            data,
        )  # fmt: skip


def _key(command: str, decision: Decision) -> tuple[str, ...]:
    if decision.rule is not None:
        words = decision.rule.words
    else:
        first = (simple_commands(command) or [[command.strip()]])[0]
        words = tuple(first[:2])
    return (*words, "network" if decision.network else "no-network")
