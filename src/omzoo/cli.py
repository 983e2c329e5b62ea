"""`omzoo <verb>`: one subcommand per pipeline stage (and a few tools), each with its own --help.

Only the chosen verb's module is imported, so `omzoo --help` and light verbs stay fast and a missing
optional runtime never breaks an unrelated command. A verb module imports library modules only, never another
verb (tests/test_architecture.py checks it). Any error ends as one line on stderr, never a traceback: a user
needs the file or key and what is wrong; `OMZOO_TRACEBACK=1` shows the traceback for a bug report.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import subprocess
import sys
import traceback

#: verb -> module; each module has HELP, add_arguments(parser) and run(args)
VERBS: dict[str, str] = {
    "sample-data": "omzoo.stages.sample_data",
    "weights": "omzoo.stages.weights",
    "preprocess": "omzoo.stages.preprocess",
    "export": "omzoo.stages.export",
    "simplify": "omzoo.stages.simplify",
    "compile": "omzoo.stages.compile",
    "infer": "omzoo.stages.infer",
    "evaluate": "omzoo.stages.evaluate",
    "bench": "omzoo.stages.bench",
    "sweep": "omzoo.stages.sweep",
    "report": "omzoo.stages.report",
    "predict": "omzoo.stages.predict",
    "compare": "omzoo.stages.compare",
    "models": "omzoo.stages.models",
    "doctor": "omzoo.stages.doctor",
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
    except KeyboardInterrupt:
        print(f"omzoo {verb}: interrupted", file=sys.stderr)
        return 130
    except RestartInEnvironment as e:
        if os.environ.get(_RERUN_VAR):
            _report(verb, "error", f"still not in the environment the backend needs after a rerun: {e}")
            return 2
        return _rerun(argv, {**e.env, _RERUN_VAR: "1"})
    except (ValueError, OSError, BackendUnavailable) as e:
        # Library errors carry the file or key and the reason (OSError: the path and e.g. "No space left").
        _report(verb, "error", str(e) if not isinstance(e, OSError) or e.filename is None else
                f"{e.filename}: {e.strerror or e}")
        return 2
    except Exception as e:  # noqa: BLE001 - the last line of defence: still one line, never a traceback
        _report(verb, "error", f"{type(e).__name__}: {e}")
        return 1


def _report(verb: str, kind: str, message: str) -> None:
    if os.environ.get("OMZOO_TRACEBACK"):
        traceback.print_exc()
    first, *rest = message.strip().splitlines() or [""]
    print(f"omzoo {verb}: {kind}: {first}", file=sys.stderr)
    for line in rest:  # multi-line messages (every bad image, an atc log tail) stay readable
        print(f"  {line}", file=sys.stderr)


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
