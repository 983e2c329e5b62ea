"""`omzoo doctor`: can this host run the configured backend? One line per check, with what to do when it fails.

The checks are each backend's own (Backend.host_checks), so what doctor reports is what the stages will meet, and a
new backend shows up here without this verb knowing it. Without --backend the configured backend (params.yaml
`backend:`) is checked in full, then every other registered backend gets one line: ready on this host, or not and
why. Exit status 0 when every check of the backend checked in full passes.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from omzoo.backends.base import backend_names, get_backend
from omzoo.backends.checks import DEVICE, Check, HostPlan
from omzoo.core.errors import BackendUnavailable
from omzoo.core.params import Params, load_params

HELP = "check that this host can run the configured backend: one line per check, and what to do when one fails"


def run_checks(params: Params, name: str, plan: HostPlan) -> list[Check]:
    """The `backend` line (can it be made with its params section?), then that backend's own checks against `plan`.

    A runtime that is not installed ends the list with one failing `runtime` line."""
    try:
        backend = get_backend(name, params.section(name))
    except (ValueError, ImportError, BackendUnavailable) as exc:
        return [Check.failed("backend", f"{name}: {exc}", f"fix the {name} section of params.yaml")]
    made = Check.passed("backend", f"{name} ({'configured' if params.backend[0] == name else 'asked'})")
    try:
        return [made, *backend.host_checks(plan)]
    except (ImportError, BackendUnavailable) as exc:
        return [made, Check.failed("runtime", f"{name}: {exc}", f"install {name} into {sys.prefix}")]


def verdict(name: str, checks: list[Check]) -> str:
    """The closing line of a full check: ready, or which checks failed and how many were skipped."""
    failed = [c.name for c in checks if c.status == "FAIL"]
    skipped = sum(c.status == "skip" for c in checks)
    if not failed and not skipped:
        return f"{name}: ready on this host"
    return f"{name}: NOT ready on this host: failed {', '.join(failed)}" + (
        f"; {skipped} checks skipped" if skipped else "")


def one_line(name: str, checks: list[Check]) -> str:
    """Another backend in one line: ready (and on what device), or the first thing that stops it."""
    stop = next((c for c in checks if c.status != "ok"), None)
    if stop is None:
        device = next((c.detail for c in checks if c.name == DEVICE), "")
        return f"{name}: ready on this host" + (f" ({device})" if device else "")
    return f"{name}: NOT ready on this host: {stop.name}: {stop.detail}"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=backend_names(), help="check this backend in full instead of params.yaml's")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    name = args.backend or params.backend[0]
    plan = HostPlan(toolkit_version=params.toolkit_version, root=params.path.resolve().parent,
                    models=tuple(params.models), batch_sizes=tuple(params.batch_sizes))
    checks = run_checks(params, name, plan)
    for check in checks:
        print(check.line())
    print(verdict(name, checks))
    if not args.backend:
        # the branch's toolkit pin is the configured backend's: the others are checked against any version
        unpinned = replace(plan, toolkit_version="")
        others = [other for other in backend_names() if other != name]
        if others:
            print("other backends (`omzoo doctor --backend NAME` checks one in full):")
        for other in others:
            print("  " + one_line(other, run_checks(params, other, unpinned)))
    return 0 if all(c.status == "ok" for c in checks) else 1
