"""The NEXUS language server: thin, one module per feature, each registering its handlers."""

from __future__ import annotations

import logging

from nexus_ls.server import approvals, code_actions, journal, lifecycle, memory, review, runs
from nexus_ls.server.app import NexusServer
from nexus_ls.server.messages import serve_stdio


def create_server() -> NexusServer:
    server = NexusServer()
    for feature in (lifecycle, runs, review, journal, memory, code_actions, approvals):
        feature.register(server)
    return server


def main() -> int:
    """`nexus-ls` / `nexus serve`: the server on stdio."""
    logging.basicConfig(level=logging.WARNING)
    serve_stdio(create_server())
    return 0
