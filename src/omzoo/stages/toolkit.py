"""The `toolkit` stage: the installed toolkit's fingerprint, as the configured backend describes it, in one small file.

dvc.yaml runs it on every `dvc repro` (`always_changed`); it rewrites the file only when the fingerprint changed, so
an in-place upgrade (a `pip install onnxruntime==X`, the `ascend-toolkit/latest` link moving) re-runs compile, infer
and bench, which depend on the file, and nothing upstream (README, Scaling past one machine). It also refuses, first,
a precision of `precisions:` the configured backend cannot run here (Backend.check_precision).

It is also the gate in front of every shell DVC starts: DVC pastes params names (model ids, pixel recipes, batch sizes,
precisions) into the commands of the other stages and runs them through a shell, so those names must be validated
before DVC runs any of them. This stage validates the whole params.yaml (load_params) and then writes `--checked`
(metrics/params.json), a file whose content never changes; every stage that pastes a name depends on it, so DVC runs
this stage first (also for `dvc repro weights@M`) and a bad name stops the run here, while the constant content
re-runs nothing. `dvc repro -s` and `--downstream` skip upstream stages, this gate among them (README
"Security").
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omzoo.backends.base import get_backend
from omzoo.core import paths
from omzoo.core.io import json_bytes, write_if_changed
from omzoo.core.params import load_params
from omzoo.core.provenance import fingerprint_hash, write_fingerprint

HELP = "record the installed toolkit's fingerprint (backend, runtime and version, device, host CPU) when it changed"
#: the content of `--checked`: constant, so that its stage's dependants never re-run because of it
CHECKED = json_bytes({"params": "valid", "note": "written by `omzoo toolkit` once params.yaml passed validation; the "
                      "dvc.yaml stages whose commands paste params names depend on it (its content never changes)"})


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=paths.TOOLKIT, help=f"the fingerprint file (default {paths.TOOLKIT})")
    p.add_argument("--checked", type=Path, help="also write this constant file once the params are valid (dvc.yaml: "
                   f"{paths.PARAMS_CHECKED}, a dependency of every stage whose command pastes a params name)")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)  # validated whole: every name dvc.yaml pastes into a command
    if args.checked is not None:
        write_if_changed(args.checked, CHECKED)
    name, options = params.backend
    backend = get_backend(name, options)
    try:
        for precision in params.precisions:  # the first stage of a repro: a precision that cannot run stops it here
            backend.check_precision(precision)
        fingerprint = backend.fingerprint()
    finally:
        backend.close()
    changed = write_fingerprint(args.out, fingerprint)
    print(f"toolkit {fingerprint_hash(fingerprint)}: {fingerprint['runtime']} {fingerprint['runtime_version']} on "
          f"{fingerprint['device']} -> {args.out}{'' if changed else ' (unchanged)'}")
    return 0
