"""Errors a user can act on.

A `NexusError` carries a one-line message that says what to do; the CLI prints it
and exits 2, the language server turns it into a JSON-RPC error.
"""


class NexusError(Exception):
    """A problem the user can fix; the message says how."""
