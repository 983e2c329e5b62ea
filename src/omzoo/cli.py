"""`omzoo <verb>`: one subcommand per pipeline stage (and a few tools), each with its own --help.

Only the chosen verb's module is imported, so `omzoo --help` and light verbs stay fast and a missing
optional runtime never breaks an unrelated command. A verb module (omzoo.stages) imports the layers below it,
never another verb (tests/test_architecture.py checks it). Any error ends as one line on stderr, never a
traceback: a user needs the file or key and what is wrong; `OMZOO_TRACEBACK=1` shows the traceback for a bug report.

Tunables are params keys (dvc.yaml tracks them), not flags. By hand, every verb gets `-S KEY=VALUE`
(repeatable, the syntax of `dvc exp run -S`) from here, once, and every verb that reads params `--params FILE`;
its --help lists the keys it reads (READS), so one setting is changed without writing a params file.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import signal
import subprocess
import sys
import traceback
from pathlib import Path
from types import ModuleType

from omzoo.core.errors import shown

#: verb -> module; each module has HELP, add_arguments(parser) and run(args), and NO_OVERRIDES (why it takes no
#: -S) where it runs other stages that read params.yaml themselves; optionally complete(args) (paths params.yaml names,
#: the outputs' defaults), INFO_BESIDE_OUT (--info defaults to <out>.json) and inputs(args) (what it reads that no
#: argument names), all before check_outputs
VERBS: dict[str, str] = {
    "sample-data": "omzoo.stages.sample_data",
    "toolkit": "omzoo.stages.toolkit",
    "weights": "omzoo.stages.weights",
    "preprocess": "omzoo.stages.preprocess",
    "export": "omzoo.stages.export",
    "simplify": "omzoo.stages.simplify",
    "calibrate": "omzoo.stages.calibrate",
    "compile": "omzoo.stages.compile",
    "infer": "omzoo.stages.infer",
    "evaluate": "omzoo.stages.evaluate",
    "bench": "omzoo.stages.bench",
    "sweep": "omzoo.stages.sweep",
    "report": "omzoo.stages.report",
    "predict": "omzoo.stages.predict",
    "compare": "omzoo.stages.compare",
    "abtest": "omzoo.stages.abtest",
    "models": "omzoo.stages.models",
    "doctor": "omzoo.stages.doctor",
    "diagnose": "omzoo.stages.diagnose",
}
#: verb -> the params keys it reads, dotted as in dvc.yaml's `params:` (`<model>`: the model argument's entry,
#: `<backend>`: the section of the backend it runs, `<backends>`: every backend's section). Its --help lists them,
#: a -S outside them is an error (it would change nothing), and tests/test_cli.py checks them against dvc.yaml.
READS: dict[str, tuple[str, ...]] = {
    "sample-data": (),
    "toolkit": ("backend", "<backend>", "precisions"),
    "weights": ("weights", "models.<model>"),
    "preprocess": ("datasets.<pixels>", "preprocess.skip_bad", "preprocess.shard_size", "preprocess.workers"),
    "export": ("export", "models.<model>"),
    "simplify": (),
    "calibrate": ("precisions", "precision", "models.<model>"),
    "compile": ("toolkit", "backend", "<backend>", "models.<model>"),
    "infer": ("precisions", "infer.batch_size"),
    "evaluate": (),
    "bench": ("bench",),
    "sweep": ("models", "batch_sizes", "precisions"),
    "report": ("models", "batch_sizes", "precisions", "backend", "toolkit", "report"),
    "predict": (),
    "compare": ("compare", "models", "batch_sizes"),
    "abtest": ("abtest", "bench", "compare", "toolkit", "backend", "<backends>", "export", "weights", "models",
               "batch_sizes", "datasets", "preprocess", "infer"),
    "models": (),
    "doctor": ("backend", "toolkit", "models", "batch_sizes", "<backends>"),
    "diagnose": ("backend", "infer", "batch_sizes", "models.<model>"),
}
#: the arguments that name what a verb writes; every other path argument is an input it reads (report's --root, the
#: checkout it reads metrics from, holds its output folder and is neither)
OUTPUTS = ("out", "info", "rounds", "checked")
NOT_INPUTS = ("root",)
#: verbs that read each git revision's committed params.yaml, not a --params file (-S applies to each revision)
FROM_REVISIONS = frozenset({"compare", "abtest"})
#: set in the child that reruns a verb in the environment its backend asked for (guards against a loop)
_RERUN_VAR = "OMZOO_RERUN"


def _top_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="omzoo", description="checkpoint → ONNX → compiled model → accuracy and "
                                "throughput, reproducibly (`dvc repro`). `omzoo VERB --help` for each verb.")
    p.add_argument("verb", choices=list(VERBS), metavar="VERB", help=", ".join(VERBS))
    return p


def verb_parser(verb: str) -> tuple[ModuleType, argparse.ArgumentParser]:
    """The verb's module and its whole parser: its own arguments, then --params and -S as every verb has them."""
    module = importlib.import_module(VERBS[verb])
    parser = argparse.ArgumentParser(prog=f"omzoo {verb}", description=module.HELP)
    module.add_arguments(parser)
    _add_params_options(parser, verb, getattr(module, "NO_OVERRIDES", ""))
    for action in parser._actions:  # every path argument: '' would silently mean the current folder
        if action.type is Path:
            action.type = _path
    return module, parser


