"""Every published container loads strictly and safely; every wrong or unsafe file fails with one clear message."""

from __future__ import annotations

import datetime
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from omzoo import cli
from omzoo.core import zoo
from omzoo.core.checkpoints import SAFE_GLOBALS, CheckpointError, load_strict, read_checkpoint, save_container
from omzoo.core.io import sha256_file

OMZOO = Path(sys.executable).parent / "omzoo"  # the installed command, as a user runs it
MODEL = "ran92_cifar10"


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


@pytest.mark.parametrize("container", ["state_dict", "timm", "spach", "legacy"])
def test_each_container_loads_with_the_safe_unpickler_alone(tmp_path: Path, container: str) -> None:
    path = tmp_path / "c.pth"
    save_container(_random_tiny(0).state_dict(), path, container)
    assert read_checkpoint(path).weights_only  # no trust given: a refusal would raise
    if container != "legacy":  # torch lists the globals outside its own safe set (zip files only)
        needed = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        assert needed == ({"argparse.Namespace"} if container in ("timm", "spach") else set())


def test_safe_globals_are_exactly_what_the_containers_need() -> None:
    assert [f"{g.__module__}.{g.__qualname__}" for g in SAFE_GLOBALS] == ["argparse.Namespace"]


@pytest.mark.parametrize("container", ["state_dict", "timm", "spach", "legacy"])
def test_save_container_is_byte_reproducible(tmp_path: Path, container: str) -> None:
    a, b = tmp_path / "a.pth", tmp_path / "elsewhere" / "other-name.pth.tar"
    save_container(_random_tiny(0).state_dict(), a, container)
    save_container(_random_tiny(0).state_dict(), b, container)  # equal values in fresh tensors
    assert sha256_file(a) == sha256_file(b)


@pytest.mark.parametrize("model_id", [pytest.param("tresnet_m", marks=pytest.mark.slow), MODEL])  # zip, legacy
def test_random_weights_are_byte_reproducible_across_runs(tmp_path: Path, model_id: str) -> None:
    outs = [tmp_path / "a" / "x.pth", tmp_path / "b" / "y.pth"]
    (tmp_path / "params.yaml").write_text("weights: {seed: 3}\n")  # read from the working directory
    for out in outs:
        subprocess.run([str(OMZOO), "weights", model_id, "--out", str(out)], check=True, capture_output=True,
                       cwd=tmp_path)
    assert sha256_file(outs[0]) == sha256_file(outs[1])
    assert json.loads(outs[0].with_suffix(".json").read_text())["sha256"] == sha256_file(outs[0])


def test_fp16_tensors_are_cast_to_float32(tmp_path: Path) -> None:
    src = _random_tiny(0)
    torch.save({k: (v.half() if v.is_floating_point() else v) for k, v in src.state_dict().items()}, tmp_path / "h.pth")
    sd = read_checkpoint(tmp_path / "h.pth").state_dict
    assert sd["conv.weight"].dtype == torch.float32


def test_unsafe_global_is_refused_unless_trusted(tmp_path: Path) -> None:
    path = tmp_path / "u.pth"
    torch.save({"state_dict": _random_tiny(0).state_dict(), "elapsed": datetime.timedelta(hours=1)}, path)
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: refused global datetime.timedelta") and "\n" not in msg
    assert "--trust-checkpoint" in msg and sha256_file(path) in msg
    loaded = read_checkpoint(path, trust=True)
    assert not loaded.weights_only and loaded.container == "dict['state_dict']"


class _Evil:
    """Unpickling this runs a shell command: the attack a downloaded checkpoint can carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("verb", ["weights", "export", "predict"])
def test_malicious_checkpoint_runs_nothing(tmp_path: Path, verb: str) -> None:
    marker, evil = tmp_path / "PWNED", tmp_path / "evil.pth"
    torch.save({"state_dict": zoo.get(MODEL).build().state_dict(), "x": _Evil(marker)}, evil)
    args = {"weights": ["--out", "w.pth"], "export": ["--out", "m.onnx"],
            "predict": ["--data", str(tmp_path / "photos"), "--out", "logits.npy"]}[verb]
    r = subprocess.run([str(OMZOO), verb, MODEL, "--checkpoint", str(evil), *args], capture_output=True,
                       text=True, cwd=tmp_path)
    assert not marker.exists()
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert lines[0].startswith(f"omzoo {verb}: error: {evil}: refused global {os.system.__module__}.system")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.pth"]  # nothing written


@pytest.fixture(scope="module")
def trusted_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A checkpoint that fits the model but names a global outside the safe set (a harmless one)."""
    sd = zoo.get(MODEL).build().state_dict()
    path = tmp_path_factory.mktemp("trusted") / "model_92_sgd.pkl"
    torch.save({"state_dict": sd, "elapsed": datetime.timedelta(hours=1)}, path)
    return path, sd


