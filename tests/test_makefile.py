"""Makefile targets that work on their own (no venv, no pipeline), run with the real `make`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

MAKEFILE = Path(__file__).resolve().parents[1] / "Makefile"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def _make(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-s", "-f", str(MAKEFILE), *args], cwd=cwd, capture_output=True, text=True)


def test_link_data_refuses_a_path_that_does_not_exist(tmp_path: Path) -> None:
    """A typo used to leave a dangling data/raw/imagenet link without a word; now nothing is linked."""
    (tmp_path / "cifar").mkdir()
    r = _make(tmp_path, "link-data", "IMAGENET=/data/imagenett", f"CIFAR={tmp_path / 'cifar'}")
    assert r.returncode != 0
    assert r.stderr.splitlines()[0] == ("link-data: /data/imagenett is not a folder (nothing linked; a link to it "
                                        "would dangle)")
    assert not (tmp_path / "data").exists()
    assert _make(tmp_path, "link-data").returncode != 0  # nothing to link: the usage, not an empty data/raw


def test_link_data_links_real_folders(tmp_path: Path) -> None:
    for name in ("imagenet", "cifar"):
        (tmp_path / "store" / name).mkdir(parents=True)
    r = _make(tmp_path, "link-data", "IMAGENET=store/imagenet", "CIFAR=store/cifar")
    assert r.returncode == 0, r.stderr
    raw = tmp_path / "data" / "raw"
    assert (raw / "imagenet").resolve() == tmp_path / "store" / "imagenet"
    assert (raw / "cifar-10-batches-py").resolve() == tmp_path / "store" / "cifar"
