"""One llama.cpp server per host process, shared by all of that host's agents.

A GGUF model is served by `python -m llama_cpp.server` on a free loopback port, so the
weights are in memory once however many agents run, and agents reach it through the same
`openai` client path as any endpoint. The server dies with its host: stopped at exit, and
on Linux told by the kernel when its parent goes (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nexus_ls.errors import NexusError

START_TIMEOUT = 180.0
_lock = threading.Lock()
# PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process: a
# server started from a short-lived worker thread would die with it. Every server is
# spawned from this one long-lived thread instead.
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexus-llama-spawn")
_servers: dict[Path, EmbeddedServer] = {}


def _die_with_parent() -> None:
    """Runs in the child before exec: ask Linux to SIGTERM it when the host dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedServer:
    def __init__(self, gguf: Path, alias: str) -> None:
        self.gguf, self.alias = gguf, alias
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        fd, name = tempfile.mkstemp(prefix="nexus-llama-", suffix=".log")
        os.close(fd)
        self.log = Path(name)
        threads = str(os.cpu_count() or 1)  # llama-cpp-python's default is half the cores
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
            "--model_alias", alias, "--host", "127.0.0.1", "--port", str(self.port),
            "--n_threads", threads, "--n_threads_batch", threads, "--n_ctx", "8192",
        ]  # fmt: skip
        self.process = _spawner.submit(self._spawn, command).result()

    def _spawn(self, command: list[str]) -> subprocess.Popen[bytes]:
        with open(self.log, "wb") as log:
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise NexusError(f"the local model server stopped (exit {code}): {self.tail()}")
            if models_at(self.url, timeout=1.0) is not None:
                return
            time.sleep(0.2)  # polling a starting server; the deadline bounds it
        self.stop()
        raise NexusError(f"the local model server did not start within {timeout:.0f} s")

    def tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no output"
        return " | ".join(lines[-3:])[-400:] or "no output"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(OSError):
            self.log.unlink()


def models_at(url: str, timeout: float) -> list[str] | None:
    """The model ids an OpenAI-compatible server lists, or None if nothing answers."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/models", timeout=timeout) as response:
            body = json.loads(response.read())
    except (OSError, ValueError):
        return None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]


def llama_cpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def ensure_server(gguf: Path, alias: str) -> str:
    """The URL of this host's server for `gguf`, starting it on first use."""
    if not llama_cpp_available():
        raise NexusError(
            "serving a GGUF model needs llama-cpp-python: pip install 'nexus-ls[local]'"
        )
    gguf = gguf.resolve()
    with _lock:
        server = _servers.get(gguf)
        if server is None or server.process.poll() is not None:
            server = EmbeddedServer(gguf, alias)
            _servers[gguf] = server
            server.wait_ready()
        return server.url


def stop_all() -> None:
    with _lock:
        for server in _servers.values():
            server.stop()
        _servers.clear()


atexit.register(stop_all)
