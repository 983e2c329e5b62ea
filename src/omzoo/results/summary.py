"""The tables porting guides assemble by hand, built from the metrics files: read by `report` and `make bench`.

Per model an accuracy table (ours, published, delta, pass) and a throughput table by batch size with the
published 310P columns (and 310/T4 where the guides publish them), our ratio to each, and the best batch size
marked; above them the provenance the info files carry (backend, runtime versions, device, precision, git
revision; weights and dataset manifest per model) and a plain warning when weights are random. The list of
expected rows comes from params (models x batch_sizes), never from a directory glob, so stale files of a shrunk
sweep are ignored and missing ones show as missing. Backend specifics come only from the info files' fixed
describe() keys, so a new backend needs nothing here.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
from pathlib import Path
from typing import Any

from omzoo.core import paths, zoo
from omzoo.core.io import atomic_write, write_bytes_atomic
from omzoo.core.metrics import fmt
from omzoo.core.params import Params
from omzoo.core.provenance import git_revision


def read_json(path: Path) -> dict[str, Any]:
    """A metrics or info file, or {} where its stage has not run (shown as missing, never as zero)."""
    return json.loads(path.read_text()) if path.is_file() else {}


def ratio(ours: float | None, published: float | None) -> str:
    """ours/published: two decimals, or two significant digits for CPU runs far below an accelerator."""
    if not ours or not published:
        return "–"
    r = ours / published
    return f"{r:.2f}" if r >= 0.1 else f"{r:.2g}"


def collect(root: Path, params: Params) -> dict[str, Any]:
    """Everything the report shows, read under `root` for the models and batch sizes in params."""
    out: dict[str, Any] = {}
    for m in params.models:
        bench = {bs: (read_json(root / paths.bench_metrics(m, bs)), read_json(root / paths.bench_info(m, bs)))
                 for bs in params.batch_sizes}
        out[m] = {"eval": read_json(root / paths.eval_metrics(m)), "eval_info": read_json(root / paths.eval_info(m)),
                  "bench": bench}
    return out


CSV_FIELDS = ["model", "batch_size", "config", "throughput_compute_ips", "throughput_compute_ci_low",
              "throughput_compute_ci_high", "throughput_e2e_ips", "latency_p99_ms", "contended"]


def throughput_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows for the CSV that `dvc plots` and the PNG read (a failed or unmeasured point has none)."""
    rows = []
    for m, d in data.items():
        for bs, (metrics, _info) in d["bench"].items():
            if "throughput_compute_ips" not in metrics:
                continue
            rows.append({"model": m, "batch_size": bs, "config": f"{m}/bs{bs:03d}",
                         "throughput_compute_ips": metrics["throughput_compute_ips"],
                         "throughput_compute_ci_low": metrics.get("throughput_compute_ci_low"),
                         "throughput_compute_ci_high": metrics.get("throughput_compute_ci_high"),
                         "throughput_e2e_ips": metrics["throughput_e2e_ips"],
                         "latency_p99_ms": metrics["e2e_ms"]["p99"], "contended": metrics.get("contended", 0)})
    return rows


def with_interval(metrics: dict[str, Any], name: str = "compute") -> str:
    """`123.4 [120.1, 125.0]`, the median over rounds and its interval; † when a kept round was contended."""
    median = metrics.get(f"throughput_{name}_ips")
    if median is None:
        return "–"
    low, high = metrics.get(f"throughput_{name}_ci_low"), metrics.get(f"throughput_{name}_ci_high")
    text = fmt(median, 1) + (f" [{fmt(low, 1)}, {fmt(high, 1)}]" if low is not None and high is not None else "")
    return text + (" †" if metrics.get("contended") else "")


def failure(metrics: dict[str, Any], info: dict[str, Any]) -> str | None:
    """Why a point has no number: its recorded error (out of memory), or that it was not measured."""
    if info.get("error") or metrics.get("failed"):
        return f"failed: {str(info.get('error', 'out of memory'))[:40]}"
    return None if metrics else "not measured"


CONTENDED_NOTE = ("† contended: other processes used the CPU during a round that could not be measured again; "
                  "the number is untrustworthy, not slow (see `rounds_contended` in the metrics).")


def accuracy_table(model_id: str, ev: dict[str, Any]) -> list[list[str]]:
    spec = zoo.get(model_id)
    rows = []
    for k in ("top1", "top5"):
        published = {p: acc[k] for p, acc in spec.published_accuracy.items() if k in acc}
        ref = published.get(spec.reference_platform)
        delta = ev[k] - ref if (k in ev and ref is not None) else None
        ok = "" if ref is None or ev.get("random_weights") or k not in ev else ("pass" if ev.get("pass") else "FAIL")
        others = ", ".join(f"{p} {v}" for p, v in published.items() if p != spec.reference_platform)
        rows.append([k, fmt(ev.get(k)), fmt(ref), fmt(delta), ok, others])
    return rows


def published_platforms(model_id: str, platforms: list[str]) -> list[str]:
    """The configured platforms this model has published throughput for; 310P always (the guides' target)."""
    spec = zoo.get(model_id)
    return [p for p in platforms if p == "310P" or p in spec.published_throughput]


