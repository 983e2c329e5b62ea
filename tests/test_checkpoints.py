"""Every published container loads strictly; every wrong file fails with one clear message."""

from __future__ import annotations

import datetime
import pickle
from pathlib import Path

import pytest
import torch

from omzoo.checkpoints import CheckpointError, load_strict, read_checkpoint, save_container


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, bias=False)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))


def _random_tiny(seed: int) -> Tiny:
    torch.manual_seed(seed)
    m = Tiny()
    with torch.no_grad():
        m.bn.running_mean.normal_()
        m.bn.running_var.uniform_(0.5, 2)
        m.bn.weight.uniform_(0.5, 1.5)
        m.bn.num_batches_tracked.fill_(7)
    return m.eval()


@pytest.mark.parametrize("container", ["state_dict", "timm", "spach", "legacy"])
def test_round_trip_each_container(tmp_path: Path, container: str) -> None:
    src = _random_tiny(0)
    path = tmp_path / f"ckpt-{container}.pth"
    save_container(src.state_dict(), path, container)
    dst = _random_tiny(1)
    loaded = load_strict(dst, path)
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(src(x), dst(x))
    assert loaded.container == {"timm": "dict['state_dict']", "spach": "dict['model']"}.get(container, "state_dict")


def test_spach_takes_model_not_ema(tmp_path: Path) -> None:
    src = _random_tiny(0)
    save_container(src.state_dict(), tmp_path / "s.pth", "spach")
    sd = read_checkpoint(tmp_path / "s.pth").state_dict
    assert torch.equal(sd["fc.weight"], src.fc.weight)


def test_legacy_file_is_cuda_tagged_non_zip_and_lacks_num_batches_tracked(tmp_path: Path) -> None:
    path = tmp_path / "model_92_sgd.pkl"
    save_container(_random_tiny(0).state_dict(), path, "legacy")
    with open(path, "rb") as f:
        assert f.read(2) != b"PK"  # not the zip format
    if not torch.cuda.is_available():  # the storages say cuda:0: loading without map_location must fail here
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=False)
    sd = read_checkpoint(path).state_dict
    assert not any(k.endswith("num_batches_tracked") for k in sd)
    load_strict(_random_tiny(1), path)  # the one tolerated omission


def test_module_prefix_is_stripped(tmp_path: Path) -> None:
    src = _random_tiny(0)
    torch.save({f"module.{k}": v for k, v in src.state_dict().items()}, tmp_path / "dp.pth")
    dst = _random_tiny(1)
    load_strict(dst, tmp_path / "dp.pth")
    assert torch.equal(dst.conv.weight, src.conv.weight)


def test_namespace_needs_no_unsafe_unpickling(tmp_path: Path) -> None:
    save_container(_random_tiny(0).state_dict(), tmp_path / "t.pth", "timm")
    assert read_checkpoint(tmp_path / "t.pth").weights_only


def test_fp16_tensors_are_cast_to_float32(tmp_path: Path) -> None:
    src = _random_tiny(0)
    torch.save({k: (v.half() if v.is_floating_point() else v) for k, v in src.state_dict().items()}, tmp_path / "h.pth")
    sd = read_checkpoint(tmp_path / "h.pth").state_dict
    assert sd["conv.weight"].dtype == torch.float32


def test_unsafe_object_falls_back_to_full_unpickler(tmp_path: Path) -> None:
    obj = {"state_dict": _random_tiny(0).state_dict(), "elapsed": datetime.timedelta(hours=1)}
    torch.save(obj, tmp_path / "u.pth")
    loaded = read_checkpoint(tmp_path / "u.pth")
    assert not loaded.weights_only and loaded.container == "dict['state_dict']"


def test_wrong_model_names_file_container_and_keys(tmp_path: Path) -> None:
    other = torch.nn.Sequential(torch.nn.Linear(3, 3))
    path = tmp_path / "other.pth"
    save_container(other.state_dict(), path, "timm")
    with pytest.raises(CheckpointError) as e:
        load_strict(_random_tiny(0), path)
    msg = str(e.value)
    assert str(path) in msg and "dict['state_dict']" in msg
    assert "missing 7: conv.weight (4, 3, 3, 3)" in msg and "unexpected 2: 0.weight (3, 3)" in msg


def test_shape_mismatch_is_reported(tmp_path: Path) -> None:
    sd = _random_tiny(0).state_dict()
    sd["fc.weight"] = torch.zeros(5, 4)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"fc.weight file \(5, 4\) vs model \(2, 4\)"):
        load_strict(_random_tiny(1), tmp_path / "bad.pth")


def test_unwrappable_dict_lists_top_level_keys(tmp_path: Path) -> None:
    torch.save({"epoch": 3, "state_dict_ema": _random_tiny(0).state_dict()}, tmp_path / "ema.pth")
    with pytest.raises(CheckpointError, match="top-level keys: epoch, state_dict_ema"):
        read_checkpoint(tmp_path / "ema.pth")


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", pickle.dumps([1, 2, 3])])
def test_garbage_files_fail_clearly(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=str(path)):
        read_checkpoint(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        read_checkpoint(tmp_path / "nope.pth")
