"""Which commands run, which are refused, and which need the user's yes.

Rules match a command's leading words, like Codex's prefix rules, and the first rule
that matches decides: `allow`, `ask` or `deny`. An `allow` rule may also grant the
network. Rules come, in this order, from `--allow` flags, the user's
`~/.config/nexus/policy.toml`, the repository's `.nexus/policy.toml` as committed in
the run's base (never the worktree's copy, which the model can edit), then the
defaults: everything runs sandboxed; the network and `git push` are asked for.

Anything else the sandbox refuses can be granted too, by the user's own rules only: a
rule with `sandbox = false` runs the commands it matches (once allowed, or once the user
said yes to an `ask`) outside the sandbox. A repository's rules can refuse and ask but
never grant: an `allow` with `network = true` from a repository becomes `ask`, and one
with `sandbox = false` is refused outright.

The sandbox is the security boundary; the policy decides what is worth a question.
A command that dodges a rule (`sh -c "git push"`) still runs sandboxed, without network.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from nexus_ls.errors import NexusError

DECISIONS = ("allow", "ask", "deny")
_SEPARATORS = {";", "&&", "||", "|", "&", "\n", "(", ")", "|&", ";;"}
_WRAPPERS = {"command", "env", "exec", "nice", "nohup", "time", "timeout", "xargs"}


@dataclass(frozen=True)
class Rule:
    words: tuple[str, ...]
    decision: str
    network: bool = False  # an allow rule that also grants the network
    source: str = "default"
    unconfined: bool = False  # once allowed, the command runs outside the sandbox

    def matches(self, words: Sequence[str]) -> bool:
        return tuple(words[: len(self.words)]) == self.words

    def describe(self) -> str:
        grant = " with network" if self.network and self.decision == "allow" else ""
        if self.unconfined and self.decision != "deny":
            grant += " outside the sandbox"
        return f"`{' '.join(self.words)}` -> {self.decision}{grant} ({self.source})"


DEFAULT_RULES = (Rule(("git", "push"), "ask", network=True),)


@dataclass(frozen=True)
class Decision:
    action: str  # allow, ask or deny
    network: bool  # the command would run with network
    rule: Rule | None  # what decided; None: the defaults
    reason: str
    unconfined: bool = False  # once allowed, the command runs outside the sandbox

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data["rule"] = self.rule.describe() if self.rule else None
        return data


@dataclass
class Policy:
    rules: list[Rule] = field(default_factory=lambda: list(DEFAULT_RULES))

    def decide(self, command: str, wants_network: bool = False) -> Decision:
        """What to do with `command`; `wants_network`: the model asked for the network."""
        decisions = [self._decide_one(words) for words in simple_commands(command)]
        if not decisions:
            decisions = [(None, "allow", False)]
        denied = [rule for rule, action, _ in decisions if action == "deny" and rule]
        if denied:
            return Decision("deny", False, denied[0], f"refused by rule {denied[0].describe()}")
        asked = [rule for rule, action, _ in decisions if action == "ask" and rule]
        granted = all(net for _, _, net in decisions)
        # Outside the sandbox only if every part of the command is granted that.
        unconfined = all(rule is not None and rule.unconfined for rule, _, _ in decisions)
        if asked:
            first = asked[0]
            net = first.network or wants_network
            return Decision("ask", net, first, f"rule {first.describe()}", unconfined)
        if wants_network and not granted:
            return Decision("ask", True, None, "the command asks for the network")
        rule = next((r for r, _, _ in decisions if r is not None), None)
        why = f"rule {rule.describe()}" if rule else "sandboxed commands run"
        return Decision("allow", wants_network and granted, rule, why, unconfined)

    def _decide_one(self, words: list[str]) -> tuple[Rule | None, str, bool]:
        for rule in self.rules:
            if rule.matches(words):
                return rule, rule.decision, rule.decision == "allow" and rule.network
        return None, "allow", False

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(rule) for rule in self.rules]

    @classmethod
    def from_json(cls, data: Iterable[Mapping[str, Any]]) -> Policy:
        return cls(
            [
                Rule(tuple(r["words"]), r["decision"], r["network"], r["source"], r["unconfined"])
                for r in data
            ]
        )


def simple_commands(command: str) -> list[list[str]]:
    """The leading words of each simple command in a shell line (assignments and wrappers
    such as `env` or `timeout 5` skipped), so `cd x && git push` is seen as a push."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: the shell will refuse it too
        tokens = command.split()
    found: list[list[str]] = []
    current: list[str] = []
    for token in tokens:
        if token in _SEPARATORS or set(token) <= set(";&|()\n"):
            if current:
                found.append(current)
            current = []
        else:
            current.append(token)
    if current:
        found.append(current)
    return [_strip(words) for words in found if _strip(words)]