def throughput_table(model_id: str, bench: dict[int, tuple[dict, dict]], platforms: list[str]) -> list[list[str]]:
    spec = zoo.get(model_id)
    ours = {bs: m.get("throughput_compute_ips") for bs, (m, _) in bench.items()}
    valid = {bs: v for bs, v in ours.items() if v is not None}
    best = max(valid, key=valid.get) if valid else None
    rows = []
    for bs, (m, info) in bench.items():
        row = [f"{bs} ★" if bs == best else str(bs), failure(m, info) or with_interval(m),
               fmt(m.get("throughput_compute_cv"), 3), with_interval(m, "e2e"), fmt(m.get("e2e_ms", {}).get("p99"))]
        for p in platforms:
            pub = spec.published_throughput.get(p, {}).get(bs)
            row += [fmt(pub, 1), ratio(ours[bs], pub)]
        rows.append(row)
    return rows


def _distinct(values: list[Any], limit: int = 4) -> str:
    """Unique non-empty values in first-seen order: one value when a run was homogeneous, all when not."""
    seen = list(dict.fromkeys(str(v) for v in values if v not in (None, "", {}, [])))
    if not seen:
        return "–"
    more = f" (+{len(seen) - limit} more)" if len(seen) > limit else ""
    return "; ".join(seen[:limit]) + more


def provenance_fields(info: dict[str, Any]) -> dict[str, str]:
    """The provenance one bench info file carries, as the summary's rows: describe()'s fixed keys, plus every
    `*_version` string a backend puts in `extra` (driver, wheels), so no backend is named here."""
    extra = info.get("extra") or {}
    versions = [f"{info['runtime']}={info['runtime_version']}"] if info.get("runtime") else []
    versions += [f"{k.removesuffix('_version')}={v}" for k, v in sorted(extra.items()) if k.endswith("_version") and v]
    return {"backend": str(info.get("backend", "")),
            "installed toolkit": str(info.get("toolkit_version", "")),
            "runtime versions": " ".join(versions),
            "device": str(info.get("device", "")),
            "precision": str(info.get("precision", "")),
            "threads": str(info.get("threads", "")),
            "measured at git": str(info.get("git_revision", ""))}


def provenance_markdown(data: dict[str, Any], params: Params) -> list[str]:
    """Where the numbers come from (issue item 5), summarised from metrics/info: the environment of the
    benchmarks, then per model the weights and dataset that the accuracy was measured on."""
    from tabulate import tabulate

    infos = [i for d in data.values() for _, i in d["bench"].values() if i]
    rows = [["toolkit branch pins", params.toolkit_version or "any installed version"]]
    fields = [provenance_fields(i) for i in infos]
    for label in provenance_fields({}):
        rows.append([label, _distinct([f[label] for f in fields])])
    measured = sorted({int(i["batch_size"]) for i in infos if "batch_size" in i})
    rows.append(["batch sizes", f"{params.batch_sizes} in params; measured {measured or 'none'}"])
    lines = ["## Provenance", "", tabulate(rows, ["what", "value"], tablefmt="github", disable_numparse=True), ""]
    per_model = []
    for m, d in data.items():
        ei = d["eval_info"]
        source = ei.get("weights_source") or ei.get("weights") or "–"
        per_model.append([m, source, str(ei.get("checkpoint_sha256") or "–")[:16], ei.get("dataset") or "–",
                          str(ei.get("dataset_manifest") or "–")[:16]])
    lines.append(tabulate(per_model, ["model", "weights", "checkpoint sha256", "dataset", "dataset manifest"],
                          tablefmt="github", disable_numparse=True))
    return lines


