"""One branch, one toolkit: every result a report or a comparison shows for a branch must carry the same toolkit
fingerprint (README, Scaling past one machine). A branch whose results were measured under two (an in-place upgrade
after which only some stages ran, two hosts' results committed together) is refused in one line, naming a file of
each, rather than shown as one toolkit's numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from omzoo.core import paths
from omzoo.core.params import Params
from omzoo.core.provenance import FINGERPRINT
from omzoo.results.revisions import read_json, read_params

#: what a result made before fingerprints were recorded carries
NONE = "none"


def result_infos(params: Params, read: Callable[[str], Any]) -> dict[str, dict[str, Any]]:
    """The info files of the models and batch sizes `params` asks for, as `read` (a path -> its JSON or None)
    finds them; a missing one (its stage has not run) is left out."""
    wanted = [str(paths.eval_info(m, p)) for m in params.models for p in params.precisions]
    wanted += [str(paths.bench_info(m, bs, p)) for m in params.models for bs in params.batch_sizes
               for p in params.precisions]
    return {p: info for p in wanted if isinstance(info := read(p), dict) and info}


def one_fingerprint(infos: Mapping[str, Mapping[str, Any]], where: str) -> str:
    """The one fingerprint hash `infos` (path -> info file) carry, "" when none carries one (results from before
    fingerprints); ValueError when they carry two, or some carry one and others none."""
    first: dict[str, str] = {}
    for path, info in sorted(infos.items()):
        first.setdefault(str(info.get(FINGERPRINT) or NONE), path)
    if len(first) > 1:
        shown = ", ".join(f"{path}: {fp}" for fp, path in sorted(first.items(), key=lambda kv: kv[1])[:2])
        raise ValueError(f"{where}: results from {len(first)} toolkit fingerprints in one branch ({shown}); "
                         "measure them again under one toolkit on one host (`make repro`), never mix them")
    return "" if not first or NONE in first else next(iter(first))


def revision_fingerprint(rev: str) -> str:
    """one_fingerprint of the results committed at `rev` ("workspace": the working tree)."""
    return one_fingerprint(result_infos(read_params(rev), lambda p: read_json(rev, p)), rev)
