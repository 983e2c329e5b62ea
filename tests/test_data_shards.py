"""uint8 shards: streamed files byte-identical to np.save, no partial shard on error, ShardSet's checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omzoo.core import zoo
from omzoo.core.io import sha256_file
from omzoo.data.preprocess import preprocess
from omzoo.data.shards import ShardSet, ShardWriter

CIFAR = zoo.get("ran92_cifar10").recipe


@pytest.mark.parametrize(("expected", "skips"), [(None, 0), (11, 0), (14, 3), (20, 9)])
def test_shard_writer_files_equal_np_save(tmp_path: Path, expected, skips):
    """Streamed shards are byte-identical to np.save of the same images, whatever ``expected`` guessed."""
    x = np.random.default_rng(0).integers(0, 256, (11, 3, 5, 4), dtype=np.uint8)
    with ShardWriter(tmp_path, (3, 5, 4), shard_size=4, expected=expected) as w:
        for k, img in enumerate(x):
            w.add(img)
            if k == 8:
                for _ in range(skips):
                    w.skip()
        records = w.finish()
    assert [r["count"] for r in records] == [4, 4, 3]
    for r, part in zip(records, (x[:4], x[4:8], x[8:]), strict=True):
        np.save(tmp_path / "ref.npy", part)
        assert (tmp_path / r["file"]).read_bytes() == (tmp_path / "ref.npy").read_bytes()
        assert sha256_file(tmp_path / r["file"]) == r["sha256"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.npy", *(r["file"] for r in records)]


def test_shard_writer_error_leaves_no_partial_shard(tmp_path: Path):
    with pytest.raises(RuntimeError), ShardWriter(tmp_path, (3, 2, 2), shard_size=4) as w:
        for _ in range(6):
            w.add(np.zeros((3, 2, 2), np.uint8))
        raise RuntimeError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-00000.npy"]


def test_shardset_errors(sample: Path, tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        ShardSet(tmp_path)
    out = tmp_path / "out"
    preprocess(CIFAR, sample / "cifar-10-batches-py", None, out, shard_size=30, progress=False)
    (out / "shard-00001.npy").rename(tmp_path / "moved.npy")
    with pytest.raises(FileNotFoundError, match="shard-00001.npy"):
        ShardSet(out)
    np.save(out / "shard-00001.npy", np.zeros((29, 3, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="shard-00001.npy"):
        ShardSet(out)
    np.save(out / "shard-00001.npy", np.zeros((30, 3, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="sha256"):
        ShardSet(out).verify()
