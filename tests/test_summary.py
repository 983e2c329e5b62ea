"""reports/summary.md as omzoo.results.summary writes it from collected metrics and info files: provenance, the
random-weights warning, the accuracy against the published reference, published throughput columns only where
published, the best batch size, failures named."""

from __future__ import annotations

import re
from pathlib import Path

from rounds_helpers import bench_metrics

from omzoo.core.params import Params
from omzoo.results.summary import provenance_fields, summary_markdown

INFO = {"backend": "onnxruntime", "runtime": "onnxruntime", "runtime_version": "1.32.0", "toolkit_version": "1.32",
        "device": "test cpu", "precision": "fp32", "threads": "intra_op=2", "git_revision": "abc1234",
        "extra": {"driver_version": "570.1", "cann_version": "", "other": "x"}}


def _params() -> Params:
    return Params({"models": {"scnet50_v1d": {}, "ran92_cifar10": {}}, "batch_sizes": [1, 8], "backend": "onnxruntime",
                   "toolkit": {"version": "1.32"}, "report": {"platforms": ["310P", "310", "T4"]}}, Path("params.yaml"))


DATA = {
    "scnet50_v1d": {
        "eval": {"top1": 80.0, "top5": 95.0, "n_images": 64, "n_skipped": 2, "pass": 1, "random_weights": 0,
                 "fidelity_max_abs_diff": 1.5e-5, "fidelity_top1_agreement": 1.0, "fidelity_top5_overlap": 0.98},
        "eval_info": {"weights_source": "scnet50_v1d.pth", "checkpoint_sha256": "c0ffee" * 10,
                      "dataset": "imagenet/val", "dataset_manifest": "d1a7a5e7" * 8},
        "bench": {1: (bench_metrics(100.0), {**INFO, "batch_size": 1}), 8: (bench_metrics(800.0, contended=1),
                                                                    {**INFO, "batch_size": 8})}},
    "ran92_cifar10": {"eval": {}, "eval_info": {},
                      "bench": {1: ({"failed": 1}, {"error": "out of memory"}), 8: ({}, {})}},
}


def test_provenance_names_every_runtime_version_without_naming_a_backend() -> None:
    fields = provenance_fields(INFO)
    assert fields["runtime versions"] == "onnxruntime=1.32.0 driver=570.1"  # empty and non-version extras left out
    assert (fields["backend"], fields["device"], fields["measured at git"]) == ("onnxruntime", "test cpu", "abc1234")
    assert set(provenance_fields({}).values()) == {""}


def test_the_summary_shows_provenance_accuracy_and_throughput() -> None:
    text = summary_markdown(DATA, _params())
    assert text.startswith("# omzoo summary\n\nBackend **onnxruntime** on test cpu; toolkit 1.32;")
    assert "Random weights" not in text  # real weights: no warning
    provenance = text.split("## Provenance")[1].split("\n## ")[0]
    for fact in ("| toolkit branch pins ", "onnxruntime=1.32.0 driver=570.1", "[1, 8] in params; measured [1, 8]",
                 "scnet50_v1d.pth", "c0ffeec0ffeec0ff", "d1a7a5e7d1a7a5e7", "| ran92_cifar10 | –"):
        assert fact in provenance, fact
    scnet = text.split("(`scnet50_v1d`)")[1].split("\n## ")[0]
    assert "Accuracy on 64 images, 2 skipped:" in scnet
    assert re.search(r"\| top1 +\| +80 +\| 80\.34 +\| -0\.34 +\| pass +\| upstream 80\.47 +\|", scnet), scnet
    assert "max |Δlogit| 1.50e-05, top-1 agreement 1.00, top-5 overlap 0.98" in scnet
    assert "310P img/s" in scnet and "T4 img/s" not in scnet and "310 img/s" not in scnet  # only what is published
    assert re.search(r"\| 8 ★ +\| 800\.0 \[798\.0, 803\.0\] † +\| 0\.012 +\| 799\.0 † +\| 2\.00 +\| 2094 +\| 0\.38 +\|",
                     scnet), scnet
    ran = text.split("(`ran92_cifar10`)")[1]
    assert "No accuracy metrics (evaluate has not run)." in ran
    assert all(f"{p} img/s" in ran for p in ("310P", "310", "T4"))
    assert re.search(r"\| 1 +\| failed: out of memory +\|", ran) and re.search(r"\| 8 +\| not measured +\|", ran)
    assert "Note: Ascend's 95.34 %" in ran and "† contended" in text


def test_random_weights_are_said_plainly() -> None:
    data = {"scnet50_v1d": {**DATA["scnet50_v1d"], "eval": {**DATA["scnet50_v1d"]["eval"], "random_weights": 1}}}
    text = summary_markdown(data, Params({**_params().raw, "models": {"scnet50_v1d": {}}}, Path("params.yaml")))
    assert "> **Random weights: accuracy means nothing** for scnet50_v1d." in text
    assert "Random weights: accuracy means nothing.\n\nAccuracy on 64 images" in text
    assert re.search(r"\| top1 +\| +80 +\| 80\.34 +\| -0\.34 +\| +\| upstream", text)  # no pass/FAIL for random weights
