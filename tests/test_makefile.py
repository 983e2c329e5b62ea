"""Makefile targets that work on their own (no venv, no pipeline), run with the real `make`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
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


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_link_data_never_replaces_or_writes_into_the_users_data(tmp_path: Path, kind: str) -> None:
    """data/raw/<name> that is not a link (a folder or file of the user's) is refused, and nothing is linked (not
    even the other name); a link there (one link-data made before, even a dangling one) is replaced."""
    (tmp_path / "store").mkdir()
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    if kind == "folder":
        (raw / "imagenet").mkdir()
        (raw / "imagenet" / "NOTES.txt").write_text("notes\n")
    else:
        (raw / "imagenet").write_text("precious\n")
    before = sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*"))
    r = _make(tmp_path, "link-data", "IMAGENET=store", "CIFAR=store")
    assert r.returncode != 0
    assert r.stderr.splitlines()[0].startswith("link-data: data/raw/imagenet exists and is not a link")
    assert sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*")) == before
    assert not (raw / "cifar-10-batches-py").is_symlink()
    (raw / "cifar-10-batches-py").symlink_to(tmp_path / "gone")  # a link (a dangling one) is replaced
    assert _make(tmp_path, "link-data", "CIFAR=store").returncode == 0
    assert (raw / "cifar-10-batches-py").resolve() == tmp_path / "store"


def test_setup_installs_again_when_the_venv_differs_from_constraints(tmp_path: Path) -> None:
    """`make setup` compares this venv with constraints.txt (dry run, `make -n`: nothing is installed or removed):
    in step, nothing to do; one pin moved (a branch's other onnxruntime) or a package changed by hand, the stamp
    goes and the pins are installed again. torch's local label (+cpu) is no difference."""
    venv = Path(sys.executable).parents[1]
    if not (venv / "bin" / "uv").is_file():
        pytest.skip("needs the project venv (`make setup`)")
    root = MAKEFILE.parent
    shutil.copy(root / "pyproject.toml", tmp_path)
    pins = (root / "constraints.txt").read_text()
    (tmp_path / "constraints.txt").write_text(pins)
    in_step = _make(tmp_path, "-n", f"VENV={venv}", "setup")
    assert in_step.returncode == 0 and "differs from constraints.txt" not in in_step.stdout, in_step.stdout
    installed = re.search(r"^onnxruntime==(\S+)$", pins, re.M).group(1)
    (tmp_path / "constraints.txt").write_text(re.sub(r"(?m)^onnxruntime==\S+$", "onnxruntime==1.0.0", pins))
    drifted = _make(tmp_path, "-n", f"VENV={venv}", "setup")
    assert f"differs from constraints.txt (onnxruntime {installed} (pinned 1.0.0))" in drifted.stdout
    assert "-c constraints.txt -e '.[dev]'" in drifted.stdout  # the stamp is out of date: the pins go in again
    assert (venv / ".installed").exists()  # a dry run
