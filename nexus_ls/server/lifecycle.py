"""Start-up, settings and shutdown: what the server learns from the editor and owes it back."""

from __future__ import annotations

import asyncio
from typing import Any

from lsprotocol import types

from nexus_ls.server.app import NexusServer, off_loop
from nexus_ls.server.settings import section, structure


def apply_settings(ls: NexusServer, raw: Any) -> None:
    """Settings from the editor, over those from initializationOptions: an editor's
    configuration often holds only the keys the user set, so the others keep their value."""
    if isinstance(raw, dict):
        raw = {**ls.options, **{key: value for key, value in raw.items() if value is not None}}
    ls.settings, problems = structure(raw)
    for problem in problems:
        ls.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Warning, message=f"NEXUS: {problem}")
        )


async def pull_configuration(ls: NexusServer) -> None:
    """Ask the client for the `nexus` section, when it can answer."""
    workspace = ls.client_capabilities.workspace
    if not (workspace and workspace.configuration):
        return
    result = await ls.workspace_configuration_async(
        types.ConfigurationParams(items=[types.ConfigurationItem(section="nexus")])
    )
    if result and result[0] is not None:
        apply_settings(ls, result[0])


def register(server: NexusServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: NexusServer, params: types.InitializeParams) -> None:
        ls.loop = asyncio.get_running_loop()  # before any run can report an event
        raw = section(params.initialization_options)
        if isinstance(raw, dict):  # the valid ones, to layer later configuration over
            ls.options = {
                key: value for key, value in raw.items() if not structure({key: value})[1]
            }
        apply_settings(ls, raw)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: NexusServer, params: types.InitializedParams) -> None:
        ls.keep(pull_configuration(ls))
        # Open each folder's repository and journal now, off the loop, not on first request.
        ls.keep(off_loop(lambda: [ls.state(folder) for folder in ls.folders()]))

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def changed(ls: NexusServer, params: types.DidChangeConfigurationParams) -> None:
        settings = params.settings
        if isinstance(settings, dict) and "nexus" in settings:
            apply_settings(ls, settings["nexus"])
        else:
            await pull_configuration(ls)

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: NexusServer, *args: Any) -> None:
        """Stop every running agent; its run is recorded `interrupted`, its branch kept."""
        for state in list(ls.states.values()):
            if state.supervisor is not None:
                await off_loop(state.supervisor.stop_all)
