"""`omzoo <verb>`: one subcommand per pipeline stage (and a few tools), each with its own --help.

Only the chosen verb's module is imported, so `omzoo --help` and light verbs stay fast and a missing
optional runtime never breaks an unrelated command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: verb -> (module, help attribute, add_arguments function, run function)
VERBS: dict[str, tuple[str, str, str, str]] = {
    "sample-data": ("omzoo.data.sample", "HELP", "add_arguments", "run"),
    "weights": ("omzoo.weights", "HELP", "add_arguments", "run"),
    "preprocess": ("omzoo.data.preprocess", "HELP", "add_arguments", "run"),
    "export": ("omzoo.export", "HELP", "add_arguments", "run"),
    "simplify": ("omzoo.export", "SIMPLIFY_HELP", "add_simplify_arguments", "run_simplify"),
    "compile": ("omzoo.compile", "HELP", "add_arguments", "run"),
    "infer": ("omzoo.infer", "HELP", "add_arguments", "run"),
    "evaluate": ("omzoo.evaluate", "HELP", "add_arguments", "run"),
    "bench": ("omzoo.bench", "HELP", "add_arguments", "run"),
    "report": ("omzoo.report", "HELP", "add_arguments", "run"),
    "predict": ("omzoo.predict", "HELP", "add_arguments", "run"),
    "compare": ("omzoo.compare", "HELP", "add_arguments", "run"),
    "models": ("omzoo.zoo", "HELP", "add_arguments", "run"),
}


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
    module_name, help_attr, add_name, run_name = VERBS[verb]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"omzoo {verb}", description=getattr(module, help_attr))
    getattr(module, add_name)(parser)
    args = parser.parse_args(rest)
    from omzoo.backends.base import BackendUnavailable

    try:
        return int(getattr(module, run_name)(args) or 0)
    except (ValueError, FileNotFoundError, BackendUnavailable) as e:
        # Library errors carry the file and the reason; a traceback adds nothing for a user.
        print(f"omzoo {verb}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
