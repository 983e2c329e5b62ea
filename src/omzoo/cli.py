"""`omzoo <verb>`: one subcommand per pipeline stage (and a few tools), each with its own --help.

Only the chosen verb's module is imported, so `omzoo --help` and light verbs stay fast and a missing
optional runtime never breaks an unrelated command.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import subprocess
import sys

#: verb -> module; each module has HELP, add_arguments(parser) and run(args)
VERBS: dict[str, str] = {
    "sample-data": "omzoo.data.sample",
    "weights": "omzoo.weights",
    "preprocess": "omzoo.data.preprocess",
    "export": "omzoo.export",
    "simplify": "omzoo.simplify",
    "compile": "omzoo.compile",
    "infer": "omzoo.infer",
    "evaluate": "omzoo.evaluate",
    "bench": "omzoo.bench",
    "report": "omzoo.report",
    "predict": "omzoo.predict",
    "compare": "omzoo.compare",
    "models": "omzoo.zoo",
    "doctor": "omzoo.doctor",
}
#: set in the child that reruns a verb in the environment its backend asked for (guards against a loop)
_RERUN_VAR = "OMZOO_RERUN"


def _top_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="omzoo", description="checkpoint → ONNX → compiled model → accuracy and "
                                "throughput, reproducibly (`dvc repro`). `omzoo VERB --help` for each verb.")
    p.add_argument("verb", choices=list(VERBS), metavar="VERB", help=", ".join(VERBS))
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in VERBS:
        _top_parser().parse_args(argv[:1] or ["--help"])
    verb, rest = argv[0], argv[1:]
    module = importlib.import_module(VERBS[verb])
    parser = argparse.ArgumentParser(prog=f"omzoo {verb}", description=module.HELP)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    from omzoo.backends.base import BackendUnavailable, RestartInEnvironment

    try:
        return int(module.run(args) or 0)
    except RestartInEnvironment as e:
        if os.environ.get(_RERUN_VAR):
            print(f"omzoo {verb}: error: still not in the environment the backend needs after a rerun: {e}",
                  file=sys.stderr)
            return 2
        return _rerun(argv, {**e.env, _RERUN_VAR: "1"})
    except (ValueError, FileNotFoundError, BackendUnavailable) as e:
        # Library errors carry the file and the reason; a traceback adds nothing for a user.
        print(f"omzoo {verb}: error: {e}", file=sys.stderr)
        return 2


def _rerun(argv: list[str], env: dict[str, str]) -> int:
    """The same command in a child process started with `env`; its exit status is this one's."""
    child = subprocess.Popen([sys.executable, "-m", "omzoo.cli", *argv], env=env)
    previous = signal.signal(signal.SIGTERM, lambda *_: child.terminate())  # a stopped stage stops its child
    try:
        return child.wait()
    except KeyboardInterrupt:  # the child, in the same process group, got the SIGINT too and decides
        return child.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