def _path(text: str) -> Path:
    """A path argument; an empty one names nothing (Path('') would be '.', the current folder)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path names no file or folder")
    return Path(text)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except KeyboardInterrupt:  # also while a verb's libraries are still being imported
        print(f"omzoo {argv[0] if argv else ''}: interrupted".replace("  ", " "), file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    if not argv or argv[0] not in VERBS:
        _top_parser().parse_args(argv[:1] or ["--help"])
    verb, rest = argv[0], argv[1:]
    module, parser = verb_parser(verb)
    refused = getattr(module, "NO_OVERRIDES", "")
    args = parser.parse_args(rest)
    from omzoo.core import params
    from omzoo.core.errors import BackendUnavailable, RestartInEnvironment

    try:
        with params.command(args.set_params):
            _check_overrides(verb, module, args, refused)
            if getattr(module, "INFO_BESIDE_OUT", False) and args.info is None:  # so check_outputs sees it
                args.info = args.out.with_suffix(".json")
            if hasattr(module, "complete"):  # the input paths params.yaml names (dvc.yaml never pastes them) and the
                module.complete(args)        # outputs' defaults, so check_outputs sees every output
            check_outputs(args, implied_inputs(module, args))
            return int(module.run(args) or 0)
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


def _add_params_options(parser: argparse.ArgumentParser, verb: str, refused: str) -> None:
    """--params (for a verb that reads params from a file, not from git revisions) and -S, the same for every verb."""
    from omzoo.core.params import PARAMS_HELP

    reads = ", ".join(READS[verb])
    if reads and verb not in FROM_REVISIONS:
        parser.add_argument("--params", type=Path, help=PARAMS_HELP)
    where = {"compare": "both revisions' params (the rules are BASE's)",
             "abtest": "HEAD's params only (BASE is the reference as committed)"}.get(verb, "--params")
    legend = {"<model>": "the model argument's entry", "<pixels>": "the --pixels entry",
              "<backend>": "the section of the backend it runs",
              "<backends>": "every backend's section"}
    read = ", ".join(f"{k}: {v}" for k, v in legend.items() if k in re.findall(r"<\w+>", reads))
    read = f"reads {reads}" + (f" ({read})" if read else "") if reads else "reads no params (nothing to set)"
    parser.add_argument("-S", "--set-param", dest="set_params", action="append", default=[], metavar="KEY=VALUE",
                        help=f"not taken: {refused}; omzoo {verb} {read}" if refused else
                        f"set a params key for this run, over {where}; repeatable, a dotted key and a YAML value as "
                        "in `dvc exp run -S` (-S export.input_dtype=float32, -S 'batch_sizes=[1,8]'). "
                        f"omzoo {verb} {read}")


def _check_overrides(verb: str, module: ModuleType, args: argparse.Namespace, refused: str) -> None:
    """Every -S must name a section the verb reads: one it would ignore is an error, never silently nothing.
    The params are loaded here (once: the verb's own load gets the same object), so a bad -S fails before work."""
    if not args.set_params:
        return
    from omzoo.core.params import load_params, override_key

    if refused:
        raise ValueError(f"-S {args.set_params[0]}: {refused}")
    if not READS[verb]:
        raise ValueError(f"-S {args.set_params[0]}: omzoo {verb} reads no params; its settings are its arguments")
    model, pixels = str(getattr(args, "model", "<model>")), str(getattr(args, "pixels", "<pixels>"))
    prefixes = {k.replace("<model>", model).replace("<pixels>", pixels) for k in READS[verb] if not k.startswith("<")}
    if "<backends>" in READS[verb]:  # doctor and abtest, the verbs that read them all, hold the registry's names
        prefixes.update(module.backend_names())

    def read(key: str) -> bool:
        return any(key == p or key.startswith(f"{p}.") or p.startswith(f"{key}.") for p in prefixes)

    unread = [item for item in args.set_params if not read(override_key(item))]
    if unread and "<backend>" in READS[verb]:  # the backend's section: known once the params (and -S) are read
        prefixes.add(load_params(args.params).backend[0])
        unread = [item for item in unread if not read(override_key(item))]
    if unread:
        raise ValueError(f"-S {unread[0]}: omzoo {verb} does not read `{override_key(unread[0])}` (it reads "
                         f"{', '.join(sorted(prefixes))})")
    if verb not in FROM_REVISIONS:
        load_params(args.params)  # a bad -S value fails here, before any work


def implied_inputs(module: ModuleType, args: argparse.Namespace) -> dict[str, Path]:
    """The inputs no argument names, described: the params file a verb reads when --params is not given
    (./params.yaml) and what the verb's `inputs(args)` declares (report's metrics folder)."""
    from omzoo.core import paths

    implied = {"params file": paths.PARAMS} if "params" in vars(args) and args.params is None else {}
    return {**implied, **(module.inputs(args) if hasattr(module, "inputs") else {})}


def check_outputs(args: argparse.Namespace, implied: dict[str, Path] | None = None) -> None:
    """The one output-is-not-an-input rule of every verb: an output (--out, --info, --rounds, defaults filled in by
    the verb's `complete`) must name a file or folder of its own, no other output, and no input path (the same file,
    also through a link; `implied`: the inputs no argument names), hold one (a folder output replaced whole), or sit
    inside an input folder (it would become an input of the next run); writing it would destroy what the verb reads."""
    given = vars(args)
    outputs = [(_flag(name), Path(given[name])) for name in OUTPUTS if given.get(name)]
    inputs = [(f"the input {_flag(name)} {value}", value) for name, value in given.items()
              if isinstance(value, Path) and name not in OUTPUTS + NOT_INPUTS]
    inputs += [(f"the {what} {path} (which it reads)", path) for what, path in (implied or {}).items()]
    for out_flag, out in outputs:
        if out.name in ("", ".."):  # `.`, `/`, `..`: a folder that holds others, never an output of its own
            raise ValueError(f"{out_flag} {out}: names no file or folder of its own (give the output a name, e.g. "
                             f"{out_flag} out)")
        o = out.resolve()
        for input_named, src in inputs:
            s = src.resolve()
            same = o == s or (out.exists() and src.exists() and os.path.samefile(out, src))
            how = ("is" if same else "would contain" if o in s.parents else
                   "sits inside" if s in o.parents and src.is_dir() else "")
            if how:
                raise ValueError(f"{out_flag} {out}: {how} {input_named}; writing it would destroy what this command "
                                 "reads (choose an output outside its inputs)")
    for i, (flag, out) in enumerate(outputs):
        for other_flag, other in outputs[:i]:
            if out.resolve() == other.resolve():
                raise ValueError(f"{flag} {out}: is also {other_flag} (an output left out takes its default, e.g. "
                                 "--info <out>.json); give each output its own path")


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _report(verb: str, kind: str, message: str) -> None:
    if os.environ.get("OMZOO_TRACEBACK"):
        traceback.print_exc()
    # each line cut short: a library quoting a huge value must not make the error megabytes long
    first, *rest = [shown(line, 2000) for line in message.strip().splitlines()] or [""]
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
