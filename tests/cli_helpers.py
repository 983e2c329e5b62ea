"""Run the installed `omzoo` command as a user does (in a test's folder or the fake pipeline's repository), check
that a failure is one line, prove inputs unchanged.

Also a tiny ONNX graph with a model's inputs and outputs (onnx.helper, no torch): predict and the ORT backend's
checks need a file of the right shape, not a real network.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: the venv's console script: what `make setup` installs and users run
OMZOO = Path(sys.executable).with_name("omzoo")


def omzoo(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None, ok: bool = False,
          max_file_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    """`omzoo ARGS` in `cwd` with `env` (default: this process's); `ok`: it must succeed. `max_file_bytes` caps the
    size of every file it writes (RLIMIT_FSIZE; no root needed): a write past it fails with EFBIG the way one on a
    full disk fails with ENOSPC (Python ignores SIGXFSZ)."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    r = subprocess.run([str(OMZOO), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                       preexec_fn=limit if max_file_bytes else None)
    assert not ok or r.returncode == 0, (f"omzoo {' '.join(map(str, args))} failed ({r.returncode}):\n"
                                         f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def error_line(r: subprocess.CompletedProcess[str], verb: str) -> str:
    """The one `omzoo VERB: error: ...` line of a failed run (anything else on stderr is progress output)."""
    assert r.returncode != 0, f"omzoo {verb} succeeded:\n{r.stdout}\n{r.stderr}"
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith(f"omzoo {verb}: error: ")]
    assert len(lines) == 1, r.stderr
    return lines[0]


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative name -> bytes): equal snapshots mean nothing was touched."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def tiny_onnx(path: Path, size: int = 32, classes: int = 10, weight: float = 0.5, batch: str | int = "N",
              input_name: str = "image", output_name: str = "class") -> Path:
    """uint8 [batch, 3, size, size] -> per-channel mean @ a constant [3, classes] matrix of `weight` (NaN: NaN
    logits). The defaults are ran92_cifar10's inputs and outputs."""
    nodes = [helper.make_node("Cast", [input_name], ["f"], to=TensorProto.FLOAT),
             helper.make_node("ReduceMean", ["f"], ["m"], axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["m", "w"], [output_name])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info(input_name, TensorProto.UINT8, [batch, 3, size, size])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, classes])],
        [numpy_helper.from_array(np.full((3, classes), weight, np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7  # what every onnxruntime since 1.8 reads
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