def _strip(words: list[str]) -> list[str]:
    index = 0
    while index < len(words):
        word = words[index]
        if "=" in word and not word.startswith("=") and word.split("=", 1)[0].isidentifier():
            index += 1
        elif word in _WRAPPERS:
            index += 1
            while index < len(words) and (words[index].startswith("-") or words[index].isdigit()):
                index += 1
        else:
            break
    return words[index:]


def parse_rules(data: object, source: str, *, may_grant: bool) -> list[Rule]:
    """`[[rules]]` tables: `command` (a string or list of words), `decision`, `network`."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise NexusError(f"{source}: rules must be an array of tables ([[rules]])")
    rules = []
    for number, item in enumerate(data, 1):
        where = f"{source}: rule {number}"
        if not isinstance(item, dict):
            raise NexusError(f"{where} must be a table")
        unknown = sorted(set(item) - {"command", "decision", "network", "sandbox"})
        if unknown:
            raise NexusError(f"{where}: unknown key(s) {', '.join(unknown)}")
        words = item.get("command")
        if isinstance(words, str):
            words = shlex.split(words)
        if not words or not all(isinstance(w, str) for w in words):
            raise NexusError(f'{where} needs command = "leading words" (e.g. "git push")')
        decision = item.get("decision")
        if decision not in DECISIONS:
            raise NexusError(f"{where}: decision must be one of {', '.join(DECISIONS)}")
        network = item.get("network", False)
        if not isinstance(network, bool):
            raise NexusError(f"{where}: network must be true or false")
        confined = item.get("sandbox", True)
        if not isinstance(confined, bool):
            raise NexusError(f"{where}: sandbox must be true or false")
        if not confined and not may_grant:
            raise NexusError(
                f"{where}: sandbox = false is for your own policy file only; a repository "
                "cannot let commands out of the sandbox"
            )
        if network and decision == "allow" and not may_grant:
            decision = "ask"  # a repository may not grant the network on its own
        rules.append(Rule(tuple(words), decision, network, source, unconfined=not confined))
    return rules


REPOSITORY_SOURCE = "the repository's .nexus/policy.toml"


def build_policy(
    allowed: Iterable[str], user: Iterable[Rule], repository: Mapping[str, Any]
) -> tuple[Policy, list[str]]:
    """Flags, then the user's rules, then the repository's, then the defaults; and notes on
    what of the repository's file was ignored."""
    rules = [Rule(tuple(shlex.split(words)), "allow", True, "--allow") for words in allowed]
    if any(not rule.words for rule in rules):
        raise NexusError('--allow needs the leading words of a command, e.g. --allow "git push"')
    rules += list(user)
    notes = []
    ignored = sorted(set(repository) - {"rules"})
    if ignored:
        notes.append(
            f"{REPOSITORY_SOURCE}: ignored {', '.join(ignored)} (a repository may add command "
            "rules only; sandbox settings are the user's own)"
        )
    repo_rules = parse_rules(repository.get("rules"), REPOSITORY_SOURCE, may_grant=False)
    rules += repo_rules
    return Policy([*rules, *DEFAULT_RULES]), notes
