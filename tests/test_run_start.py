"""The run start both front ends share: options in, a checked and resolved run out.

No process is started here: `prepare_run` makes nothing, and the model resolution it
does is given its environment (a test's own, never the machine's).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nexus_ls.config import Limits, ModelSettings
from nexus_ls.errors import NexusError
from nexus_ls.models.bundled import intro
from nexus_ls.models.resolve import Resolution, resolve
from nexus_ls.run_start import MAX_SECONDS, RunOptions, check_limits, prepare_run


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No model settings, no policy file of the user's, and no loopback port to find."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "config"), "NEXUS_LOCAL_PORTS": "9"}


def test_options_become_the_run_settings_with_how_the_model_was_chosen(env) -> None:
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"
    options = RunOptions(
        model="coder",
        limits=Limits(max_steps=5, wall_time=60.0),
        sandbox="off",
        network=True,
        allow=("git push",),
    )

    prepared = prepare_run("fix it", options, context="calc.py", environ=env)

    assert prepared.task == "fix it" and prepared.context == "calc.py"
    model = prepared.settings.model
    assert (model.base_url, model.model, model.source) == (
        "http://127.0.0.1:9/v1",
        "coder",
        "environment",
    )
    assert prepared.settings.limits == Limits(max_steps=5, wall_time=60.0)
    sandbox = prepared.settings.sandbox
    assert (sandbox.mode, sandbox.network, sandbox.allow) == ("off", True, ("git push",))
    assert prepared.notes == ("model endpoint from environment: http://127.0.0.1:9/v1",)
    assert prepared.notice is None


def test_a_flag_is_stronger_than_the_environment(env) -> None:
    env |= {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "NEXUS_TOOL_MODE": "text"}
    prepared = prepare_run("x", RunOptions(base_url="http://127.0.0.1:8/v1"), environ=env)
    model = prepared.settings.model
    assert (model.base_url, model.source, model.tool_mode) == (
        "http://127.0.0.1:8/v1",
        "flag",
        "text",
    )


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (Limits(max_steps=0), "max-steps must be a positive number, not 0"),
        (Limits(wall_time=float("nan")), "wall-time must be a positive number, not nan"),
        (Limits(command_timeout=MAX_SECONDS + 1), "command-timeout must be at most"),
    ],
)
def test_bad_limits_are_refused_before_any_model_is_looked_for(env, limits, message) -> None:
    env["NEXUS_LOCAL_PORTS"] = "not-a-port"  # resolving the model would fail on this
    with pytest.raises(NexusError, match=message):
        prepare_run("x", RunOptions(limits=limits), environ=env)
    assert check_limits(Limits()) == Limits()


def test_a_bad_tool_mode_is_refused_whatever_the_model_source(env, tmp_path: Path) -> None:
    env["NEXUS_TOOL_MODE"] = "fast"
    gguf = tmp_path / "coder.gguf"
    for options in (RunOptions(local_model=str(gguf)), RunOptions(base_url="http://h/v1")):
        with pytest.raises(NexusError, match="tool mode 'fast' is not one of auto, native, text"):
            prepare_run("x", options, environ=env)


def test_a_base_url_that_is_not_http_is_refused(env) -> None:
    env["OPENAI_BASE_URL"] = "ftp://x"
    with pytest.raises(NexusError, match="OPENAI_BASE_URL 'ftp://x' is not an http"):
        resolve(environ=env)


def test_nothing_found_names_every_option(env) -> None:
    env["NEXUS_BUNDLED"] = "off"
    with pytest.raises(NexusError, match="^no model found: pass --base-url URL") as caught:
        resolve(environ=env)
    assert "NEXUS_LOCAL_MODEL" in str(caught.value)


def test_guided_comes_from_the_flag_then_nexus_guided(env) -> None:
    env |= {"OPENAI_API_KEY": "k", "NEXUS_GUIDED": "yes"}
    assert resolve(environ=env).settings.guided is True
    assert resolve(guided=False, environ=env).settings.guided is False
    env["NEXUS_GUIDED"] = "maybe"
    assert resolve(environ=env).settings.guided is False


def test_the_bundled_model_notice_is_the_last_note() -> None:
    settings = ModelSettings(model="SmolLM2-135M-Instruct", source="bundled", guided=True)
    resolution = Resolution(settings, ["no NEXUS_LOCAL_MODEL"], bundled=True)
    assert resolution.notice == intro(True)
    assert resolution.notes() == ["no NEXUS_LOCAL_MODEL", intro(True)]
    assert Resolution(ModelSettings(), ["x"]).notes() == ["x"]


def test_the_server_and_the_command_line_map_their_settings_alike() -> None:
    from nexus_ls.cli import build_parser
    from nexus_ls.run_flags import run_options
    from nexus_ls.server.runs import run_options as server_options
    from nexus_ls.server.settings import ServerSettings

    args = build_parser().parse_args(
        ["run", "x", "--base-url", "http://h/v1", "--model", "m", "--tool-mode", "text",
         "--guided", "--sandbox", "off", "--network", "on", "--max-steps", "7"]
    )  # fmt: skip
    settings = ServerSettings(
        baseUrl="http://h/v1", model="m", toolMode="text", guided=True, sandbox="off",
        network=True, maxSteps=7,
    )  # fmt: skip
    assert run_options(args) == server_options(settings)
