"""What a backend signals to the CLI: cannot run here (one line with the fix), or run this command again in another
environment. They live in the core so that the CLI, which turns them into an exit status, imports no backend."""

from __future__ import annotations

__all__ = ["BackendUnavailable", "RestartInEnvironment"]


class BackendUnavailable(RuntimeError):
    """The backend's runtime is not installed or cannot see its device; the message says what to do."""


class RestartInEnvironment(Exception):
    """Raised by load() before any work when the runtime reads its environment at process start (acl: the
    library path aclruntime loads with), so this process cannot host it. The `omzoo` CLI runs the same command
    again in a child process with `env`."""

    def __init__(self, message: str, env: dict[str, str]) -> None:
        super().__init__(message)
        self.env = env
