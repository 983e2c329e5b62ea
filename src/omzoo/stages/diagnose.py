"""`omzoo diagnose MODEL --precision P [--against REV]`: where a precision's artefact departs from the fp32 one, or
with --against from another revision's artefact of the same precision, node by node.

--against answers "accuracy dropped after the toolkit upgrade: which layer of this branch's artefact departs from
main's?": REV's artefact of the same model, infer.batch_size and precision is got as `omzoo abtest` gets a side's
(omzoo.results.worktree: a marked worktree under .omzoo/abtest/ with REV's environment, its compile stage checked
out of the shared DVC cache, else pulled, else built by REV's own pipeline). Both artefacts then run here, in this
checkout's onnxruntime, on this checkout's shards: what differs is what each compile made, nothing else.

Both artefacts run on the same images (the first 8 of the model's shards, or those named by --images) with every
intermediate tensor exposed (omzoo.backends.onnxruntime.debug); each node output of the reference graph (fp32's, or
REV's), in topological order, is compared with the same tensor of the other (omzoo.results.divergence): cosine
similarity, relative Euclidean distance, max |Δ|, against msit compare's thresholds. It names the first node past
them and whether the error carries on to the output ("propagates") or fades again ("local"), and writes diagnose.md
and diagnose.json. The onnxruntime backend's artefacts only for now (acl's .om and the torch backend have no per-node
access here).
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from omzoo.core import paths
from omzoo.core.io import claim_folder, json_bytes, write_files_atomic
from omzoo.core.params import PRECISIONS, REFERENCE, load_params
from omzoo.results import revisions
from omzoo.results.worktree import build, prepare

HELP = ("compare a precision's artefact with the fp32 one (or, with --against REV, with REV's artefact of the same "
        "precision) node by node: where it diverges, and whether it spreads")
DEFAULT_IMAGES = 8
BACKEND = "onnxruntime"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model id (registry and params.yaml `models:`)")
    p.add_argument("--precision", required=True, choices=PRECISIONS, help="the precision to diagnose (fp32 = itself)")
    p.add_argument("--images", nargs="+", metavar="NAME", help=f"image names of the shards (default: the first "
                   f"{DEFAULT_IMAGES})")
    p.add_argument("--compiled", type=Path, help="the artefact to diagnose (default: models/compiled/<model>/"
                   "<model>-<infer.batch_size>-<precision>)")
    reference = p.add_mutually_exclusive_group()
    reference.add_argument("--reference", type=Path, help="the fp32 artefact (default: models/compiled/<model>/"
                           "<model>-<infer.batch_size>-fp32)")
    reference.add_argument("--against", metavar="REV", help="a git revision (branch, tag, commit) whose own artefact "
                           "of this model, infer.batch_size and precision is the reference instead of fp32: checked "
                           "out of the DVC cache, pulled, or built by REV's pipeline in a worktree under "
                           ".omzoo/abtest/ as `omzoo abtest` does (log: <out>/logs/setup.log); both run here on "
                           "this checkout's shards")
    p.add_argument("--shards", type=Path, help="shard directory (default: data/processed/<the model's pixels>)")
    p.add_argument("--out", type=Path, help="folder for diagnose.md and diagnose.json (default: "
                   "reports/diagnose/<model>-<precision>, with --against <model>-<precision>-vs-<REV>)")
    p.set_defaults(against_commit=None)  # complete() sets the commit REV resolved to


def complete(args: argparse.Namespace) -> None:
    """The pipeline's paths for what was not given (params.yaml: infer.batch_size, models.<model>.pixels); with
    --against, REV's artefact made ready here, so the CLI's output checks see it as the input it is."""
    params = load_params(args.params)
    name = params.backend[0]
    if name != BACKEND:
        raise ValueError(f"omzoo diagnose needs the {BACKEND} backend's artefacts; this branch's backend is {name} "
                         "(acl and torch are not supported yet)")
    if args.model not in params.models:
        raise ValueError(f"{params.where}: no model {args.model!r} under `models:` ({', '.join(params.models)})")
    bs = int(params.section("infer").get("batch_size") or (params.batch_sizes or [1])[0])
    if args.compiled is None:
        args.compiled = _existing(paths.compiled(args.model, bs, args.precision))
    if args.shards is None:
        args.shards = paths.shards(params.models[args.model].get("pixels") or params.spec(args.model).recipe.pixels)
    if args.out is None:
        args.out = default_out(args.model, args.precision, args.against)
    if args.against is not None:
        _meta(args.compiled, args.model, args.precision)  # this side's artefact first: REV's may take a build
        args.reference, args.against_commit = revision_artefact(args.against, args.model, bs, args.precision,
                                                                args.out)
    elif args.reference is None:
        args.reference = _existing(paths.compiled(args.model, bs, REFERENCE))


def default_out(model: str, precision: str, against: str | None) -> Path:
    """reports/diagnose/<model>-<precision>[-vs-<REV>]; every character of REV but letters, digits, `.`, `_` and `-`
    becomes `_`, so the folder is one name inside reports/diagnose whatever REV is (`../x`: `…-vs-.._x`)."""
    name = f"{model}-{precision}" + ("" if against is None else f"-vs-{re.sub(r'[^A-Za-z0-9._-]', '_', against)}")
    return paths.REPORTS / "diagnose" / name


def revision_artefact(rev: str, model: str, bs: int, precision: str, out: Path) -> tuple[Path, str]:
    """REV's compiled artefact of (model, bs, precision) and the commit it comes from, made ready as `omzoo abtest`
    makes a side (omzoo.results.worktree), REV's params as committed (-S is this checkout's); the setup log in
    `out`/logs. ValueError naming REV where it is no revision, or its pipeline compiles no such artefact here."""
    if rev == "workspace":
        raise ValueError("--against workspace: the diagnosed artefact is already the workspace's; name a git revision")
    revisions.check_revision(rev)  # before any folder is made
    log = claim_folder(out, "diagnose") / "logs" / "setup.log"
    prep = prepare("reference", rev, (), log)
    where, backend = f"--against {rev} ({prep.commit[:7]})", prep.params.backend[0]
    if backend != BACKEND:
        raise ValueError(f"{where}: its backend is {backend}; omzoo diagnose needs the {BACKEND} backend's "
                         "artefacts (acl and torch are not supported yet)")
    made = prep.params.precisions if prep.has_precisions else [REFERENCE]  # before precisions: fp32 alone
    if model not in prep.params.models or bs not in prep.params.batch_sizes or precision not in made:
        raise ValueError(f"{where}: its pipeline compiles no {model} at batch size {bs} in {precision} (its "
                         f"models: {', '.join(prep.params.models) or 'none'}; batch_sizes: "
                         f"{', '.join(map(str, prep.params.batch_sizes)) or 'none'}; precisions: {', '.join(made)})")
    build(prep, [prep.compile_stage(model, bs, precision)], log)
    return prep.compiled(model, bs, precision), prep.commit


def _existing(path: Path) -> Path:
    """`path`, or its name from before the precision axis where only that exists (fp32's `models/compiled/m-8`)."""
    old = paths.legacy(path)
    return Path(old) if not path.exists() and old and Path(old).exists() else path


def _meta(art_dir: Path, model: str, what: str) -> dict[str, Any]:
    """An artefact's meta.json, refused in one line unless diagnose can run it (the onnxruntime backend's, of
    `model`)."""
    from omzoo.backends.artefact import read_meta

    meta = read_meta(art_dir)
    if meta.get("backend") != BACKEND:
        raise ValueError(f"{art_dir}: a {meta.get('backend')} artefact; omzoo diagnose needs the {BACKEND} "
                         "backend's artefacts (acl and torch are not supported yet)")
    if meta.get("model") != model:
        raise ValueError(f"{art_dir}: the {what} artefact is of {meta.get('model')}, not {model}")
    return meta


def _load(art_dir: Path, model: str, what: str) -> tuple[Any, dict[str, Any]]:
    from omzoo.backends.artefact import load_compiled

    _meta(art_dir, model, what)
    backend, meta = load_compiled(art_dir)
    return backend, meta


def _pick(shards: Any, names: list[str] | None, where: Path) -> list[int]:
    if not names:
        return list(range(min(DEFAULT_IMAGES, len(shards))))
    index = {n: i for i, n in enumerate(shards.names)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise ValueError(f"{where}: no image named {unknown[0]!r} among its {len(shards)} images (e.g. "
                         f"{', '.join(shards.names[:3])})")
    return [index[n] for n in names]


def _fed(backend: Any, pixels: np.ndarray, bs: int) -> list[tuple[np.ndarray, int]]:
    from omzoo.backends.base import pad_batch

    out = []
    for start in range(0, len(pixels), bs):
        padded, n = pad_batch(pixels[start:start + bs], bs)
        out.append((backend.feed(padded), n))
    return out


def _joined(parts: list[np.ndarray], rows: list[int], bs: int) -> np.ndarray:
    """One tensor over every image: the padded rows of each batch dropped (where the batch is the first axis)."""
    return np.concatenate([(p[:n] if p.ndim and p.shape[0] == bs else p).reshape(-1)
                           for p, n in zip(parts, rows, strict=True)])


def _activations(backend: Any, graph: Path, pixels: np.ndarray, bs: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    from omzoo.backends.onnxruntime.debug import collect

    fed = _fed(backend, pixels, bs)
    rows = [n for _, n in fed]
    acts = collect(graph, [x for x, _ in fed], backend.threads())
    logits = np.concatenate([np.asarray(backend.run(x), np.float32)[:n] for x, n in fed])
    return {t: _joined(v, rows, bs) for t, v in acts.items()}, logits


def _finite(obj: Any) -> Any:
    """JSON holds no NaN or infinity (json_bytes refuses them): such a number is written as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def diagnose(model: str, precision: str, reference_dir: Path, other_dir: Path, shards_dir: Path,
             images: list[str] | None = None, against: dict[str, str] | None = None) -> dict[str, Any]:
    """The comparison as diagnose.json holds it (rows, summary, what was compared); `markdown` for diagnose.md.
    `against`: the revision and commit `reference_dir` comes from (then an artefact of `precision`, compared tensor
    by tensor name); None: this checkout's fp32 artefact."""
    from omzoo.backends.onnxruntime.debug import MATCHING, SAME_NAMES, debug_graph, matched, node_outputs
    from omzoo.data.shards import ShardSet
    from omzoo.results.divergence import COSINE_MIN, RED_MAX, compare, node_divergence, verdict

    ref_precision = precision if against else REFERENCE
    ref, ref_meta = _load(reference_dir, model, f"{against['revision']} {precision}" if against else REFERENCE)
    other, other_meta = _load(other_dir, model, precision)
    bs, other_bs = ref_meta["batch_size"], other_meta["batch_size"]
    shards = ShardSet(shards_dir)
    if shards.pixels != ref.recipe.pixels:
        raise ValueError(f"{shards_dir} holds {shards.pixels} pixels but {model} needs {ref.recipe.pixels}")
    picked = _pick(shards, images, shards_dir)
    if not picked:
        raise ValueError(f"{shards_dir}: holds no images")
    pixels = np.concatenate([shards.read(i, i + 1) for i in picked])
    ref_graph = debug_graph(Path(reference_dir) / ref_meta["artefact"])  # fp32's is the artefact itself
    other_graph = debug_graph(Path(other_dir) / other_meta["artefact"])
    ref_acts, ref_logits = _activations(ref, ref_graph, pixels, bs)
    other_acts, other_logits = _activations(other, other_graph, pixels, other_bs)
    pairs = matched(ref_acts, other_acts, pair_qdq=against is None)
    rows = [node_divergence(node, op, tensor, ref_acts[tensor], pairs[tensor]["other"], pairs[tensor]["qdq"],
                            pairs[tensor]["pre_qdq"])
            for node, op, tensor in node_outputs(ref_graph) if tensor in pairs]
    if not rows:
        raise ValueError(f"{other_graph}: shares no tensor name with {ref_graph}; nothing to compare")
    summary = verdict(rows)
    cosine, red, max_abs = compare(ref_logits, other_logits)
    output = {"cosine": cosine, "red": red, "max_abs": max_abs,
              "top1_agreement": float((ref_logits.argmax(1) == other_logits.argmax(1)).mean())}
    record, ref_record = (m.get("precision_record") or {"precision": str(m.get("precision", p))}
                          for m, p in ((other_meta, precision), (ref_meta, ref_precision)))
    return {"model": model, "precision": precision, "reference_precision": ref_precision, "against": against,
            "reference": str(reference_dir), "compiled": str(other_dir),
            "reference_graph": str(ref_graph), "compared_graph": str(other_graph), "shards": str(shards_dir),
            "shards_hash": shards.hash, "images": [shards.names[i] for i in picked],
            "batch_sizes": {"reference": bs, "compiled": other_bs}, "precision_record": record,
            "reference_precision_record": ref_record,
            "thresholds": {"cosine_min": COSINE_MIN, "red_max": RED_MAX, "source": "msit compare"},
            "matching": SAME_NAMES if against else MATCHING,
            "tensors": {"reference": len(ref_acts), "compiled": len(other_acts), "compared": len(rows)},
            "intermediates": "ORT_DISABLE_ALL, every node output exposed (QDQ: float emulation of the int8 kernels)",
            "output": output, "summary": summary, "nodes": [asdict(r) for r in rows]}


def reference_name(result: dict[str, Any]) -> str:
    """What the reference is, as the title and the last line say it: `fp32`, or the revision and its commit."""
    against = result.get("against")
    return f"{against['revision']} ({against['commit'][:7]})" if against else REFERENCE


def markdown_of(result: dict[str, Any]) -> str:
    from omzoo.results.divergence import NodeDivergence, markdown

    rows = [NodeDivergence(**r) for r in result["nodes"]]
    out = result["output"]
    against = result.get("against")
    of = f" of {against['revision']}, commit {against['commit']}" if against else ""
    about = [f"reference `{result['reference']}` ({result['reference_precision']}{of}), compared "
             f"`{result['compared_graph']}` ({result['precision']})",
             f"{len(result['images'])} images of `{result['shards']}`: {', '.join(result['images'])}",
             f"{result['tensors']['compared']} tensors compared by name ({result['matching']})",
             f"artefact logits: cosine {out['cosine']:.5f}, RED {out['red']:.5f}, max |Δ| {out['max_abs']:.4g}, "
             f"top-1 agreement {out['top1_agreement']:.1%}",
             f"intermediates: {result['intermediates']}"]
    return markdown(rows, result["summary"],
                    f"diagnose {result['model']} {result['precision']} against {reference_name(result)}", about)


def run(args: argparse.Namespace) -> int:
    from omzoo.results.divergence import NodeDivergence

    against = None if args.against is None else {"revision": args.against, "commit": args.against_commit}
    result = diagnose(args.model, args.precision, args.reference, args.compiled, args.shards, args.images, against)
    out = claim_folder(args.out, "diagnose")  # new, empty or omzoo's: a user's folder is never written into
    write_files_atomic({out / "diagnose.md": markdown_of(result).encode(),
                        out / "diagnose.json": json_bytes(_finite(result))})
    s, first = result["summary"], result["summary"]["first"]
    for i, r in enumerate(result["nodes"]):
        past = NodeDivergence(**r).diverged
        mark = "  <- first divergence" if first and r["tensor"] == first["tensor"] else "  past" if past else ""
        print(f"{i:4d} {r['node'][-60:]:60s} {r['op']:18s} cos {r['cosine']:.5f} RED {r['red']:.5f} "
              f"max|d| {r['max_abs']:.3g}{mark}")
    what = f"{args.model} {args.precision} against {reference_name(result)}"
    if first:
        print(f"{what}: first divergence at {first['node']} ({first['op']}): cos "
              f"{first['cosine']:.4f}, RED {first['red']:.4f}; it {s['effect']} ({s['diverged_after']} of "
              f"{s['after']} later nodes past the thresholds) -> {out}/diagnose.md")
    else:
        print(f"{what}: no divergence in {len(result['nodes'])} nodes -> {out}/diagnose.md")
    return 0
