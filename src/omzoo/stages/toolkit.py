"""The `toolkit` stage: the installed toolkit's fingerprint, as the configured backend describes it, in one small file.

dvc.yaml runs it on every `dvc repro` (`always_changed`); it rewrites the file only when the fingerprint changed, so
an in-place upgrade (a `pip install onnxruntime==X`, the `ascend-toolkit/latest` link moving) re-runs compile, infer
and bench, which depend on the file, and nothing upstream (README, Scaling past one machine). It also refuses, first,
a precision of `precisions:` the configured backend cannot run here (Backend.check_precision).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omzoo.backends.base import get_backend
from omzoo.core import paths
from omzoo.core.params import load_params
from omzoo.core.provenance import fingerprint_hash, write_fingerprint

HELP = "record the installed toolkit's fingerprint (backend, runtime and version, device, host CPU) when it changed"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=paths.TOOLKIT, help=f"the fingerprint file (default {paths.TOOLKIT})")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
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
