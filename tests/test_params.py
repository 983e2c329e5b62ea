"""params.yaml is validated on load: one message naming the key, for each mistake a user makes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from omzoo import cli
from omzoo.core.params import ParamsError, load_params

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, edit) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_the_repository_params_are_valid() -> None:
    p = load_params(ROOT / "params.yaml")
    assert set(p.models) == {"scnet50_v1d", "seresnext101_32x4d", "tresnet_m", "smlpnet_tiny", "ran92_cifar10"}
    assert p.spec("ran92_cifar10").options == {"nearest_resize": False}


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: p["models"].update(resnet50={"checkpoint": "", "shards": "bilinear224"}),
     "models.resnet50: unknown model 'resnet50'"),
    (lambda p: p["models"]["tresnet_m"].pop("shards"), "models.tresnet_m has no `shards:`"),
    (lambda p: p["models"]["tresnet_m"].update(shards="bicubic224"), "tresnet_m reads 'bilinear224' pixels"),
    (lambda p: p["models"]["tresnet_m"].update(shards="nope"), "models.tresnet_m.shards is 'nope'"),
    (lambda p: p["models"]["ran92_cifar10"].update(options={"nearest_resise": True}),
     "unknown model option\\(s\\) \\['nearest_resise'\\]"),
    (lambda p: p.update(batch_sizes=[1, 0]), "batch_sizes must be positive integers; bad: \\[0\\]"),
    (lambda p: p.update(batch_sizes=[1, "8"]), "bad: \\['8'\\]"),
    (lambda p: p["infer"].update(batch_size=4), "infer.batch_size 4 must be one of batch_sizes \\[1, 8\\]"),
    (lambda p: p["toolkit"].update(version=1.3), "toolkit.version is the number 1.3.*quote it"),
    (lambda p: p["shards"]["cifar32"].update(labels=""), "shards.cifar32.labels is empty"),
])
def test_mistakes_fail_by_key(tmp_path: Path, edit, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        load_params(_write(tmp_path, edit))


def test_sections_are_typed(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class Section:
        min_iters: int = 1
        min_s: float = 1.0
        skip: bool = False

    p = load_params(_write(tmp_path, lambda p: p.update(sec={"min_iters": "5"})))
    with pytest.raises(ParamsError, match="sec.min_iters: expected int, got '5'"):
        p.typed(Section, "sec")
    p = load_params(_write(tmp_path, lambda p: p.update(sec={"min_iter": 5})))
    with pytest.raises(ParamsError, match="sec: unknown key\\(s\\) \\['min_iter'\\]"):
        p.typed(Section, "sec")
    p = load_params(_write(tmp_path, lambda p: p.update(sec={"min_s": 2, "skip": True})))
    assert p.typed(Section, "sec") == Section(1, 2, True)


def test_a_stage_reports_bad_params_in_one_line(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, lambda p: p["models"].update(resnet50={"shards": "bilinear224"}))
    assert cli.main(["report", "--params", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("omzoo report: error:") and "unknown model 'resnet50'" in err and "\n" not in err
