"""Which model a run uses, each source in order, seen through real `nexus run` calls."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from conftest import make_repo, nexus
from scripted_model import call


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "proj", {"a.txt": "a\n"})


def model_notes(repo: Path, run_id: str) -> list[str]:
    events = nexus(repo, "log", "--run", run_id, "--category", "model", "--json").lines()
    return [e["message"] for e in events if "latency_ms" not in e["data"]]


def test_flag_wins_over_environment_and_loopback(repo: Path, model) -> None:
    flagged = model([call("finish", summary="from the flag")])
    local = model([call("finish", summary="from loopback")])
    port = local.url.split(":")[2].split("/")[0]
    result = nexus(
        repo, "run", "x", "--json", "--base-url", flagged.url,
        OPENAI_BASE_URL="http://127.0.0.1:9/v1", NEXUS_LOCAL_PORTS=port,
    )  # fmt: skip
    assert result.json()["summary"] == "from the flag"
    assert local.requests == []


def test_environment_wins_over_loopback(repo: Path, model) -> None:
    from_env = model([call("finish", summary="from the environment")])
    local = model([call("finish", summary="from loopback")])
    port = local.url.split(":")[2].split("/")[0]
    result = nexus(repo, "run", "x", "--json", OPENAI_BASE_URL=from_env.url, NEXUS_LOCAL_PORTS=port)
    assert result.json()["summary"] == "from the environment"
    notes = model_notes(repo, result.json()["run_id"])
    assert notes[0] == f"model endpoint from environment: {from_env.url}"


def test_a_local_server_on_loopback_is_found_and_its_model_used(repo: Path, model) -> None:
    # A real HTTP server standing in for Ollama: it lists its models at /v1/models.
    local = model([call("finish", summary="served locally")], models=("qwen2.5-coder:7b",))
    port = local.url.split(":")[2].split("/")[0]
    silent = free_port()
    result = nexus(repo, "run", "x", "--json", NEXUS_LOCAL_PORTS=f"{silent},{port}")
    out = result.json()
    assert out["status"] == "succeeded" and out["summary"] == "served locally"
    assert local.requests[0]["model"] == "qwen2.5-coder:7b"
    notes = model_notes(repo, out["run_id"])
    assert notes[:3] == [
        "no --base-url flag, OPENAI_BASE_URL or OPENAI_API_KEY",
        f"nothing listening on port {silent} (local server)",
        f"found local server on port {port} serving qwen2.5-coder:7b",
    ]


def test_named_gguf_that_does_not_exist_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "coder.gguf"
    result = nexus(
        repo, "run", "x", NEXUS_LOCAL_PORTS=str(free_port()), NEXUS_LOCAL_MODEL=str(missing)
    )
    assert result.code == 2
    assert f"the local model {missing} does not exist" in result.stderr
    assert "NEXUS_LOCAL_MODEL" in result.stderr and "Traceback" not in result.stderr


def test_nothing_found_is_one_line_naming_every_option(repo: Path) -> None:
    result = nexus(repo, "run", "x", NEXUS_LOCAL_PORTS=str(free_port()), NEXUS_BUNDLED="off")
    assert result.code == 2
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    for option in ("--base-url", "OPENAI_API_KEY", "11434", "8080", "1234", "NEXUS_LOCAL_MODEL",
                   "nexus-ls[local]"):  # fmt: skip
        assert option in line


def test_bad_local_ports_setting(repo: Path) -> None:
    result = nexus(repo, "run", "x", NEXUS_LOCAL_PORTS="ollama")
    assert result.code == 2 and "NEXUS_LOCAL_PORTS" in result.stderr


def test_local_model_flag_is_an_explicit_setting(repo: Path, model, tmp_path: Path) -> None:
    # Stronger than the environment and loopback: its (missing) file is what gets reported.
    local = model([call("finish", summary="from loopback")])
    port = local.url.split(":")[2].split("/")[0]
    missing = tmp_path / "coder.gguf"
    result = nexus(
        repo, "run", "x", "--local-model", str(missing),
        OPENAI_BASE_URL=local.url, NEXUS_LOCAL_PORTS=port,
    )  # fmt: skip
    assert result.code == 2
    assert f"the local model {missing} does not exist; fix --local-model" in result.stderr
    assert local.requests == []


def test_a_named_model_the_local_server_lacks_is_an_error(repo: Path, model) -> None:
    local = model([call("finish", summary="x")], models=("llama3:8b",))
    port = local.url.split(":")[2].split("/")[0]
    result = nexus(repo, "run", "x", "--model", "qwen:7b", NEXUS_LOCAL_PORTS=port)
    assert result.code == 2
    assert "does not serve 'qwen:7b'" in result.stderr and "llama3:8b" in result.stderr