def test_weights_reads_a_trusted_file_and_resaves_its_tensors(
        trusted_file: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, sd = trusted_file
    base = ["weights", MODEL, "--checkpoint", str(src)]
    (tmp_path / "other.yaml").write_text(f"weights: {{trusted_checkpoints: ['{'0' * 64}']}}\n")
    (tmp_path / "params.yaml").write_text(f"weights: {{seed: 0, trusted_checkpoints: ['{sha256_file(src)}']}}\n")
    assert cli.main([*base, "--out", str(tmp_path / "no.pth"), "--params", str(tmp_path / "other.yaml")]) == 2
    assert "refused global datetime.timedelta" in capsys.readouterr().err
    assert not (tmp_path / "no.pth").exists()
    for name, opt_in in (("flag", ["--trust-checkpoint"]), ("params", ["--params", str(tmp_path / "params.yaml")])):
        out = tmp_path / f"{name}.pth"
        assert cli.main([*base, "--out", str(out), *opt_in]) == 0
        info = json.loads(out.with_suffix(".json").read_text())
        assert info["trusted_pickle"] == 1 and info["source_sha256"] == sha256_file(src)
        assert info["sha256"] == sha256_file(out) != sha256_file(src)
        loaded = read_checkpoint(out)  # later stages read the copy with the safe unpickler alone
        assert loaded.weights_only and loaded.container == "state_dict"
        assert loaded.state_dict.keys() == sd.keys() and all(torch.equal(loaded.state_dict[k], sd[k]) for k in sd)


def test_predict_reads_a_trusted_file_only_when_told(
        trusted_file: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path) -> None:
    from omzoo.stages.predict import predict

    src, _ = trusted_file
    data = tmp_path / "cifar-10-batches-py"
    data.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (4, 3072), dtype=np.uint8)
    (data / "test_batch").write_bytes(pickle.dumps({"data": pixels, "labels": [0, 1, 2, 3]}, protocol=2))
    with pytest.raises(CheckpointError, match="refused global datetime.timedelta"):
        predict(MODEL, data, None, checkpoint=src, batch_size=4, workers=1)
    got = predict(MODEL, data, None, checkpoint=src, batch_size=4, workers=1, trust_checkpoint=True)
    assert got.logits.shape == (4, 10) and np.isfinite(got.logits).all() and list(got.labels) == [0, 1, 2, 3]


def test_non_finite_weights_fail_by_name(tmp_path: Path) -> None:
    sd = _random_tiny(0).state_dict()
    sd["fc.weight"][0, 0] = float("nan")
    sd["bn.running_var"][1] = float("inf")
    save_container(sd, tmp_path / "nan.pth", "state_dict")
    with pytest.raises(CheckpointError) as e:
        load_strict(_random_tiny(1), tmp_path / "nan.pth")
    assert str(e.value) == (f"{tmp_path / 'nan.pth'}: non-finite weights in 2 tensors: "
                            "bn.running_var (4,): 0 NaN, 1 inf, fc.weight (2, 4): 1 NaN, 0 inf")


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


def _state(tmp_path: Path) -> dict[str, torch.Tensor]:
    return dict(zoo.get(MODEL).build().state_dict())


@pytest.mark.parametrize("dtype", [torch.int64, torch.int8, torch.bool, torch.complex64])
def test_a_tensor_of_another_kind_is_never_cast_into_float_weights(tmp_path: Path, dtype: torch.dtype) -> None:
    sd = _state(tmp_path)
    key = next(k for k, v in sd.items() if v.is_floating_point() and v.ndim == 4)
    sd[key] = sd[key] > 0 if dtype == torch.bool else sd[key].to(dtype)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=f"{key} {dtype} \\(model torch.float32\\)"):
        load_strict(zoo.get(MODEL).build(), tmp_path / "bad.pth")


