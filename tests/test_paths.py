"""One layout: every path dvc.yaml spells is the one omzoo.core.paths builds (checked on DVC's own rendering)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dvc.dependency.param import ParamsDependency
from dvc.repo import Repo

from omzoo.core import paths
from omzoo.core.params import load_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stages() -> dict[str, object]:
    with Repo(str(ROOT)) as repo:
        return {s.addressing: s for s in repo.index.stages}


def _outs(stage) -> set[str]:
    return {str(o.def_path) for o in stage.outs}


def _deps(stage) -> set[str]:
    return {str(d.def_path) for d in stage.deps if not isinstance(d, ParamsDependency)}


def test_key_round_trips_and_rejects_what_is_not_a_key() -> None:
    assert paths.key("tresnet_m", 8) == "tresnet_m-8-fp32"
    assert paths.key("tresnet_m", 8, "int8") == "tresnet_m-8-int8"
    assert paths.parse_key("metrics/bench/tresnet_m-8-int8.json") == ("tresnet_m", 8, "int8")
    assert paths.parse_key("metrics/bench/tresnet_m-8.json") == ("tresnet_m", 8, "fp32")  # before precisions
    assert paths.parse_key("tresnet_m") is None and paths.parse_key("tresnet_m-0") is None
    assert paths.parse_key("tresnet_m-8-int8-x") is None
    with pytest.raises(ValueError, match="must not contain '-'"):
        paths.key("res-net", 1)


def test_dvc_yaml_paths_are_the_paths_module(stages) -> None:
    params = load_params(ROOT / "params.yaml")
    for m, entry in params.models.items():
        assert _outs(stages[f"weights@{m}"]) == {str(paths.checkpoint(m)), str(paths.weights_info(m))}
        assert _outs(stages[f"export@{m}"]) == {str(paths.onnx(m)), str(paths.onnx(m).with_suffix(".json"))}
        assert _outs(stages[f"simplify@{m}"]) == {str(paths.simplified(m)),
                                                  str(paths.simplified(m).with_suffix(".json"))}
        assert _outs(stages[f"infer@{m}"]) == {str(paths.infer(m))}
        assert {str(paths.compiled_root(m)), str(paths.shards(entry["pixels"]))} <= _deps(stages[f"infer@{m}"])
        assert _outs(stages[f"evaluate@{m}"]) == {str(paths.eval_dir(m)), str(paths.eval_info_dir(m))}
        assert _outs(stages[f"calibrate@{m}"]) == {str(paths.calibration(m))}
        for bs in params.batch_sizes:
            for precision in params.precisions:
                point = paths.key(m, bs, precision)
                compile_stage = stages[f"compile@{point}"]
                assert _outs(compile_stage) == {str(paths.compiled(m, bs, precision))}
                assert {str(paths.checkpoint(m)), str(paths.calibration(m))} <= _deps(compile_stage)
                assert _outs(stages[f"bench@{point}"]) >= {str(paths.bench_metrics(m, bs, precision)),
                                                           str(paths.bench_info(m, bs, precision))}
    for pixels in params.section("datasets"):
        assert _outs(stages[f"preprocess@{pixels}"]) == {str(paths.shards(pixels))}


def test_model_options_re_run_compile(stages) -> None:
    """A change of models.<id>.options (RAN-92's nearest_resize) must re-run compile, not only export."""
    for name, stage in stages.items():
        if name.startswith("compile@"):
            model, _, _ = paths.parse_key(name.removeprefix("compile@"))
            keys = [k for d in stage.deps if isinstance(d, ParamsDependency) for k in d.params]
            assert f"models.{model}" in keys, name


def test_labels_file_is_a_preprocess_dependency(stages) -> None:
    params = load_params(ROOT / "params.yaml")
    for pixels, entry in params.section("datasets").items():
        assert {entry["data"], entry["labels"]} <= _deps(stages[f"preprocess@{pixels}"])


def test_older_fp32_layout_is_known() -> None:
    """Readers of another revision fall back to where a revision from before precisions kept its fp32 files."""
    assert paths.legacy(paths.eval_metrics("m")) == "metrics/eval/m.json"
    assert paths.legacy(paths.eval_info("m")) == "metrics/info/eval/m.json"
    assert paths.legacy(paths.bench_rounds("m", 8)) == "metrics/rounds/m-8.json"
    assert paths.legacy(paths.predictions("m")) == "models/infer/m/predictions.json"
    assert paths.legacy(paths.compiled("m", 8)) == "models/compiled/m-8"
    assert paths.legacy(paths.eval_metrics("m", "int8")) is None
    assert paths.legacy(paths.bench_info("m", 8, "int8")) is None
    assert paths.metrics_kind("metrics/eval/m/int8.json") == "eval"
    assert paths.eval_point("metrics/eval/m/int8.json") == ("m", "int8")
    assert paths.eval_point("metrics/eval/m.json") == ("m", "fp32")
