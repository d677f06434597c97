"""What never enters a run's commits, its journal or its snapshot: huge files, secrets,
the user's sensitive untracked files; and a command filling the disk hurts only itself."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import nexus, sh
from hostile import API_KEY, Machine, commands, hostile_run, observations
from scripted_model import call


def object_store_bytes(root: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(root / ".git" / "objects"):
        total += sum(os.lstat(Path(folder, f)).st_blocks * 512 for f in files)
    return total


def branch_files(machine: Machine, branch: str) -> list[str]:
    return sh(machine.root, "git", "ls-tree", "-r", "--name-only", branch).split()


# 900M, not 2G: a 2G file is already stopped by the sandbox's 1 GiB file size limit.
@pytest.mark.parametrize(
    "make",
    ["truncate -s 900M big.bin", "head -c 100M /dev/urandom > big.bin"],
    ids=["sparse", "real"],
)
def test_a_file_over_the_size_limit_is_not_committed(machine: Machine, model, make: str) -> None:
    before = object_store_bytes(machine.root)
    steps = commands(f"{make}; echo small > small.txt", "echo again > small2.txt")
    result, server, events = hostile_run(machine, model, steps)
    assert result.code == 0, result.stderr
    files = branch_files(machine, result.json()["branch"])
    assert "small.txt" in files and "small2.txt" in files and "big.bin" not in files
    assert object_store_bytes(machine.root) - before < 2 << 20
    told = [m["content"] for m in server.requests[1]["messages"] if m["role"] == "tool"][-1]
    assert "not committed, over the 10 MiB limit for a step commit: big.bin" in told
    # Said once: the next step, with big.bin still there, is not told again.
    later = [m["content"] for m in server.requests[2]["messages"] if m["role"] == "tool"][-1]
    assert "big.bin" not in later
    assert any(e["level"] == "WARNING" and "big.bin" in e["message"] for e in events)


def test_a_step_that_writes_the_api_key_is_not_committed(machine: Machine, model) -> None:
    steps = [
        call("write_file", path="config.py", content=f"KEY = '{API_KEY}'\n"),
        call("write_file", path="other.py", content="x = 1\n"),
    ]
    result, server, events = hostile_run(machine, model, steps)
    assert result.code == 0
    branch = result.json()["branch"]
    assert "config.py" not in branch_files(machine, branch)
    log = sh(machine.root, "git", "log", "-p", branch)
    assert API_KEY not in log
    told = [m["content"] for m in server.requests[1]["messages"] if m["role"] == "tool"][-1]
    assert "NOT committed: config.py adds the value of OPENAI_API_KEY" in told
    # While the secret stays in the worktree, no later step is committed either.
    assert "other.py" not in branch_files(machine, branch)
    assert API_KEY not in machine.journal.read_text()


def test_a_private_key_is_not_committed(machine: Machine, model) -> None:
    key = (
        "-----BEGIN RSA PRIVATE KEY-----\\nMIIEpAIBAAKCAQEA0Z3VS5JJcds3xfn\\n"
        "-----END RSA PRIVATE KEY-----"
    )
    steps = commands(f"printf -- '{key}\\n' > id_rsa; echo fine > fine.txt")
    result, server, _ = hostile_run(machine, model, steps)
    assert result.code == 0
    files = branch_files(machine, result.json()["branch"])
    assert "id_rsa" not in files and "fine.txt" not in files
    assert "MIIEpAIBAAKCAQEA0Z3VS5JJcds3xfn" not in machine.journal.read_text()
    assert "id_rsa adds a private key" in observations(server)


def test_secrets_of_known_shapes_are_redacted_in_the_journal(machine: Machine, model) -> None:
    aws, github = "AKIAIOSFODNN7EXAMPLE", "ghp_" + "A1b2C3d4" * 5
    result, server, _ = hostile_run(machine, model, commands(f"echo {aws} {github}"))
    assert result.code == 0
    journal = machine.journal.read_text()
    assert aws not in journal and github not in journal
    assert "[redacted:aws-access-key]" in journal and "[redacted:github-token]" in journal


def test_sensitive_untracked_files_stay_out_of_the_snapshot(machine: Machine, model) -> None:
    (machine.root / ".env").write_text("DATABASE_PASSWORD=hunter2hunter2\n")
    (machine.root / "deploy.pem").write_text("not really a key\n")
    (machine.root / "config").mkdir()
    (machine.root / "config" / "id_ed25519").write_text("x\n")
    result, server, events = hostile_run(machine, model, commands("cat .env; ls config"))
    assert result.code == 0
    out = result.json()
    files = branch_files(machine, out["base"])
    assert ".env" not in files and "deploy.pem" not in files and "config/id_ed25519" not in files
    assert "notes.txt" in files  # other untracked work is still part of the base
    assert "hunter2" not in observations(server)
    said = "left out of the run's snapshot (untracked, they look sensitive): "
    assert f"{said}.env, config/id_ed25519, deploy.pem" in result.stderr
    assert (machine.root / ".env").read_text() == "DATABASE_PASSWORD=hunter2hunter2\n"


def test_filling_tmp_hits_the_file_size_limit_in_a_private_tmp(
    machine: Machine, model, tmp_path: Path
) -> None:
    policy = machine.home / ".config" / "nexus" / "policy.toml"
    policy.parent.mkdir(parents=True)
    policy.write_text('[limits]\nfile_size = "5M"\n')
    marker = f"nexus-fill-{tmp_path.name}"
    result, server, events = hostile_run(machine, model, commands(f"yes > /tmp/{marker}"))
    assert result.code == 0, result.stderr
    command = next(e for e in events if e["category"] == "command")
    assert "file size limit" in command["data"]["result"]
    assert not Path("/tmp", marker).exists()
    assert not (machine.root / ".git" / "nexus" / "sandbox").exists() or not list(
        (machine.root / ".git" / "nexus" / "sandbox").iterdir()
    )
    started = next(e for e in events if e["message"].startswith("sandbox:"))
    assert "files 5 MiB" in started["message"]
    assert json.loads(json.dumps(started["data"]))["sandbox"]["limits"]["file_size"] == 5 << 20


def test_attributes_cannot_smuggle_a_key_or_a_big_blob_into_a_commit(
    machine: Machine, model
) -> None:
    """`-diff` once hid a key from the scan (the diff said only `Bin`), and
    working-tree-encoding turned a 9 MiB file into a 27 MiB blob past the size check."""
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\\n"
    steps = commands(
        f"printf 'key.txt -diff\\n' > .gitattributes; printf -- '{key}' > key.txt",
        "rm key.txt; printf 'big.txt working-tree-encoding=CP1252\\n' > .gitattributes; "
        "python3 -c \"open('big.txt', 'wb').write(b'\\\\x80' * (9 << 20))\"; echo ok > ok.txt",
    )
    result, server, _ = hostile_run(machine, model, steps)
    assert result.code == 0, result.stderr
    files = branch_files(machine, result.json()["branch"])
    assert "key.txt" not in files and "big.txt" not in files and "ok.txt" in files
    seen = observations(server)
    assert "key.txt adds a private key" in seen
    assert "over the 10 MiB limit for a step commit: big.txt (27 MiB)" in seen


def test_a_repository_nested_deep_in_a_new_folder_is_not_committed(machine: Machine, model) -> None:
    steps = commands(
        "mkdir -p a/b && cd a/b && git init -q . && echo x > f && git add f && "
        "git -c user.name=a -c user.email=a@b commit -qm x && cd ../.. && echo y > a/top.txt",
        "echo z > new.txt",
    )
    result, server, _ = hostile_run(machine, model, steps)
    assert result.code == 0
    files = branch_files(machine, result.json()["branch"])
    assert "a/top.txt" in files and "new.txt" in files
    assert not any(f.startswith("a/b") for f in files)
    assert "not committed: a/b (a git repository inside the project" in observations(server)


def test_a_step_git_cannot_commit_is_a_note_not_a_crash(machine: Machine, model) -> None:
    steps = commands(
        "printf 'u.txt working-tree-encoding=UTF-16\\n' > .gitattributes; echo no-bom > u.txt",
        "rm u.txt .gitattributes; echo fine > fine.txt",
    )
    result, server, _ = hostile_run(machine, model, steps)
    assert result.code == 0, result.stderr
    assert "this step could not be committed (git add failed" in observations(server)
    assert "fine.txt" in branch_files(machine, result.json()["branch"])


def test_bytes_that_are_not_utf8_do_not_crash_the_agent(machine: Machine, model) -> None:
    result, server, events = hostile_run(machine, model, commands("printf 'a\\377b\\n' > f.txt"))
    assert result.code == 0, result.stderr
    assert "f.txt" in branch_files(machine, result.json()["branch"])
    assert any(e["message"].startswith("step 1: commit ") for e in events)


def test_a_repository_made_inside_a_tracked_folder_is_not_committed(
    machine: Machine, model
) -> None:
    (machine.root / "pkg").mkdir()
    (machine.root / "pkg" / "mod.py").write_text("x = 1\n")
    sh(machine.root, "git", "add", "pkg")
    sh(machine.root, "git", "commit", "-q", "-m", "pkg")
    steps = commands("cd pkg && git init -q && echo new > new.py && echo y >> mod.py")
    result, server, _ = hostile_run(machine, model, steps)
    assert result.code == 0
    files = branch_files(machine, result.json()["branch"])
    assert "pkg/new.py" not in files
    assert "not committed: pkg (a git repository inside the project" in observations(server)


@pytest.mark.parametrize(
    "key",
    [
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\\n\\nlQHYBGNexample0123456789abcdef\\n"
        "-----END PGP PRIVATE KEY BLOCK-----",
        "PuTTY-User-Key-File-3: ssh-ed25519\\nEncryption: none\\nPrivate-Lines: 1\\n"
        "AAAAIABCDEF0123456789\\nPrivate-MAC: 0123abcd",
    ],
    ids=["pgp", "putty"],
)
def test_other_private_key_formats_are_not_committed_nor_journaled(
    machine: Machine, model, key: str
) -> None:
    result, server, _ = hostile_run(machine, model, commands(f"printf -- '{key}\\n' > k.asc"))
    assert result.code == 0
    assert "k.asc" not in branch_files(machine, result.json()["branch"])
    journal = machine.journal.read_text()
    assert "lQHYBGNexample" not in journal and "AAAAIABCDEF0123456789" not in journal


def test_lone_surrogates_from_the_model_neither_crash_nor_hide_the_run(
    machine: Machine, model
) -> None:
    steps = [
        call("run_command", "because \ud800 x", command="touch a.txt; echo \udc80"),
        call("write_file", path="b\udc80.txt", content="x\n"),
    ]
    result, server, _ = hostile_run(machine, model, steps)
    assert result.code == 0, result.stderr
    assert "a.txt" in branch_files(machine, result.json()["branch"])
    run_id = result.json()["run_id"]
    for args in (["log", "--json"], ["show", run_id], ["log"], ["runs"]):
        shown = nexus(machine.root, *args)
        assert shown.code == 0 and "Traceback" not in shown.stderr, (args, shown.stderr)