def test_module_prefixed_and_plain_keys_together_are_refused(tmp_path: Path) -> None:
    sd = _state(tmp_path)
    key = next(iter(sd))
    torch.save({**sd, f"module.{key}": sd[key]}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=f"holds both module.{key} and {key}"):
        read_checkpoint(tmp_path / "bad.pth")


def test_a_compressed_member_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    import zipfile

    torch.save(_state(tmp_path), tmp_path / "plain.pth")
    with zipfile.ZipFile(tmp_path / "plain.pth") as src, \
            zipfile.ZipFile(tmp_path / "bad.pth", "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    with pytest.raises(CheckpointError, match="is compressed .*nothing was inflated"):
        read_checkpoint(tmp_path / "bad.pth")


@pytest.mark.parametrize(("value", "message"), [
    (torch.empty(2, device="meta"), "is a meta tensor"), (torch.eye(2).to_sparse(), "is a torch.sparse_coo tensor"),
])
def test_tensors_without_dense_data_are_refused(tmp_path: Path, value: torch.Tensor, message: str) -> None:
    torch.save({**_state(tmp_path), "extra": value}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=f"extra {message}"):
        read_checkpoint(tmp_path / "bad.pth")


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_what_is_not_a_checkpoint_is_named(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "ck.pth"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")
    want = {"fifo": "is a FIFO", "folder": "is a folder", "device": "is a character device"}[kind]
    with pytest.raises(CheckpointError, match=want):
        read_checkpoint(path)


def _with_repeated_members(path: Path, out: Path, copies: int) -> None:
    """`path`'s archive with `copies` more central-directory entries naming its last member's bytes again: what a
    4 MB file needs to make torch read one 4 MB storage hundreds of times."""
    import struct
    import zipfile

    data = path.read_bytes()
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    start = min(i.header_offset for i in infos if i.header_offset >= 0)
    body = data[: data.index(b"PK\x01\x02", start)]
    last = max(infos, key=lambda i: i.header_offset)
    entries = [(i.filename, i) for i in infos] + [(f"archive/data/copy{k}", last) for k in range(copies)]
    central = b"".join(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, i.CRC, i.compress_size,
                                   i.file_size, len(name.encode()), 0, 0, 0, 0, 0, i.header_offset) + name.encode()
                       for name, i in entries)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(body), 0)
    out.write_bytes(body + central + end)


def test_members_sharing_bytes_are_refused_before_reading(tmp_path: Path) -> None:
    torch.save(_state(tmp_path), tmp_path / "plain.pth")
    _with_repeated_members(tmp_path / "plain.pth", tmp_path / "bad.pth", copies=3)
    with pytest.raises(CheckpointError, match="bad.pth: members .* share bytes of the archive"):
        read_checkpoint(tmp_path / "bad.pth")
    _with_repeated_members(tmp_path / "plain.pth", tmp_path / "same.pth", copies=0)  # rebuilt as it was: still reads
    assert set(read_checkpoint(tmp_path / "same.pth").state_dict) == set(_state(tmp_path))


@pytest.mark.parametrize("key", ["junk", None])
def test_a_view_with_more_elements_than_its_storage_is_refused(tmp_path: Path, key: str | None) -> None:
    """2 bytes standing for 400 million fp16 elements (or a weight of the model's own shape, expanded from one
    element): refused naming the key, never materialised by the float32 cast."""
    sd = _state(tmp_path)
    if key is None:
        key = next(k for k, v in sd.items() if v.is_floating_point() and v.ndim == 1 and len(v) > 1)
        sd[key] = torch.ones(1).expand(sd[key].shape)
    else:
        sd[key] = torch.zeros(1, dtype=torch.float16).expand(20000, 20000)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=f"bad.pth: {re.escape(key)} has .* elements over a storage of"):
        load_strict(zoo.get(MODEL).build(), tmp_path / "bad.pth")


def test_keys_and_shapes_are_checked_before_any_tensor_is_cast(tmp_path: Path, monkeypatch) -> None:
    sd = {k: v.half() if v.is_floating_point() else v for k, v in _state(tmp_path).items()}
    torch.save({**sd, "junk": torch.zeros(3, dtype=torch.float16)}, tmp_path / "bad.pth")
    cast = []
    monkeypatch.setattr(torch.Tensor, "float", lambda self: cast.append(self) or self.to(torch.float32))
    with pytest.raises(CheckpointError, match="unexpected 1: junk"):
        load_strict(zoo.get(MODEL).build(), tmp_path / "bad.pth")
    assert not cast
