"""benchmarks/bench_precision.py (`make bench-precision`) on a tiny graph in the shape of RAN-92's export, placed where
the benchmark caches its export: fp32 and int8 artefacts compiled through compile_artefact, a calibration folder as
the calibrate stage writes it, int8 paired against fp32 in worker processes, agreement on seeded random images, the
text and JSON results; every --variants setting compiles to the int8 it names."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from quant_helpers import tiny_convnet

from omzoo.backends.artefact import read_meta
from omzoo.core import zoo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_precision  # noqa: E402

MODEL = "ran92_cifar10"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    tiny_convnet(work / f"{MODEL}.onnx", zoo.get(MODEL))  # the benchmark's export cache: no torch export here
    return work


def test_a_smoke_run_pairs_int8_against_fp32_and_writes_every_number(work: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results"
    bench_precision.main(["--model", MODEL, "--bs", "1", "--pairs", "2", "--images", "8", "--min-s", "0.05",
                          "--dir", str(work), "--out", str(out), "--data", str(tmp_path / "no-shards")])
    text = (out / "precision-cpu.txt").read_text()
    assert "HEAD = int8, BASE = fp32, 2 pairs" in text and "seeded random uint8 images" in text
    assert "| ran92_cifar10 | 1    | default   | QDQ S8S8 per-channel" in text
    assert "max \\|Δlogit\\|" in text  # the pipe escaped: the markdown table keeps its columns
    (row,) = json.loads((out / "precision-cpu.json").read_text())["rows"]
    assert (row["model"], row["bs"], row["variant"], row["pairs"], row["agreement_images"]) == (MODEL, 1, "default",
                                                                                             2, 8)
    r = row["ratio"]["throughput_compute_ips"]
    assert r["low"] <= r["median"] <= r["high"] and r["median"] > 0
    assert len(row["pair_ratios"]) == 2 and {p["first"] for p in row["rounds"]} <= {"base", "head"}
    a = row["agreement"]
    assert 0 <= a["top1"] <= 100 and a["changed"] == len(a["changed_images"])
    assert row["precision_record"]["precision"] == "int8" and row["quantization"]["quant_format"] == "QDQ"
    assert "int8/fp32" in capsys.readouterr().out


def test_every_variant_compiles_to_the_int8_it_names(work: Path) -> None:
    pixels, source, _ = bench_precision.images(MODEL, 4, work / "no-shards")
    names = [f"random-{i}" for i in range(len(pixels))]
    for variant, options in bench_precision.VARIANTS.items():
        folder, _ = bench_precision.calibration_folder(work, MODEL, pixels, names, variant, options)
        record = read_meta(bench_precision.int8_artefact(work, MODEL, 1, folder, variant, source))["precision_record"]
        for key, value in options.items():
            assert record[key] == value, (variant, key)
