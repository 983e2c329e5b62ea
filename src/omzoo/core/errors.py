"""What a backend signals to the CLI: cannot run here (one line with the fix), or run this command again in another
environment. They live in the core so that the CLI, which turns them into an exit status, imports no backend. And
how every message quotes what it names (`shown`), so that a message stays one short line."""

from __future__ import annotations

__all__ = ["BackendUnavailable", "RestartInEnvironment", "shown"]


class BackendUnavailable(RuntimeError):
    """The backend's runtime is not installed or cannot see its device; the message says what to do."""


class RestartInEnvironment(Exception):
    """Raised by load() before any work when the runtime reads its environment at process start (acl: the
    library path aclruntime loads with), so this process cannot host it. The `omzoo` CLI runs the same command
    again in a child process with `env`."""

    def __init__(self, message: str, env: dict[str, str]) -> None:
        super().__init__(message)
        self.env = env


def shown(text: str, limit: int = 80) -> str:
    """A value, key or line as a message quotes it, cut to `limit` characters: a message stays short however big the
    value a file holds (an 8 KB alias list, a megabyte of a library's repr)."""
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(text)} characters)"
