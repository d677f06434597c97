"""Which commands run, which are refused, and which need the user's yes.

Rules match a command's leading words, like Codex's prefix rules, and the first rule
that matches decides: `allow`, `ask` or `deny`. An `allow` rule may also grant the
network. Rules come, in this order, from `--allow` flags, the user's
`~/.config/nexus/policy.toml`, the repository's `.nexus/policy.toml` as committed
(the commit the run's base was made on: never an uncommitted copy, nor the worktree's,
which the model can edit), then the defaults: everything runs sandboxed; the network
and `git push` are asked for. A repository's refusals come before the defaults, its
other rules after them.

Anything else the sandbox refuses can be granted too, by the user's own rules only: a
rule with `sandbox = false` runs the commands it matches (once allowed, or once the user
said yes to an `ask`) outside the sandbox. A repository's rules can refuse and ask but
never grant: an `allow` with `network = true` from a repository becomes `ask`, and one
with `sandbox = false` is refused outright.

The sandbox is the security boundary; the policy decides what is worth a question.
Denying and asking see through the usual spellings of a command; granting goes by the
command as written (see `command_parts`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from nexus_ls.errors import NexusError

DECISIONS = ("allow", "ask", "deny")
_SEPARATORS = {";", "&&", "||", "|", "&", "\n", "(", ")", "|&", ";;"}
_WRAPPERS = {"command", "env", "exec", "nice", "nohup", "time", "timeout", "xargs", "builtin"}
_KEYWORDS = {"{", "}", "!", "if", "then", "else", "elif", "fi", "while", "until", "do", "done"}
_SHELLS = {"sh", "bash", "dash", "zsh", "ksh"}
_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)|`([^`]*)`")
_GIT_OPTIONS_WITH_VALUE = {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path",
                           "--config-env", "--super-prefix"}  # fmt: skip
# What a line a grant covers must not hold outside quotes: more commands, redirections,
# groups (and, outside single quotes, substitutions; see `_plain`).
_SHELL_SYNTAX = frozenset(";&|<>(){}\n")


@dataclass(frozen=True)
class Rule:
    words: tuple[str, ...]
    decision: str
    network: bool = False  # an allow rule that also grants the network
    source: str = "default"
    unconfined: bool = False  # once allowed, the command runs outside the sandbox

    def matches(self, words: Sequence[str]) -> bool:
        """The rule's words lead the command's (flags anywhere and in any order: a rule on
        `rm -rf` matches `rm -fr x` and `rm -r -f x`)."""
        if not words or not self.words or words[0] != self.words[0]:
            return False
        want, want_flags = _flags(self.words)
        have, have_flags = _flags(words)
        return tuple(have[: len(want)]) == tuple(want) and want_flags <= have_flags

    def literally(self, written: Sequence[str]) -> bool:
        """The command as written starts with the rule's words, nothing rewritten."""
        return tuple(written[: len(self.words)]) == self.words

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
        parts = command_parts(command)
        single = is_single(command)
        decisions = [self._decide_one(seen, written, single) for seen, written in parts]
        if not decisions:
            decisions = [(None, "allow", False)]
        denied = [rule for rule, action, _ in decisions if action == "deny" and rule]
        if denied:
            return Decision("deny", False, denied[0], f"refused by rule {denied[0].describe()}")
        asked = [rule for rule, action, _ in decisions if action == "ask" and rule]
        granted = all(net for _, _, net in decisions)
        # Outside the sandbox only if every part of the command is granted that, and the
        # line has no substitution or redirection that could run or write something else.
        unconfined = single and all(
            rule is not None and rule.unconfined and rule.literally(written)
            for (rule, _, _), (_, written) in zip(decisions, parts, strict=True)
        )
        if asked:
            first = asked[0]
            net = first.network or wants_network
            return Decision("ask", net, first, f"rule {first.describe()}", unconfined)
        if wants_network and not granted:
            return Decision("ask", True, None, "the command asks for the network")
        rule = next((r for r, _, _ in decisions if r is not None), None)
        why = f"rule {rule.describe()}" if rule else "sandboxed commands run"
        return Decision("allow", wants_network and granted, rule, why, unconfined)

    def _decide_one(
        self, seen: list[str], written: list[str], single: bool
    ) -> tuple[Rule | None, str, bool]:
        """The first rule for this part, its decision, and whether it grants the network
        (only to a single command, as written: see `command_parts` and `is_single`)."""
        for rule in self.rules:
            if rule.matches(seen):
                grants = rule.decision == "allow" and rule.network
                return rule, rule.decision, grants and single and rule.literally(written)
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


def is_single(command: str) -> bool:
    """One simple command on one line, with no separator, comment, substitution,
    redirection or grouping anywhere: the only kind of line a grant (leaving the sandbox,
    the network by rule, an answer "for this run") may cover. `curl ...; git push`,
    `PATH=./bin; git status` and `git status #` + newline + anything are not."""
    if not _plain(command):
        return False
    parts = command_parts(command)
    return len(parts) == 1 and parts[0][0] == parts[0][1]


def _plain(command: str) -> bool:
    """No shell syntax outside quotes but words, and no substitution but in single quotes
    (the shell expands `$(...)` and backticks inside double quotes too)."""
    quote = ""
    escaped = False
    at_word_start = True
    for index, char in enumerate(command):
        if escaped:
            escaped, at_word_start = False, False
            continue
        if quote == "'":
            quote = "" if char == "'" else quote
            continue
        if char == "\\":
            escaped = True
            continue
        if char == "`" or command.startswith("$(", index):
            return False
        if quote == '"':
            quote = "" if char == '"' else quote
            continue
        if char in "'\"":
            quote, at_word_start = char, False
        elif char in _SHELL_SYNTAX or (char == "#" and at_word_start):
            return False
        else:
            at_word_start = char in " \t"
    return not quote


