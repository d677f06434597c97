"""What an agent process does while its start message has not come: get ready to call
the model.

The host starts an agent before it makes the run's sandbox, or long before the run (a
spare, `nexus_ls.agent_launch`). The `openai` client loads much of itself only when
the first client is made and first asked for chat completions (its HTTP transport,
about 150 modules, 0.1-0.3 s here): that is done now, with a client that is thrown
away and never connects, unless the start message is already waiting, in which case
nothing is done and the run loads what it needs itself. No run's settings are known
yet, so nothing made here holds any.
"""

from __future__ import annotations

import contextlib
import select


def warm_up(fd: int = 0) -> None:
    """Load what the first model call would load, if nothing has arrived on `fd` yet."""
    with contextlib.suppress(OSError, ValueError):
        if select.select([fd], [], [], 0)[0]:
            return  # the start is here: no time to spend
    with contextlib.suppress(Exception):  # being ready sooner is never worth a failed run
        import openai

        client = openai.OpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1", max_retries=0)
        try:
            client.chat.completions  # noqa: B018  (the attribute loads the resources)
        finally:
            client.close()
