"""reports/summary.md: the tables porting guides assemble by hand, built from the collected metrics files.

Per model an accuracy table (ours, published, delta, pass) and a throughput table by batch size with the
published 310P columns (and 310/T4 where the guides publish them), our ratio to each, and the best batch size
marked, then the precision frontier (omzoo.results.frontier: per precision x batch size the speed-up over fp32 and
the agreement with it); above them the provenance the info files carry (backend, runtime versions, device,
precision, git revision; weights and dataset manifest per model) and a plain warning when weights are random.
Backend specifics come only from the info files' fixed describe() keys, so a new backend needs nothing here.
"""

from __future__ import annotations

from typing import Any

from omzoo.core import zoo
from omzoo.core.metrics import fmt
from omzoo.core.params import Params, ReportConfig
from omzoo.core.provenance import git_revision
from omzoo.results.cells import CONTENDED_NOTE, failure, ratio, with_interval
from omzoo.results.frontier import frontier_markdown


def accuracy_table(model_id: str, ev: dict[str, Any]) -> list[list[str]]:
    """top-1 and top-5: ours, the published reference, the delta, pass/FAIL, and the other published figures."""
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
    """Per batch size ours (★ the best), cv, e2e and p99, then each platform's published figure and our ratio."""
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
    """Where the numbers come from summarised from metrics/info: the environment of the
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
    """reports/summary.md from what omzoo.results.collect.collect read."""
    from tabulate import tabulate

    # str(): YAML reads the bare 310 in `platforms: [310P, 310, T4]` as an int, the registry keys are strings
    platforms = [str(p) for p in params.typed(ReportConfig, "report").platforms]
    infos = [i for d in data.values() for _, i in d["bench"].values() if i]
    env = infos[0] if infos else {}
    lines = ["# omzoo summary", ""]
    backend = env.get("backend") or params.backend[0]  # the one that measured, as its info file says
    lines.append(f"Backend **{backend}** on {env.get('device', 'unknown device')}; "
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
                lines += ["", f"Fidelity vs ONNX Runtime fp32 (first images of the set): max |Δlogit| "
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
        lines += frontier_markdown(m, d)
        if spec.notes:
            lines += ["", f"Note: {spec.notes}"]
    return "\n".join(lines) + "\n"