def simple_commands(command: str) -> list[list[str]]:
    """The words of each simple command in a shell line, as a rule sees them, so the
    usual spellings of one command match one rule: each part of `a && b; c | d`; inside
    `{ ...; }`, `if`/`while` bodies, `$(...)` and backticks, `sh -c '...'` and `eval`;
    without assignments and wrappers (`FOO=1`, `env`, `timeout 5`, `nohup`), with a
    program's folder dropped (`/usr/bin/git` is `git`) and git's global options skipped
    (`git -C x push` is `git push`)."""
    return [seen for seen, _ in command_parts(command)]


def command_parts(command: str, _depth: int = 0) -> list[tuple[list[str], list[str]]]:
    """Each simple command as (the words a rule sees, the words as written).

    Denying and asking go by the first, so no spelling dodges them; granting (the
    network, leaving the sandbox) only by the second: `./git status`, `PATH=. git
    status` or `git -c core.fsmonitor=... status` are not the `git status` a user let out.
    """
    parts: list[tuple[list[str], list[str]]] = []
    if _depth < 3:
        for inner in _SUBSTITUTION.findall(command):
            parts += command_parts(inner[0] or inner[1], _depth + 1)
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    # shlex's comments would swallow the newline after them, which to the shell ends the
    # command: `git status #` + newline + anything. Comments are handled below instead.
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: the shell will refuse it too
        tokens = command.split()
    found: list[list[str]] = []
    current: list[str] = []
    in_comment = False
    for token in tokens:
        if in_comment and token != "\n":
            continue
        in_comment = False
        if token.startswith("#"):  # a comment runs to the end of its line, not further
            in_comment = True
            continue
        if token in _SEPARATORS or set(token) <= set(";&|()\n"):
            if current:
                found.append(current)
            current = []
        else:
            current.append(token)
    if current:
        found.append(current)
    for literal in found:
        words = _strip(literal)
        if not words:
            continue
        parts.append((words, literal))
        script = _shell_script(words) if _depth < 3 and words[0] in _SHELLS else None
        if script is not None:
            parts += command_parts(script, _depth + 1)
        elif _depth < 3 and words[0] == "eval" and len(words) > 1:
            parts += command_parts(" ".join(words[1:]), _depth + 1)
    return parts


def _shell_script(words: list[str]) -> str | None:
    """The script of `sh -c SCRIPT` (also `bash -lc`, `sh -e -c`)."""
    for index, word in enumerate(words[1:-1], 1):
        if word.startswith("-") and not word.startswith("--") and "c" in word[1:]:
            return words[index + 1]
    return None


def _strip(words: list[str]) -> list[str]:
    index = 0
    while index < len(words):
        word = words[index]
        assignment = "=" in word and word.split("=", 1)[0].isidentifier()
        if word in _KEYWORDS or assignment:
            index += 1
        elif word in _WRAPPERS:
            index += 1
            while index < len(words) and (words[index].startswith("-") or words[index].isdigit()):
                index += 1
        else:
            break
    words = words[index:]
    if words and "/" in words[0]:
        words = [words[0].rsplit("/", 1)[1], *words[1:]]
    if words and words[0] == "git":
        rest, index = words[1:], 0
        while index < len(rest) and rest[index].startswith("-"):
            index += 2 if rest[index] in _GIT_OPTIONS_WITH_VALUE else 1
        words = ["git", *rest[index:]]
    return words


def _flags(words: Sequence[str]) -> tuple[list[str], set[str]]:
    """Words and flags apart, short flags one by one: `rm -rf x` is (["rm", "x"], {-r, -f})."""
    plain, flags = [], set()
    for word in words:
        if word.startswith("--") or (word.startswith("-") and "=" in word):
            flags.add(word)
        elif word.startswith("-") and len(word) > 1 and word[1:].isalpha():
            flags.update(f"-{letter}" for letter in word[1:])
        else:
            plain.append(word)
    return plain, flags


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
    ignored = sorted(set(repository) - {"rules", "deploy"})
    if ignored:
        notes.append(
            f"{REPOSITORY_SOURCE}: ignored {', '.join(ignored)} (a repository may add command "
            "rules and its deploy command only; sandbox settings are the user's own)"
        )
    repo_rules = parse_rules(repository.get("rules"), REPOSITORY_SOURCE, may_grant=False)
    # A repository may add refusals before the defaults, but its allows come after them:
    # it cannot take away the question a push gets.
    refusals = [rule for rule in repo_rules if rule.decision == "deny"]
    others = [rule for rule in repo_rules if rule.decision != "deny"]
    return Policy([*rules, *refusals, *DEFAULT_RULES, *others]), notes


def deploy_command(repository: Mapping[str, Any]) -> str | None:
    """The project's deploy command (`deploy = "..."` in its committed `.nexus/policy.toml`),
    which the `deploy` tool runs only after the user's approval; None when there is none."""
    value = repository.get("deploy")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise NexusError(
            f'{REPOSITORY_SOURCE}: deploy must be a command line, e.g. deploy = "make deploy"'
        )
    return value.strip()
