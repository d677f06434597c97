"""Secrets from the environment never reach the journal file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nexus_ls.journal import Journal, Redactor, secret_env_names

REPO = Path(__file__).resolve().parents[1]
SECRET = "sk-live-0123456789abcdef"


def test_secret_env_names_match_names_case_insensitively_and_skip_short_values() -> None:
    environ = {
        "OPENAI_API_KEY": SECRET,
        "github_token": "ghp_abcdefghijkl",
        "DB_PASSWORD": "hunter22hunter22",
        "MY_PASSWD": "p4ssw0rd!",
        "AWS_SECRET_ACCESS_KEY": "AKIA1234567890",
        "GOOGLE_APPLICATION_CREDENTIALS": "/keys/service.json",
        "SHORT_TOKEN": "1234567",
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/someone",
    }
    assert secret_env_names(environ) == [
        "AWS_SECRET_ACCESS_KEY",
        "DB_PASSWORD",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "MY_PASSWD",
        "OPENAI_API_KEY",
        "github_token",
    ]


def test_scrub_replaces_secrets_everywhere_in_nested_values() -> None:
    redactor = Redactor({"OPENAI_API_KEY": SECRET, "PATH": "/usr/bin:/bin"})
    obj = {
        "text": f"Authorization: Bearer {SECRET}.",
        "list": [SECRET, {"deep": (f"x{SECRET}y", 3)}],
        SECRET: None,
        "path": "/usr/bin:/bin",
    }
    assert redactor.scrub(obj) == {
        "text": "Authorization: Bearer [redacted:OPENAI_API_KEY].",
        "list": ["[redacted:OPENAI_API_KEY]", {"deep": ("x[redacted:OPENAI_API_KEY]y", 3)}],
        "[redacted:OPENAI_API_KEY]": None,
        "path": "/usr/bin:/bin",
    }
    assert redactor.names == ["OPENAI_API_KEY"]


def test_longer_secret_containing_a_shorter_one_is_replaced_whole() -> None:
    redactor = Redactor({"SHORT_TOKEN": "abcdefgh", "LONG_TOKEN": "abcdefgh-ijklmnop"})
    assert redactor.scrub_text("abcdefgh-ijklmnop and abcdefgh") == (
        "[redacted:LONG_TOKEN] and [redacted:SHORT_TOKEN]"
    )


def test_extra_secrets_are_redacted() -> None:
    redactor = Redactor({}, extra=["correct horse battery", ""])
    assert redactor.scrub_text("pw: correct horse battery") == "pw: [redacted:secret]"


def test_no_secrets_leaves_values_unchanged() -> None:
    redactor = Redactor({"HOME": "/home/someone"})
    obj = {"a": ["b", 1]}
    assert redactor.scrub(obj) == obj


def test_journal_file_never_holds_the_secret(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl", Redactor({"OPENAI_API_KEY": SECRET}))
    stored = journal.log(
        "ERROR",
        "model",
        f"request failed with key {SECRET}",
        run=f"run-{SECRET}",
        data={"headers": {"Authorization": f"Bearer {SECRET}"}, "argv": ["curl", SECRET]},
    )
    text = (tmp_path / "journal.jsonl").read_text()
    assert SECRET not in text
    assert "[redacted:OPENAI_API_KEY]" in stored["message"]
    assert stored["data"]["headers"]["Authorization"] == "Bearer [redacted:OPENAI_API_KEY]"
    assert stored["data"]["argv"] == ["curl", "[redacted:OPENAI_API_KEY]"]
    assert journal.query() == [stored]


def test_secret_cut_by_message_shortening_is_still_redacted(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl", Redactor({"MY_TOKEN": SECRET}))
    journal.log("INFO", "command", "x" * 1990 + SECRET)
    assert SECRET[:6] not in (tmp_path / "journal.jsonl").read_text()


def test_default_redactor_uses_the_process_environment(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from nexus_ls.journal import Journal\n"
        "secret = os.environ['NEXUS_TEST_API_TOKEN']\n"
        "Journal(Path(sys.argv[1])).log('INFO', 'tool', 'env says ' + secret,"
        " data={'env': dict(os.environ)})\n"
    )
    env = {
        **os.environ,
        "NEXUS_TEST_API_TOKEN": SECRET,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run([sys.executable, "-c", script, str(path)], env=env, check=True)
    text = path.read_text()
    assert SECRET not in text
    assert "env says [redacted:NEXUS_TEST_API_TOKEN]" in text