def summary_markdown(data: dict[str, Any], params: Params) -> str:
    from tabulate import tabulate

    # str(): YAML reads the bare 310 in `platforms: [310P, 310, T4]` as an int, the registry keys are strings
    platforms = [str(p) for p in params.section("report").get("platforms", ["310P"])]
    infos = [i for d in data.values() for _, i in d["bench"].values() if i]
    env = infos[0] if infos else {}
    lines = ["# omzoo summary", ""]
    lines.append(f"Backend **{params.backend[0]}** on {env.get('device', 'unknown device')}; "
                 f"toolkit {env.get('toolkit_version') or '–'}; "
                 f"git {git_revision() or '–'}.")
    random = [m for m, d in data.items() if d["eval"].get("random_weights")]
    if random:
        lines += ["", f"> **Random weights: accuracy means nothing** for {', '.join(random)}. No published checkpoint "
                  "is configured, so their accuracy only checks that every stage runs, not the model. "
                  "Throughput is real."]
    lines += [""] + provenance_markdown(data, params)
    lines += ["", "Our throughput is `throughput_compute_ips` = 1000·bs / mean compute ms (the ais_bench and "
              "ModelZoo formula), the median over the bench rounds with its interval from the rounds' order "
              "statistics, and cv = std/mean over rounds; published columns are the guides' figures (310P/310: "
              "ais_bench fp16 .om; T4: TensorRT fp16), so ratios across different hardware are context, not a "
              "verdict. ★ = our best batch size. " + CONTENDED_NOTE]
    for m, d in data.items():
        spec = zoo.get(m)
        ev = d["eval"]
        lines += ["", f"## {spec.title} (`{m}`)", ""]
        if ev:
            n = f"{ev.get('n_images')} images" + (f", {ev['n_skipped']} skipped" if ev.get("n_skipped") else "")
            if ev.get("random_weights"):
                lines += ["Random weights: accuracy means nothing.", ""]
            lines.append(f"Accuracy on {n}:")
            lines += ["", tabulate(accuracy_table(m, ev), ["metric", "ours", f"published {spec.reference_platform}",
                                                         "delta", "pass (≥99 %)", "other published"],
                                   tablefmt="github")]
            if "fidelity_max_abs_diff" in ev:
                lines += ["", f"Fidelity vs ONNX Runtime fp32 (first batch): max |Δlogit| "
                          f"{ev['fidelity_max_abs_diff']:.2e}, top-1 agreement {ev['fidelity_top1_agreement']:.2f}, "
                          f"top-5 overlap {ev['fidelity_top5_overlap']:.2f}."]
        else:
            lines.append("No accuracy metrics (evaluate has not run).")
        shown = published_platforms(m, platforms)
        headers = ["bs", "ours img/s [interval ≥ 95 %]", "cv", "e2e img/s [interval]", "p99 ms"]
        for p in shown:
            headers += [f"{p} img/s", f"ours/{p}"]
        lines += ["", tabulate(throughput_table(m, d["bench"], shown), headers, tablefmt="github",
                               disable_numparse=True)]
        if spec.notes:
            lines += ["", f"Note: {spec.notes}"]
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(path, buf.getvalue().encode())


def write_png(rows: list[dict[str, Any]], path: Path) -> None:
    """Throughput vs batch size, one line per model with the rounds' interval as error bars; contended points
    hollow, for people who read the markdown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for m in dict.fromkeys(r["model"] for r in rows):
        pts = sorted((r for r in rows if r["model"] == m), key=lambda r: r["batch_size"])
        x, y = [r["batch_size"] for r in pts], [r["throughput_compute_ips"] for r in pts]
        low = [y_ - (r["throughput_compute_ci_low"] if r["throughput_compute_ci_low"] is not None else y_)
               for r, y_ in zip(pts, y, strict=True)]
        high = [(r["throughput_compute_ci_high"] if r["throughput_compute_ci_high"] is not None else y_) - y_
                for r, y_ in zip(pts, y, strict=True)]
        line = ax.errorbar(x, y, yerr=[low, high], marker="o", capsize=3, label=m)
        hollow = [(r["batch_size"], r["throughput_compute_ips"]) for r in pts if r["contended"]]
        if hollow:
            ax.scatter(*zip(*hollow, strict=True), s=80, facecolors="white", edgecolors=line[0].get_color(), zorder=3)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("images / s (compute)")
    ax.set_title("Throughput vs batch size (median of rounds, 95 % interval; hollow = contended)")
    ax.grid(True, alpha=0.3)
    if rows:
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def matching_models(params: Params, pattern: str) -> list[str]:
    """The models of params.yaml whose id matches the glob `pattern` (`make bench MODEL=...`); none is an error."""
    models = [m for m in params.models if fnmatch.fnmatchcase(m, pattern)]
    if not models:
        raise ValueError(f"no model in params.yaml matches {pattern!r} (have: {', '.join(params.models)})")
    return models


def bench_table(params: Params, root: Path, sizes: list[int], pattern: str) -> str:
    """This workspace's numbers at the given batch sizes next to the published 310P and T4 figures."""
    from tabulate import tabulate

    rows = []
    for m, bs in [(m, bs) for m in matching_models(params, pattern) for bs in sizes]:
        metrics = read_json(root / paths.bench_metrics(m, bs))
        info = read_json(root / paths.bench_info(m, bs))
        published = zoo.get(m).published_throughput
        ours = metrics.get("throughput_compute_ips")
        lat = metrics.get("e2e_ms", {})
        row: list[Any] = [m, bs, failure(metrics, info) or with_interval(metrics), fmt(metrics.get(
            "throughput_compute_cv"), 3), with_interval(metrics, "e2e"), fmt(lat.get("p50")), fmt(lat.get("p99"))]
        for platform in ("310P", "T4"):
            pub = published.get(platform, {}).get(bs)
            row += [fmt(pub, 1), ratio(ours, pub)]
        rows.append(row)
    table = tabulate(rows, ["model", "bs", "compute img/s [interval ≥ 95 %]", "cv", "e2e img/s [interval]", "p50 ms",
                            "p99 ms", "310P img/s", "ours/310P", "T4 img/s", "ours/T4"], tablefmt="github",
                     disable_numparse=True)
    return table + ("\n\n" + CONTENDED_NOTE if any("†" in str(r[2]) for r in rows) else "")
