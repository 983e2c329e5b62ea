"""Fault benchmark: every case of the reliability issues, run the way a user meets it, with what happened.

The first 33 cases are the first issue's (numbered by its items); the cases named `R<n>` are the second hostile pass's,
by its ten classes (shell injection, ownership, output = input, atomic results, folder discovery, labels and pixels,
checkpoints, params, hangs and memory, messages), at least eight per class.

Each case runs in its own temporary directory through the real commands (`omzoo`, `dvc`, `make`) and is judged
on what they did: the exit status, the one error line (naming the file or key, no traceback), and the files left
behind. A case that is not handled is reported as such; nothing is skipped.

    .venv/bin/python benchmarks/bench_faults.py        # = make bench-faults
    .venv/bin/python benchmarks/bench_faults.py "R4 "  # the cases whose name holds "R4 "

Offline, a few minutes on 2 cores: the models are ran92_cifar10 (32x32) and ONNX graphs built with onnx.helper.
Prints `case | expected | got` and `N/N handled`; exits 1 when a case is not handled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch
import yaml
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from tabulate import tabulate

from omzoo.core.checkpoints import read_checkpoint, save_container
from omzoo.core.model import random_checkpoint
from omzoo.core.zoo import get
from omzoo.data.sample import write_sample

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: omzoo, dvc (not resolved: that would leave the venv)
VENV = BIN.parent
MODEL = "ran92_cifar10"
Outcome = tuple[bool, str]


# --- running things ---------------------------------------------------------------------------------------------


def run(cmd: list[str | Path], cwd: Path, max_file_bytes: int | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """A command in `cwd` with the venv first on PATH. `max_file_bytes` caps every file it writes (RLIMIT_FSIZE,
    no root needed): writes past it fail as on a full disk (EFBIG; Python ignores SIGXFSZ). A command still running
    after `timeout` seconds is killed and reported as hung (exit status 124)."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1"}
    env.pop("OMZOO_TRACEBACK", None)
    argv = [str(c) for c in cmd]
    try:
        return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=limit if max_file_bytes else None)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(argv, 124, "", f"HUNG: still running after {timeout:.0f} s ({e.cmd})")


def omzoo(cwd: Path, *args: str | Path, max_file_bytes: int | None = None,
          timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return run([BIN / "omzoo", *args], cwd, max_file_bytes, timeout)


def make(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """This checkout's Makefile, run in `cwd`; this venv is taken as set up (`-o`: never reinstalled from `cwd`)."""
    return run(["make", "-s", "-f", ROOT / "Makefile", f"VENV={VENV}", "-o", f"{VENV}/.installed", *args], cwd)


def short(text: str, n: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def error_line(r: subprocess.CompletedProcess[str], verb: str) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith(f"omzoo {verb}: error: ")]
    return lines[0] if len(lines) == 1 else ""


def one_line(r: subprocess.CompletedProcess[str], verb: str, *names: str) -> Outcome:
    """Failed with one error line that names each of `names` (the file or key) and no traceback."""
    line = error_line(r, verb)
    ok = r.returncode != 0 and "Traceback" not in r.stderr and bool(line) and all(n in line for n in names)
    shown = line or (r.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1]
    return ok, f"exit {r.returncode}: {short(shown)}"


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def killed_inside(code: str, cwd: Path) -> int:
    """Run Python `code` that prints a line once it is mid-write, SIGKILL it there, and return its pid."""
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=cwd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.kill()
    proc.wait()
    proc.stdout.close()
    return proc.pid


# --- inputs -----------------------------------------------------------------------------------------------------


def tiny_onnx(path: Path, size: int = 32, classes: int = 10, weight: float = 0.5, model: str = MODEL) -> Path:
    """`model`'s inputs and outputs (ran92_cifar10's: uint8 image [N,3,size,size] -> class [N,classes]) around a
    channel mean and a constant matrix of `weight`: NaN gives NaN logits."""
    spec = get(model)
    graph = helper.make_graph(
        [helper.make_node("Cast", [spec.input_name], ["f"], to=TensorProto.FLOAT),
         helper.make_node("ReduceMean", ["f"], ["m"], axes=[2, 3], keepdims=0),
         helper.make_node("MatMul", ["m", "w"], [spec.output_name])], "tiny",
        [helper.make_tensor_value_info(spec.input_name, TensorProto.UINT8, ["N", 3, size, size])],
        [helper.make_tensor_value_info(spec.output_name, TensorProto.FLOAT, ["N", classes])],
        [numpy_helper.from_array(np.full((3, classes), weight, np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.save(model, str(path))
    return path


def photos(folder: Path, formats: dict[str, str]) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, fmt in formats.items():
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / name, format=fmt)
    return folder


SIX = {"a.png": "PNG", "b.jpg": "JPEG", "c.gif": "GIF", "d.jfif": "JPEG", "e.bmp": "BMP", "f.webp": "WEBP"}


def params(cwd: Path, edit: Callable[[dict], None] | None = None, text: str | None = None) -> Path:
    """This checkout's params.yaml, edited, in `cwd`."""
    path = cwd / "params.yaml"
    if text is None:
        raw = yaml.safe_load((ROOT / "params.yaml").read_text())
        if edit:
            edit(raw)
        text = yaml.safe_dump(raw, sort_keys=False)
    path.write_text(text)
    return path


class Shared:
    """Inputs several cases read (never write): sample data, a random RAN-92 checkpoint, a compiled tiny model."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sample = root / "sample"
        write_sample(self.sample)
        self.weights = root / "ran92.pth"
        random_checkpoint(get(MODEL), self.weights, seed=0)
        self.tiny = tiny_onnx(root / "tiny.onnx")

    def compile_tiny(self, cwd: Path, out: str = "c1", bs: int = 1) -> subprocess.CompletedProcess[str]:
        return omzoo(cwd, "compile", MODEL, "--bs", str(bs), "--onnx", self.tiny, "--out", out,
                     "--params", ROOT / "params.yaml")


# --- the cases, by the issue's items ----------------------------------------------------------------------------


class Evil:
    """Unpickling this runs `touch <marker>`: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


def c1_malicious(tmp: Path, s: Shared) -> Outcome:
    marker = tmp / "pwned"
    torch.save({"state_dict": read_checkpoint(s.weights).state_dict, "hook": Evil(marker)}, tmp / "evil.pth")
    ok, got = one_line(omzoo(tmp, "weights", MODEL, "--checkpoint", "evil.pth", "--out", "w.pth"), "weights",
                       "evil.pth", "posix.system")
    ran = marker.exists()
    ok = ok and not ran and not (tmp / "w.pth").exists()
    return ok, f"{got}; marker {'CREATED (code ran)' if ran else 'absent'}"


def c2_out(where: str) -> Callable[[Path, Shared], Outcome]:
    def case(tmp: Path, s: Shared) -> Outcome:
        user = tmp / "imagenet"
        shutil.copytree(s.sample / "imagenet", user)
        (user / "notes.txt").write_text("unrelated\n")
        before = tree(tmp)
        out, cwd = {"data folder": ("imagenet/val", tmp), "its parent": ("imagenet", tmp),
                    "working directory": (".", user)}[where]
        data, labels = ("val", "val_label.txt") if cwd == user else ("imagenet/val", "imagenet/val_label.txt")
        r = omzoo(cwd, "preprocess", "--pixels", "bilinear224", "--data", data, "--labels", labels, "--out", out,
                  "--quiet", "--params", ROOT / "params.yaml")
        ok, got = one_line(r, "preprocess", out)
        intact = tree(tmp) == before
        return ok and intact, f"{got}; inputs {'intact' if intact else 'CHANGED OR DELETED'}"
    return case


def c2_sample_data(tmp: Path, s: Shared) -> Outcome:
    mine = tmp / "photos"
    photos(mine, {"holiday.jpg": "JPEG"})
    (mine / "list.txt").write_text("holiday.jpg\n")
    before = tree(tmp)
    ok, got = one_line(omzoo(tmp, "sample-data", "--out", "photos"), "sample-data", "photos")
    intact = tree(tmp) == before
    return ok and intact, f"{got}; folder {'intact' if intact else 'CHANGED OR DELETED'}"


def c2_rerun(tmp: Path, s: Shared) -> Outcome:
    shutil.copytree(s.sample / "cifar-10-batches-py", tmp / "cifar")
    codes = []
    for _ in range(2):
        codes.append(omzoo(tmp, "preprocess", "--pixels", "cifar32", "--data", "cifar", "--out", "shards",
                           "--quiet", "--params", ROOT / "params.yaml").returncode)
    codes.append(omzoo(tmp, "sample-data", "--out", "sample").returncode)
    codes.append(omzoo(tmp, "sample-data", "--out", "sample").returncode)
    ok = codes == [0, 0, 0, 0] and (tmp / "shards" / "manifest.json").is_file()
    return ok, f"exit codes {codes} (preprocess twice, sample-data twice)"


def c3_labels(tmp: Path, s: Shared) -> Outcome:
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp / name)
    shutil.copytree(ROOT / "src", tmp / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    run([BIN / "dvc", "init", "-q", "--no-scm"], tmp)
    stage = "preprocess@bilinear224"
    r = run([BIN / "dvc", "repro", "-q", stage], tmp)
    if r.returncode != 0:
        return False, f"dvc repro {stage} failed: {short(r.stderr)}"
    clean = json.loads(run([BIN / "dvc", "status", "--json", stage], tmp).stdout or "{}")
    labels = tmp / "data/sample/imagenet/val_label.txt"
    lines = labels.read_text().splitlines()
    name, label = lines[0].split()
    lines[0] = f"{name} {(int(label) + 1) % 1000}"
    labels.write_text("\n".join(lines) + "\n")
    after = json.loads(run([BIN / "dvc", "status", "--json", stage], tmp).stdout or "{}")
    changed = [d for entry in after.get(stage, []) if isinstance(entry, dict)
               for d in entry.get("changed deps", {})]
    ok = not clean.get(stage) and "data/sample/imagenet/val_label.txt" in changed
    return ok, f"dvc status {stage}: before the edit {clean.get(stage) or 'up to date'}; after: changed deps {changed}"


def c4_failed_bench(tmp: Path, s: Shared) -> Outcome:
    from omzoo.core import paths

    key = paths.key(MODEL, 1, paths.REFERENCE)
    r = s.compile_tiny(tmp, f"models/compiled/{MODEL}/{key}")
    if r.returncode != 0:
        return False, f"compile failed: {short(r.stderr)}"
    if omzoo(tmp, "toolkit", "--out", "metrics/toolkit.json", "--params", ROOT / "params.yaml").returncode:
        return False, "toolkit failed"
    params(tmp, lambda p: p["bench"].update(min_iters="5"))
    for path in (f"metrics/bench/{key}.json", f"metrics/info/bench/{key}.json"):
        (tmp / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp / path).write_text('{"previous": "run"}\n')
    before = tree(tmp / "metrics")
    cmd = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["bench"]["cmd"]
    cmd = cmd.replace("${key}", key).replace("${item.model}", MODEL)
    r = run(["bash", "-c", cmd], tmp)
    kept = tree(tmp / "metrics") == before
    ok, got = one_line(r, "bench", "min_iters")
    return ok and kept, f"{got}; previous metrics {'untouched' if kept else 'CHANGED OR DELETED'}"


def installed_ort() -> str:
    import onnxruntime

    return onnxruntime.__version__


def c5_pin_prefix(tmp: Path, s: Shared) -> Outcome:
    installed = installed_ort()
    major, minor = installed.split(".")[:2]
    pin = f"{major}.{minor[:-1]}" if len(minor) > 1 else f"{major}.{minor}0"  # a string prefix, not a component
    params(tmp, lambda p: p["toolkit"].update(version=pin))
    r = omzoo(tmp, "compile", MODEL, "--bs", "1", "--onnx", s.tiny, "--out", "c1", "--params", "params.yaml")
    ok, got = one_line(r, "compile", f"'{pin}'", installed)
    return ok and not (tmp / "c1").exists(), f"pin {pin!r} vs onnxruntime {installed}: {got}"


def c5_float(tmp: Path, s: Shared) -> Outcome:
    text = (ROOT / "params.yaml").read_text()
    params(tmp, text=re.sub(r'(?m)^(\s+version:) ""', r"\1 1.30", text, count=1))
    r = omzoo(tmp, "compile", MODEL, "--bs", "1", "--onnx", s.tiny, "--out", "c1", "--params", "params.yaml")
    return one_line(r, "compile", "toolkit.version", "quote")


def c6_random_bytes(tmp: Path, s: Shared) -> Outcome:
    codes = [omzoo(tmp, "weights", MODEL, "--out", out, "--params", ROOT / "params.yaml").returncode
             for out in ("a/first.pth", "b/second.pth")]
    if codes != [0, 0]:
        return False, f"weights exit codes {codes}"
    a, b = sha256(tmp / "a/first.pth"), sha256(tmp / "b/second.pth")
    return a == b, f"two runs, two names: sha256 {a[:12]}… {'==' if a == b else '!='} {b[:12]}…"


def c7_nan_weights(tmp: Path, s: Shared) -> Outcome:
    sd = read_checkpoint(s.weights).state_dict
    key = next(k for k, v in sd.items() if v.is_floating_point() and v.ndim == 4)
    sd[key] = sd[key].clone()
    sd[key].view(-1)[:3] = torch.tensor([float("nan"), float("inf"), float("nan")])
    save_container(sd, tmp / "nan.pth", "state_dict")
    ok, got = one_line(omzoo(tmp, "weights", MODEL, "--checkpoint", "nan.pth", "--out", "w.pth"), "weights",
                       "nan.pth", key)
    return ok and not (tmp / "w.pth").exists(), got


def c7_nan_predict(tmp: Path, s: Shared) -> Outcome:
    tiny_onnx(tmp / "nan.onnx", weight=float("nan"))
    photos(tmp / "photos", SIX)
    r = omzoo(tmp, "predict", MODEL, "--onnx", "nan.onnx", "--data", "photos", "--out", "logits.npy")
    ok, got = one_line(r, "predict", "nan.onnx", "non-finite")
    return ok and not (tmp / "logits.npy").exists(), got


def c7_nan_simplify(tmp: Path, s: Shared) -> Outcome:
    tiny_onnx(tmp / "nan.onnx", weight=float("nan"))
    ok, got = one_line(omzoo(tmp, "simplify", "nan.onnx", "--out", "nan.sim.onnx"), "simplify", "nan.onnx")
    return ok and not (tmp / "nan.sim.onnx").exists(), got


def c8_gif_jfif(tmp: Path, s: Shared) -> Outcome:
    photos(tmp / "photos", SIX)
    r = omzoo(tmp, "predict", MODEL, "--onnx", s.tiny, "--data", "photos", "--out", "logits.npy")
    rows = np.load(tmp / "logits.npy").shape[0] if r.returncode == 0 else None
    return rows == 6, f"exit {r.returncode}: {len(SIX)} files in ({', '.join(SIX)}), {rows} rows out"


def c8_other_model(tmp: Path, s: Shared) -> Outcome:
    photos(tmp / "photos", SIX)
    r = omzoo(tmp, "predict", "scnet50_v1d", "--onnx", s.tiny, "--data", "photos", "--out", "logits.npy")
    ok, got = one_line(r, "predict", str(s.tiny), "scnet50_v1d")
    return ok and not (tmp / "logits.npy").exists(), got.replace(str(s.root) + "/", "")


def c8_skip_bad(tmp: Path, s: Shared) -> Outcome:
    photos(tmp / "photos", SIX)
    (tmp / "photos" / "g.png").write_bytes(b"truncated download")
    (tmp / "photos" / "notes.txt").write_text("not an image\n")
    r = omzoo(tmp, "predict", MODEL, "--onnx", s.tiny, "--data", "photos", "--out", "logits.npy", "--skip-bad")
    rows = np.load(tmp / "logits.npy").shape[0] if r.returncode == 0 else 0
    listed = [f for f in ("g.png", "notes.txt") if f"skipped {f}" in r.stderr]
    ok = r.returncode == 0 and rows == 6 and len(listed) == 2
    got = f"exit {r.returncode}: 8 files, {rows} rows, skipped listed: {listed}"
    return ok, got if r.returncode == 0 else f"{got}; {short(r.stderr.strip().splitlines()[-1])}"


def c9_text_checkpoint(tmp: Path, s: Shared) -> Outcome:
    (tmp / "model_best.pth.tar").write_text("<html>404 Not Found</html>\n")
    r = omzoo(tmp, "weights", MODEL, "--checkpoint", "model_best.pth.tar", "--out", "w.pth")
    return one_line(r, "weights", "model_best.pth.tar", "not a zip archive or a pickle")


def c9_unknown_model(tmp: Path, s: Shared) -> Outcome:
    params(tmp, lambda p: p["models"].update(resnet50={"checkpoint": "", "pixels": "bilinear224"}))
    r = omzoo(tmp, "weights", MODEL, "--out", "w.pth", "--params", "params.yaml")
    return one_line(r, "weights", "models.resnet50", "unknown model")


def c9_options_typo(tmp: Path, s: Shared) -> Outcome:
    params(tmp, lambda p: p["models"][MODEL].update(options={"nearest_resise": True}))
    r = omzoo(tmp, "compile", MODEL, "--bs", "1", "--onnx", s.tiny, "--out", "c1", "--params", "params.yaml")
    return one_line(r, "compile", f"models.{MODEL}.options", "nearest_resise")


def c9_invalid_protobuf(tmp: Path, s: Shared) -> Outcome:
    photos(tmp / "photos", SIX)
    (tmp / "model.onnx").write_text("not a protobuf\n")
    r = omzoo(tmp, "predict", MODEL, "--onnx", "model.onnx", "--data", "photos", "--out", "logits.npy")
    return one_line(r, "predict", "model.onnx", "cannot load")


def c9_input_size(tmp: Path, s: Shared) -> Outcome:
    photos(tmp / "photos", SIX)
    tiny_onnx(tmp / "64px.onnx", size=64)
    r = omzoo(tmp, "predict", MODEL, "--onnx", "64px.onnx", "--data", "photos", "--out", "logits.npy")
    return one_line(r, "predict", "64px.onnx", "[N, 3, 32, 32]")


def c9_disk_full(verb: str) -> Callable[[Path, Shared], Outcome]:
    def case(tmp: Path, s: Shared) -> Outcome:
        out = {"weights": "out/w.pth", "export": "out/m.onnx", "preprocess": "out/shards"}[verb]
        args = {"weights": ["weights", MODEL, "--out", out],
                "export": ["export", MODEL, "--checkpoint", s.weights, "--out", out],
                "preprocess": ["preprocess", "--pixels", "cifar32", "--data", s.sample / "cifar-10-batches-py",
                               "--out", out, "--quiet"]}[verb]
        r = omzoo(tmp, *args, "--params", ROOT / "params.yaml", max_file_bytes=64 << 10)
        ok, got = one_line(r, verb, out)
        left = sorted(p.name for p in (tmp / "out").iterdir()) if (tmp / "out").is_dir() else []
        return ok and not left, f"{got}; left in out/: {left or 'nothing'}"
    return case


def c10_write_temp(tmp: Path, s: Shared) -> Outcome:
    pid = killed_inside("from omzoo.core.io import atomic_write\nimport time\n"
                        "with atomic_write('w.pth') as t:\n    t.write_bytes(b'x' * 4096)\n    print(t, flush=True)\n"
                        "    time.sleep(600)\n", tmp)
    leftovers = [p.name for p in tmp.glob(f".w.pth.tmp-{pid}-*")]
    foreign = tmp / ".w.pth.tmp-notes.txt"  # looks alike, was not written by omzoo
    foreign.write_text("keep me\n")
    r = omzoo(tmp, "weights", MODEL, "--out", "w.pth", "--params", ROOT / "params.yaml")
    after = [p.name for p in tmp.glob(".w.pth.tmp-*")]
    ok = r.returncode == 0 and bool(leftovers) and after == [foreign.name]
    return ok, f"killed writer left {leftovers}; after the next `omzoo weights`: {after}"


def c10_compile_temp(tmp: Path, s: Shared) -> Outcome:
    if s.compile_tiny(tmp).returncode != 0:
        return False, "compile failed"
    before = tree(tmp / "c1")
    pid = killed_inside("from omzoo.core.io import atomic_dir\nimport time\n"
                        "with atomic_dir('c1', 'compiled') as t:\n    (t / 'model.onnx').write_bytes(b'x')\n"
                        "    print(t, flush=True)\n    time.sleep(600)\n", tmp)
    left = any(tmp.glob(f"c1.tmp-{pid}-*"))
    kept = tree(tmp / "c1") == before
    r = s.compile_tiny(tmp)
    after = sorted(p.name for p in tmp.iterdir())
    ok = left and kept and r.returncode == 0 and after == ["c1"]
    return ok, (f"killed compile: previous artefact {'intact' if kept else 'DAMAGED'}, c1.tmp-{pid} left: {left}; "
                f"after the next compile: {after}")


def c11_evaluate(tmp: Path, s: Shared) -> Outcome:
    steps = [s.compile_tiny(tmp, "c4", 4),
             omzoo(tmp, "preprocess", "--pixels", "cifar32", "--data", s.sample / "cifar-10-batches-py", "--out",
                   "shards", "--quiet", "--params", ROOT / "params.yaml"),
             omzoo(tmp, "infer", "--compiled", "c4", "--shards", "shards", "--out", "infer")]
    if any(r.returncode for r in steps):
        return False, f"setup failed: {short(next(r.stderr for r in steps if r.returncode))}"
    (tmp / "w.json").write_text(json.dumps({"weights": "random", "seed": 0}))
    r = omzoo(tmp, "evaluate", "scnet50_v1d", "--infer", "infer", "--shards", "shards", "--weights", "w.json",
              "--out", "m.json", "--info", "i.json")
    ok, got = one_line(r, "evaluate", "infer", MODEL)
    return ok and not (tmp / "m.json").exists(), got


def c11_bench_no_match(tmp: Path, s: Shared) -> Outcome:
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp / name)
    shutil.copytree(ROOT / "src", tmp / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    run([BIN / "dvc", "init", "-q", "--no-scm"], tmp)
    # no checkpoints/ folder here: were the whole pipeline to start, it stops at the first weights stage
    r = make(tmp, "bench", "BS=1", "MODEL=no_such_model")
    ran = re.findall(r"Running stage '([^']+)'", r.stdout + r.stderr)
    msg = [ln for ln in (r.stdout + r.stderr).splitlines() if "no_such_model" in ln and "dvc repro" not in ln]
    ok = r.returncode != 0 and not ran and bool(msg)
    said = short(msg[0], 80) if msg else "nothing about the model"
    return ok, f"exit {r.returncode}; stages run: {ran or 'none'}; said: {said}"


def c11_link_data(tmp: Path, s: Shared) -> Outcome:
    r = make(tmp, "link-data", "IMAGENET=/data/imagenett")
    dangling = (tmp / "data/raw/imagenet").is_symlink()
    line = next((ln for ln in r.stderr.splitlines() if "imagenett" in ln), "")
    (tmp / "real").mkdir()
    linked = make(tmp, "link-data", "CIFAR=real").returncode == 0 and (tmp / "data/raw/cifar-10-batches-py").is_dir()
    ok = r.returncode != 0 and not dangling and bool(line) and linked
    return ok, (f"exit {r.returncode}: {short(line, 80) or 'nothing said'}; dangling link: {dangling}; "
                f"a real folder linked: {linked}")


def c11_compare_one_revision(tmp: Path, s: Shared) -> Outcome:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    shutil.copy(ROOT / "Makefile", tmp / "Makefile")  # the Makefile as it is now
    git = ["git", "-c", "user.name=omzoo", "-c", "user.email=omzoo@invalid"]
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "main"]):
        run([*git, *cmd], tmp)
    r = make(tmp, "compare", "BASE=main")
    said = [ln for ln in (r.stdout + r.stderr).splitlines()
            if ln.strip() and not ln.startswith(("environment ready", "make: ***"))]
    return r.returncode == 0, f"exit {r.returncode}: {short(said[0] if said else 'nothing said', 90)}"


def c11_weights_key(tmp: Path, s: Shared) -> Outcome:
    params(tmp, lambda p: p["weights"].update(sede=1))
    r = omzoo(tmp, "weights", MODEL, "--out", "w.pth", "--params", "params.yaml")
    ok, got = one_line(r, "weights", "weights", "sede")
    return ok and not (tmp / "w.pth").exists(), got


def c11_protocol5(tmp: Path, s: Shared) -> Outcome:
    src = s.sample / "cifar-10-batches-py"
    (tmp / "cifar").mkdir()
    for name in ("test_batch", "batches.meta"):  # re-pickled by Python 3 with protocol 5, str keys
        batch = pickle.loads((src / name).read_bytes(), encoding="latin1")
        (tmp / "cifar" / name).write_bytes(pickle.dumps(batch, protocol=5))
    r = omzoo(tmp, "preprocess", "--pixels", "cifar32", "--data", "cifar", "--out", "shards", "--quiet",
              "--params", ROOT / "params.yaml")
    count = json.loads((tmp / "shards/manifest.json").read_text())["count"] if r.returncode == 0 else 0
    return r.returncode == 0 and count == 64, (f"exit {r.returncode}: {count} of 64 images"
                                               + ("" if r.returncode == 0 else f"; {short(r.stderr)}"))


def r2_lookalike_temps(verb: str) -> Callable[[Path, Shared], Outcome]:
    """A user's siblings named like a killed run's temps (out.old-2023, out.tmp-99999 for a folder output,
    .w.pth.tmp-99999-1.pth for a file output) survive the next run: omzoo removes only the temps it made."""
    def case(tmp: Path, s: Shared) -> Outcome:
        names = {"sample-data": ["out.old-2023", "out.tmp-99999", "out.tmp-99999-1-000000000000"],
                 "weights": [".w.pth.tmp-99999-1.pth", ".w.pth.tmp-99999-1-000000000000.pth"]}[verb]
        for n in names:
            if verb == "sample-data":
                (tmp / n).mkdir()
                (tmp / n / "thesis.tex").write_text("mine\n")
            else:
                (tmp / n).write_text("mine\n")
        args = ["sample-data", "--out", "out"] if verb == "sample-data" else \
            ["weights", MODEL, "--out", "w.pth", "--params", ROOT / "params.yaml"]
        r = omzoo(tmp, *args)
        kept = [n for n in names if (tmp / n).exists()]
        return r.returncode == 0 and kept == names, f"exit {r.returncode}; of {names} kept: {kept}"
    return case


def r2_evaluate_foreign(flag: str) -> Callable[[Path, Shared], Outcome]:
    """evaluate's --out / --info is a user's folder with a fp32.json of its own: refused, the folder as it was."""
    def case(tmp: Path, s: Shared) -> Outcome:
        if inferred(tmp, s).returncode:
            return False, "setup infer failed"
        (tmp / "w.json").write_text(json.dumps({"weights": "random", "seed": 0}))
        (tmp / "mine").mkdir()
        (tmp / "mine" / "fp32.json").write_text('{"my": "thesis results"}\n')
        (tmp / "mine" / "README").write_text("notes\n")
        before = tree(tmp / "mine")
        outs = {"--out": "mine", "--info": "info"} if flag == "--out" else {"--out": "eval", "--info": "mine"}
        r = omzoo(tmp, "evaluate", MODEL, "--infer", "infer", "--shards", "shards", "--weights", "w.json",
                  *[x for kv in outs.items() for x in kv])
        ok, got = one_line(r, "evaluate", "mine")
        kept = tree(tmp / "mine") == before
        return ok and kept, f"{got}; mine/ {'as it was' if kept else 'WRITTEN INTO'}"
    return case


def r3_default_info(verb: str) -> Callable[[Path, Shared], Outcome]:
    """The default --info (<out>.json) is the input: `--checkpoint ran92.json --out ran92.pth` (weights, export), the
    ONNX file `m.json` with `--out m.onnx` (simplify). Refused; the input intact."""
    def case(tmp: Path, s: Shared) -> Outcome:
        src = tmp / ("m.json" if verb == "simplify" else "ran92.json")
        shutil.copy(s.tiny if verb == "simplify" else s.weights, src)
        before = sha256(src)
        args = {"weights": ["weights", MODEL, "--checkpoint", src.name, "--out", "ran92.pth"],
                "export": ["export", MODEL, "--checkpoint", src.name, "--out", "ran92.onnx"],
                "simplify": ["simplify", src.name, "--out", "m.onnx"]}[verb]
        reads = [] if verb == "simplify" else ["--params", ROOT / "params.yaml"]
        r = omzoo(tmp, *args, *reads)
        ok, got = one_line(r, verb, src.name)
        kept = sha256(src) == before
        return ok and kept, f"{got}; {src.name} {'intact' if kept else 'OVERWRITTEN'}"
    return case


def r3_implicit_params(verb: str) -> Callable[[Path, Shared], Outcome]:
    """--out is the ./params.yaml read when --params is not given: refused, params.yaml intact."""
    def case(tmp: Path, s: Shared) -> Outcome:
        path = params(tmp, text=(ROOT / "params.yaml").read_text())
        before = path.read_bytes()
        args = {"toolkit": ["toolkit", "--out", "params.yaml"],
                "weights": ["weights", MODEL, "--out", "params.yaml", "--info", "w.json"]}[verb]
        r = omzoo(tmp, *args)
        ok, got = one_line(r, verb, "params.yaml")
        kept = path.read_bytes() == before
        return ok and kept, f"{got}; params.yaml {'intact' if kept else 'OVERWRITTEN'}"
    return case


def r3_into_read_folder(verb: str) -> Callable[[Path, Shared], Outcome]:
    """An --out inside a folder the verb reads though no argument names it: report's metrics/, compare
    --plots-only's reports/ (its plot data, reports/throughput.csv). Refused, nothing written."""
    def case(tmp: Path, s: Shared) -> Outcome:
        (tmp / "metrics" / "eval").mkdir(parents=True)
        (tmp / "reports").mkdir()
        (tmp / "reports" / "throughput.csv").write_text("model,batch_size\n")
        before = tree(tmp)
        args, named = {"report": (["report", "--out", "metrics/eval/extra", "--params", ROOT / "params.yaml"],
                                  "metrics"),
                       "compare": (["compare", "--plots-only", "--out", "reports"], "throughput.csv")}[verb]
        r = omzoo(tmp, *args)
        ok, got = one_line(r, verb, named)
        same = tree(tmp) == before and not (tmp / "metrics" / "eval" / "extra").exists()
        return ok and same, f"{got}; {'nothing written' if same else 'WRITTEN'}"
    return case


def r4_out_is_default_info(verb: str) -> Callable[[Path, Shared], Outcome]:
    """--out w.json is the default --info: refused before anything is written (no half result)."""
    def case(tmp: Path, s: Shared) -> Outcome:
        shutil.copy(s.tiny, tmp / "m.onnx")
        args = {"weights": ["weights", MODEL, "--checkpoint", "", "--params", ROOT / "params.yaml"],
                "simplify": ["simplify", "m.onnx"]}[verb]
        r = omzoo(tmp, *args, "--out", "w.json")
        ok, got = one_line(r, verb, "w.json", "--out")
        written = (tmp / "w.json").exists()
        return ok and not written, f"{got}; w.json {'WRITTEN' if written else 'absent'}"
    return case


def r4_plots_together(tmp: Path, s: Shared) -> Outcome:
    """compare --plots-only whose index.html cannot be replaced: the new throughput.png is not committed either."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp / name)
    (tmp / "reports").mkdir()
    csv = (ROOT / "reports" / "throughput.csv").read_text()
    (tmp / "reports" / "throughput.csv").write_text(csv)
    for cmd in (["git", "init", "-q"], [BIN / "dvc", "init", "-q"]):
        if run(cmd, tmp).returncode:
            return False, f"setup {cmd[0]} failed"
    if omzoo(tmp, "compare", "--plots-only", "--out", "P").returncode:
        return False, "first plot failed"
    (tmp / "P" / "index.html").unlink()
    (tmp / "P" / "index.html").mkdir()  # cannot be replaced by a file
    before = tree(tmp / "P")
    lines = csv.splitlines()
    (tmp / "reports" / "throughput.csv").write_text("\n".join([lines[0], *lines[1:2]]) + "\n")  # another plot
    r = omzoo(tmp, "compare", "--plots-only", "--out", "P")
    ok, got = one_line(r, "compare", "index.html")
    kept = tree(tmp / "P") == before
    return ok and kept, f"{got}; throughput.png {'as it was' if kept else 'NEW beside the old page'}"


def r4_keeps_mode(tmp: Path, s: Shared) -> Outcome:
    """`omzoo sweep` rewrites params.yaml of mode 640: it stays 640 (an atomic replace keeps the file's mode). The
    `dvc repro` it then runs fails here (no DVC repository); the edit is what is judged."""
    path = params(tmp, text=(ROOT / "params.yaml").read_text())
    before = path.read_bytes()
    path.chmod(0o640)
    omzoo(tmp, "sweep", "--bs", "16", "--model", MODEL)
    mode, edited = path.stat().st_mode & 0o777, path.read_bytes() != before
    return edited and mode == 0o640, f"params.yaml {'edited' if edited else 'NOT edited'}, mode {mode:o}"


def r10_nameless_out(value: str) -> Callable[[Path, Shared], Outcome]:
    """`--out .` (in an empty folder), `--out ''`, `--out /`: one clear line, no Python internals."""
    def case(tmp: Path, s: Shared) -> Outcome:
        r = omzoo(tmp, "sample-data", "--out", value)
        line = [ln for ln in r.stderr.splitlines() if ln.startswith("omzoo sample-data: error: ")]
        want = "an empty path" if value == "" else "names no file or folder"
        ok = r.returncode == 2 and len(line) == 1 and want in line[0] and "Posix" not in r.stderr
        return ok and not any(tmp.iterdir()), f"exit {r.returncode}: {short(line[0] if line else r.stderr)}"
    return case


CASES: list[tuple[str, str, Callable[[Path, Shared], Outcome]]] = [
    ("1 checkpoint runs code: weights --checkpoint <pickle calling os.system>",
     "refused by name, marker file not created, nothing written", c1_malicious),
    ("2 --out deletes inputs: preprocess --out <data folder>", "refused, every input intact", c2_out("data folder")),
    ("2 --out deletes inputs: preprocess --out <its parent>", "refused, every input intact", c2_out("its parent")),
    ("2 --out deletes inputs: preprocess --out . (inside the data)", "refused, every input intact",
     c2_out("working directory")),
    ("2 --out deletes inputs: sample-data --out <user folder>", "refused, folder intact", c2_sample_data),
    ("2 --out: re-run onto omzoo's own previous output", "exit 0 every time", c2_rerun),
    ("3 labels edit doesn't re-run preprocess: edit val_label.txt", "dvc status: preprocess changed (labels dep)",
     c3_labels),
    ("4 failed benchmark passes: bench.min_iters: \"5\"", "bench exits non-zero, previous metrics untouched",
     c4_failed_bench),
    ("5 toolkit pin prefix: toolkit.version \"1.3\" vs installed 1.32", "compile refused, both versions named",
     c5_pin_prefix),
    ("5 YAML floats: toolkit.version: 1.30 unquoted", "refused naming toolkit.version, says quote it", c5_float),
    ("6 random checkpoints not byte-reproducible: weights twice", "identical bytes", c6_random_bytes),
    ("7 NaN/inf weights accepted: weights --checkpoint <NaN tensor>", "refused naming the file and the key",
     c7_nan_weights),
    ("7 NaN/inf: predict --onnx <graph giving NaN>", "refused naming the file, no logits written", c7_nan_predict),
    ("7 NaN/inf: simplify <graph giving NaN>", "refused naming the file", c7_nan_simplify),
    ("8 predict skips gif/jfif: 6 files (png jpg gif jfif bmp webp)", "6 rows", c8_gif_jfif),
    ("8 predict: ONNX of another model (ran92 graph as scnet50_v1d)", "refused naming the file, before any image",
     c8_other_model),
    ("8 predict --skip-bad: 6 images + a broken png + a .txt", "accepted, 6 rows, both files listed", c8_skip_bad),
    ("9 tracebacks: a text file as checkpoint", "one line naming the file", c9_text_checkpoint),
    ("9 tracebacks: unknown model id in params", "one line naming models.<id>", c9_unknown_model),
    ("9 tracebacks: model options typo (was --options)", "one line naming the key", c9_options_typo),
    ("9 tracebacks: predict --onnx <not a protobuf>", "one line naming the file", c9_invalid_protobuf),
    ("9 tracebacks: predict --onnx <64x64 graph> for a 32x32 model", "one line naming the file and the input",
     c9_input_size),
    ("9 tracebacks: disk full in weights", "one line naming the output, nothing left", c9_disk_full("weights")),
    ("9 tracebacks: disk full in export", "one line naming the output, nothing left", c9_disk_full("export")),
    ("9 tracebacks: disk full in preprocess", "one line naming the output, nothing left", c9_disk_full("preprocess")),
    ("10 leftovers: atomic_write temp of a killed writer", "removed by the next write; look-alikes kept",
     c10_write_temp),
    ("10 leftovers: compile killed mid-write", "previous artefact intact; temp removed by the next compile",
     c10_compile_temp),
    ("11 evaluate with another model's infer outputs", "refused naming the folder", c11_evaluate),
    ("11 make bench MODEL=<no match>", "non-zero, says nothing matches, runs no stage", c11_bench_no_match),
    ("11 make link-data IMAGENET=<missing path>", "non-zero, one line, no dangling link", c11_link_data),
    ("11 make compare BASE=main (one-revision form)", "compares main with the workspace, exit 0",
     c11_compare_one_revision),
    ("11 unknown weights key (weights.sede)", "one line naming the key", c11_weights_key),
    ("11 protocol-5 CIFAR pickle", "read: 64 images", c11_protocol5),
]


# --- the second hostile pass (issue 20), by its ten classes ------------------------------------------------------

PWNED = "pwned"


def git_checkout(tmp: Path) -> Path:
    """This checkout's committed tree as a git repo with one commit on main (what `make compare` needs)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    shutil.copy(ROOT / "Makefile", tmp / "Makefile")
    git = ["git", "-c", "user.name=omzoo", "-c", "user.email=omzoo@invalid"]
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "main"]):
        run([*git, *cmd], tmp)
    return tmp


def last(r: subprocess.CompletedProcess[str], n: int = 90) -> str:
    return short((r.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1], n)


def ran_nothing(r: subprocess.CompletedProcess[str], tmp: Path, what: str) -> Outcome:
    """Injected shell code ran when a file named `pwned` appeared anywhere under `tmp`."""
    ran = [p.relative_to(tmp).as_posix() for p in tmp.rglob(PWNED)]
    ok = r.returncode != 0 and not ran
    said = short((r.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1], 90)
    return ok, f"{what}: exit {r.returncode}; injected code {'RAN: ' + str(ran) if ran else 'did not run'}; {said}"


def r1_make(*args: str, repo: bool = False) -> Callable[[Path, Shared], Outcome]:
    def case(tmp: Path, s: Shared) -> Outcome:
        if repo:
            git_checkout(tmp)
        else:
            params(tmp)
        return ran_nothing(make(tmp, *args), tmp, "make " + " ".join(args))
    return case


def dvc_checkout(tmp: Path, edit: Callable[[dict], None]) -> None:
    """A DVC project (no git) with this checkout's dvc.yaml, src and an edited params.yaml."""
    shutil.copy(ROOT / "dvc.yaml", tmp / "dvc.yaml")
    params(tmp, edit)
    shutil.copytree(ROOT / "src", tmp / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (tmp / "checkpoints").mkdir()
    run([BIN / "dvc", "init", "-q", "--no-scm"], tmp)


def r1_dvc_checkpoint(name: str, exists: bool) -> Callable[[Path, Shared], Outcome]:
    """A checkpoint path holding shell syntax, through `dvc repro` of the weights stage: read as written."""
    def case(tmp: Path, s: Shared) -> Outcome:
        dvc_checkout(tmp, lambda p: p["models"][MODEL].update(checkpoint=f"checkpoints/{name}"))
        if exists:
            shutil.copy(s.weights, tmp / "checkpoints" / name)
        r = run([BIN / "dvc", "repro", "-q", f"weights@{MODEL}"], tmp)  # the toolkit stage (params checked) first
        ran = list(tmp.rglob(PWNED))
        if exists:
            info = tmp / f"models/pth/{MODEL}.json"
            source = json.loads(info.read_text()).get("source") if info.is_file() else None
            ok = r.returncode == 0 and source == f"checkpoints/{name}" and not ran
            return ok, f"exit {r.returncode}: weights read {source!r}; injected code {'RAN' if ran else 'did not run'}"
        said = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("omzoo weights: error:")]
        ok = r.returncode != 0 and not ran and bool(said) and name in said[0]
        return ok, f"exit {r.returncode}: {short(said[0] if said else r.stderr, 90)}; injected {'RAN' if ran else 'no'}"
    return case


def r1_dvc_dataset(tmp: Path, s: Shared) -> Outcome:
    """A dataset path holding `$(...)`: preprocess reads it from params, no shell ever sees it."""
    name = f"cifar$(touch {PWNED})"
    shutil.copytree(s.sample / "cifar-10-batches-py", tmp / name)
    dvc_checkout(tmp, lambda p: p["datasets"]["cifar32"].update(data=name, labels=name))
    r = run([BIN / "dvc", "repro", "-q", "preprocess@cifar32"], tmp)
    ran = list(tmp.rglob(PWNED))
    manifest = tmp / "data/processed/cifar32/manifest.json"
    source = json.loads(manifest.read_text())["source"] if manifest.is_file() else None
    ok = r.returncode == 0 and source == name and not ran
    return ok, f"exit {r.returncode}: preprocess read {source!r}; injected code {'RAN' if ran else 'did not run'}"


def r1_dvc_static(tmp: Path, s: Shared) -> Outcome:
    """Every value dvc.yaml pastes into a command is one params validation reduces to an identifier or integer (a
    precision is one of a fixed list), and every stage that pastes one depends on the toolkit stage's params check."""
    safe = {"key", "item.model", "item.bs", "item.pixels", "item.precision", "infer.batch_size"}
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    pasted = {e for st in stages.values() for e in re.findall(r"\$\{([^}]+)\}", st.get("do", st)["cmd"])}
    unchecked = [n for n, st in stages.items() if "${" in st.get("do", st)["cmd"]
                 and "metrics/params.json" not in st.get("do", st)["deps"]]
    got = (f"interpolated into commands: {sorted(pasted)}; free-form: {sorted(pasted - safe) or 'none'}; "
           f"unchecked stages: {unchecked or 'none'}")
    return pasted <= safe and not unchecked, got


def user_folder(folder: Path, *names: str) -> dict[str, bytes]:
    """A user's folder holding `names` (an omzoo marker's name among them proves nothing) and src/thesis.tex."""
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "thesis.tex").write_text("\\\\documentclass{article}\n")
    for n in names:
        (folder / n).write_text('{"name": "my web app"}\n')
    return tree(folder)


def r2_foreign(verb: str, marker: str) -> Callable[[Path, Shared], Outcome]:
    def case(tmp: Path, s: Shared) -> Outcome:
        mine = tmp / "mine"
        before = user_folder(mine, marker)
        args = {"preprocess": ["preprocess", "--pixels", "cifar32", "--data", s.sample / "cifar-10-batches-py",
                               "--out", "mine", "--quiet", "--params", ROOT / "params.yaml"],
                "compile": ["compile", MODEL, "--bs", "1", "--onnx", s.tiny, "--out", "mine",
                            "--params", ROOT / "params.yaml"],
                "sample-data": ["sample-data", "--out", "mine"],
                "report": ["report", "--root", tmp, "--out", "mine", "--params", ROOT / "params.yaml"],
                "compare": ["compare", "--plots-only", "--out", "mine"]}[verb]
        ok, got = one_line(omzoo(tmp, *args), verb, "mine", "not written by omzoo")
        intact = tree(mine) == before
        return ok and intact, f"{got}; folder {'intact' if intact else 'CHANGED'}"
    return case


def r2_symlink(verb: str) -> Callable[[Path, Shared], Outcome]:
    def case(tmp: Path, s: Shared) -> Outcome:
        mine = tmp / "mine"
        before = user_folder(mine)
        (tmp / "link").symlink_to(mine)
        args = {"preprocess": ["preprocess", "--pixels", "cifar32", "--data", s.sample / "cifar-10-batches-py",
                               "--out", "link", "--quiet", "--params", ROOT / "params.yaml"],
                "sample-data": ["sample-data", "--out", "link"],
                "report": ["report", "--root", tmp, "--out", "link", "--params", ROOT / "params.yaml"]}[verb]
        ok, got = one_line(omzoo(tmp, *args), verb, "link", "symlink")
        kept = (tmp / "link").is_symlink() and tree(mine) == before
        return ok and kept, f"{got}; link and folder {'intact' if kept else 'CHANGED'}"
    return case


def inferred(tmp: Path, s: Shared, out: str = "infer") -> subprocess.CompletedProcess[str]:
    """A compiled tiny model at bs 4 and the sample CIFAR shards in `tmp`, then `omzoo infer --out out`."""
    for r in (s.compile_tiny(tmp, "c4", 4),
              omzoo(tmp, "preprocess", "--pixels", "cifar32", "--data", s.sample / "cifar-10-batches-py", "--out",
                    "shards", "--quiet", "--params", ROOT / "params.yaml")):
        if r.returncode:
            raise RuntimeError(f"setup failed: {short(r.stderr)}")
    return omzoo(tmp, "infer", "--compiled", "c4", "--shards", "shards", "--out", out, "--quiet")


def r2_infer_foreign(tmp: Path, s: Shared) -> Outcome:
    mine = tmp / "mine"
    before = user_folder(mine, "predictions.json", "infer.json")
    ok, got = one_line(inferred(tmp, s, "mine"), "infer", "mine", "not written by omzoo")
    intact = tree(mine) == before
    return ok and intact, f"{got}; folder {'intact' if intact else 'CHANGED'}"


def r2_compare_foreign(tmp: Path, s: Shared) -> Outcome:
    git_checkout(tmp)
    mine = tmp / "mine"
    before = user_folder(mine, "compare.md")
    ok, got = one_line(omzoo(tmp, "compare", "main", "--out", "mine", "--no-plots"), "compare", "mine")
    intact = tree(mine) == before
    return ok and intact, f"{got}; folder {'intact' if intact else 'CHANGED'}"


def r2_own_again(tmp: Path, s: Shared) -> Outcome:
    """omzoo's own outputs are replaced again and again: infer twice, report twice."""
    codes = [inferred(tmp, s).returncode, omzoo(tmp, "infer", "--compiled", "c4", "--shards", "shards", "--out",
                                                 "infer", "--quiet").returncode]
    codes += [omzoo(tmp, "report", "--root", tmp, "--out", "rep", "--params", ROOT / "params.yaml").returncode
              for _ in range(2)]
    return codes == [0, 0, 0, 0], f"exit codes {codes} (infer twice, report twice)"


def r3_same(verb: str) -> Callable[[Path, Shared], Outcome]:
    """An output that is one of the verb's inputs: refused before anything is read or written."""
    def case(tmp: Path, s: Shared) -> Outcome:
        shutil.copy(s.tiny, tmp / "m.onnx")
        shutil.copy(s.weights, tmp / "w.pth")
        photos(tmp / "photos", SIX)
        os.link(tmp / "m.onnx", tmp / "hard.onnx")
        args, victim = {
            "predict --out <its --onnx>": (["predict", MODEL, "--onnx", "m.onnx", "--data", "photos", "--out",
                                            "m.onnx"], "m.onnx"),
            "predict --out <a hard link of its --onnx>": (["predict", MODEL, "--onnx", "m.onnx", "--data", "photos",
                                                           "--out", "hard.onnx"], "m.onnx"),
            "predict --out <one of its images>": (["predict", MODEL, "--onnx", "m.onnx", "--data", "photos", "--out",
                                                   "photos/a.png"], "photos/a.png"),
            "export --out <its --checkpoint>": (["export", MODEL, "--checkpoint", "w.pth", "--out", "w.pth"], "w.pth"),
            "export --info <its --checkpoint>": (["export", MODEL, "--checkpoint", "w.pth", "--out", "x.onnx",
                                                  "--info", "w.pth"], "w.pth"),
            "weights --trust-checkpoint --out <its checkpoint>": (["weights", MODEL, "--checkpoint", "w.pth",
                                                                   "--trust-checkpoint", "--out", "w.pth"], "w.pth"),
            "simplify --out <its input>": (["simplify", "m.onnx", "--out", "m.onnx"], "m.onnx"),
            "compile --out <its --onnx>": (["compile", MODEL, "--bs", "1", "--onnx", "m.onnx", "--out", "m.onnx"],
                                           "m.onnx"),
            "bench --out <inside its --compiled>": (["bench", "--compiled", "photos", "--out", "photos/m.json",
                                                     "--info", "i.json", "--rounds", "r.json"], "photos/a.png"),
        }[verb]
        before = tree(tmp)
        reads = ["--params", ROOT / "params.yaml"] if args[0] not in ("predict", "simplify") else []
        ok, got = one_line(omzoo(tmp, *args, *reads), verb.split()[0], "the input")
        intact = tree(tmp) == before
        return ok and intact, f"{got}; {victim} {'intact' if intact else 'DESTROYED'}"
    return case


def old_files(folder: Path, names: list[str]) -> dict[str, bytes]:
    """`folder` as an earlier omzoo output (its marker, `old` in each file), before a run that fails part-way."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".omzoo-output").write_text('{"written_by": "omzoo", "output": "old"}\n')
    for n in names:
        (folder / n).write_text(f"old {n}\n")
    return tree(folder)


def r4_bench(where: str) -> Callable[[Path, Shared], Outcome]:
    """bench's three files are one result: the info file cannot be written (a folder, or a file size limit), so
    neither the new rounds nor the new metrics may replace the old ones."""
    def case(tmp: Path, s: Shared) -> Outcome:
        if s.compile_tiny(tmp).returncode:
            return False, "compile failed"
        before = {d: old_files(tmp / d, ["m.json"]) for d in ("metrics", "rounds")}
        info = {"folder": "info", "size": "i.json"}[where]
        (tmp / "info").mkdir()
        fast = ["-S", "bench.rounds=2", "-S", "bench.min_s=0.01", "-S", "bench.warmup_s=0", "-S", "bench.min_iters=1"]
        r = omzoo(tmp, "bench", "--compiled", "c1", "--out", "metrics/m.json", "--info", info, "--rounds",
                  "rounds/m.json", *fast, "--params", ROOT / "params.yaml", max_file_bytes=300 if where == "size"
                  else None)
        ok, got = one_line(r, "bench", info if where == "folder" else "cannot write")
        kept = all(tree(tmp / d) == b for d, b in before.items())
        return ok and kept, f"{got}; old rounds and metrics {'kept' if kept else 'REPLACED (half a result)'}"
    return case


def r4_report(tmp: Path, s: Shared) -> Outcome:
    before = old_files(tmp / "rep", ["summary.md", "throughput.csv", "throughput.png"])
    r = omzoo(tmp, "report", "--root", tmp, "--out", "rep", "--params", ROOT / "params.yaml", max_file_bytes=4096)
    ok, got = one_line(r, "report", "rep/")
    kept = tree(tmp / "rep") == before
    return ok and kept, f"{got}; old summary, csv and plot {'kept' if kept else 'MIXED with new ones'}"


def r4_infer(tmp: Path, s: Shared) -> Outcome:
    if inferred(tmp, s, "first").returncode:
        return False, "setup infer failed"
    before = old_files(tmp / "infer", ["logits.npy", "predictions.json", "infer.json"])
    r = omzoo(tmp, "infer", "--compiled", "c4", "--shards", "shards", "--out", "infer", "--quiet",
              max_file_bytes=1024)
    ok, got = one_line(r, "infer", "infer")
    kept = tree(tmp / "infer") == before
    return ok and kept, f"{got}; old logits and predictions {'kept' if kept else 'MIXED with new ones'}"


def r4_sweep(tmp: Path, s: Shared) -> Outcome:
    """`make bench BS=16` adds 16 to params.yaml: on a full disk the file stays whole and the message names it."""
    path = params(tmp, text=(ROOT / "params.yaml").read_text())
    before = path.read_bytes()
    r = omzoo(tmp, "sweep", "--bs", "16", max_file_bytes=4096)
    ok, got = one_line(r, "sweep", "params.yaml")
    kept = path.read_bytes() == before
    return ok and kept, f"{got}; params.yaml {'whole' if kept else 'CUT'}"


def r4_pair(verb: str) -> Callable[[Path, Shared], Outcome]:
    """A verb's two files (the output and its info): the info cannot be written, so the output is not either."""
    def case(tmp: Path, s: Shared) -> Outcome:
        shutil.copy(s.tiny, tmp / "m.onnx")
        (tmp / "info").mkdir()
        out = {"weights": "w.pth", "export": "e.onnx", "simplify": "s.onnx"}[verb]
        args = {"weights": ["weights", MODEL], "export": ["export", MODEL, "--checkpoint", s.weights],
                "simplify": ["simplify", "m.onnx"]}[verb]
        reads = [] if verb == "simplify" else ["--params", ROOT / "params.yaml"]
        r = omzoo(tmp, *args, "--out", out, "--info", "info", *reads)
        ok, got = one_line(r, verb, "info")
        return ok and not (tmp / out).exists(), f"{got}; {out} {'absent' if not (tmp / out).exists() else 'WRITTEN'}"
    return case


def r4_evaluate(tmp: Path, s: Shared) -> Outcome:
    if inferred(tmp, s).returncode:
        return False, "setup infer failed"
    (tmp / "w.json").write_text(json.dumps({"weights": "random", "seed": 0}))
    (tmp / "info").write_text("a file where evaluate's info folder goes\n")
    r = omzoo(tmp, "evaluate", MODEL, "--infer", "infer", "--shards", "shards", "--weights", "w.json",
              "--out", "m", "--info", "info")
    ok, got = one_line(r, "evaluate", "info")
    written = (tmp / "m").exists()
    return ok and not written, f"{got}; metrics {'WRITTEN' if written else 'absent'}"


def images(folder: Path, names: list[str], size: int = 32) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(names))
    for n in names:
        fmt = {".png": "PNG", ".gif": "GIF", ".jfif": "JPEG", ".jpg": "JPEG", ".bmp": "BMP"}[Path(n).suffix]
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / n, format=fmt)


def predicted(tmp: Path, s: Shared, *extra: str) -> tuple[subprocess.CompletedProcess[str], int | None]:
    r = omzoo(tmp, "predict", MODEL, "--onnx", s.tiny, "--data", "photos", "--out", "logits.npy", *extra,
              timeout=120)
    rows = np.load(tmp / "logits.npy").shape[0] if r.returncode == 0 and (tmp / "logits.npy").is_file() else None
    return r, rows


def r5_discovery(layout: str, skip_bad: bool) -> Callable[[Path, Shared], Outcome]:
    """Every file under predict's folder is a row or listed: never dropped, never counted twice."""
    def case(tmp: Path, s: Shared) -> Outcome:
        photos_dir = tmp / "photos"
        if layout == "loose images beside one subfolder":
            images(photos_dir, [f"{c}.png" for c in "abcdef"])
            images(photos_dir / "sub", ["g.png", "h.png"])
            rows, listed = 2, ["a.png", "f.png"]
        elif layout == "gif, jfif and txt in class folders":
            images(photos_dir / "cat", ["a.png", "b.gif", "c.jfif"])
            (photos_dir / "cat" / "notes.txt").write_text("x\n")
            rows, listed = 1, ["cat/b.gif", "cat/c.jfif", "cat/notes.txt"]
        elif layout == "a symlink loop in a class folder":
            images(photos_dir / "cat", ["a.png", "b.png"])
            (photos_dir / "cat" / "loop").symlink_to("..")
            rows, listed = 2, ["loop"]
        elif layout == "two links to one folder":
            images(tmp / "store", ["a.png", "b.png"])
            (photos_dir / "cat").mkdir(parents=True)
            (photos_dir / "cat" / "one").symlink_to(tmp / "store")
            (photos_dir / "cat" / "two").symlink_to(tmp / "store")
            rows, listed = 2, ["cat/two/"]
        else:  # a dangling link named like an image
            images(photos_dir, ["a.png", "b.png"])
            (photos_dir / "c.png").symlink_to(tmp / "gone.png")
            rows, listed = 2, ["c.png"]
        r, got_rows = predicted(tmp, s, *(["--skip-bad"] if skip_bad else []))
        return strays_judged(r, r.stdout + r.stderr, got_rows, rows, listed, skip_bad)
    return case


def strays_judged(r: subprocess.CompletedProcess[str], text: str, got_rows: int | None, rows: int, listed: list[str],
                  skip_bad: bool) -> Outcome:
    """Every stray named in `text`; with --skip-bad the run goes on with `rows` rows, without it stops (no rows)."""
    named = all(n in text for n in listed)
    if skip_bad:
        ok = r.returncode == 0 and got_rows == rows and named
        return ok, f"exit {r.returncode}: {got_rows} rows (want {rows}); listed {listed}: {named}"
    ok = r.returncode != 0 and named and "Traceback" not in text and got_rows is None
    return ok, f"exit {r.returncode}: refused, every stray named: {named}; {last(r)}"


def r5_labelled_flat(tmp: Path, s: Shared) -> Outcome:
    """A labelled flat folder with a .txt in it: preprocess lists the file, it does not leave it out."""
    images(tmp / "val", ["a.png", "b.png"], size=40)
    (tmp / "val" / "readme.txt").write_text("x\n")
    (tmp / "labels.txt").write_text("a.png 1\nb.png 2\n")
    r = omzoo(tmp, "preprocess", "--pixels", "bilinear224", "--data", "val", "--labels", "labels.txt", "--out",
              "out", "--quiet", "--params", ROOT / "params.yaml")
    ok = r.returncode != 0 and "readme.txt" in r.stderr and "Traceback" not in r.stderr
    return ok, f"exit {r.returncode}: readme.txt {'listed' if 'readme.txt' in r.stderr else 'NOT LISTED'}"


def label_file_case(label: str, want: str) -> Callable[[Path, Shared], Outcome]:
    """predict with a labels file whose label is `label`: refused naming the line (ran92 has 10 classes)."""
    def case(tmp: Path, s: Shared) -> Outcome:
        images(tmp / "photos", ["a.png", "b.png"])
        (tmp / "labels.txt").write_text(f"a.png 1\nb.png {label}\n", encoding="utf-8")
        r = omzoo(tmp, "predict", MODEL, "--onnx", s.tiny, "--data", "photos", "--labels", "labels.txt",
                  "--out", "logits.npy")
        ok = r.returncode != 0 and want in r.stderr and "line 2" in r.stderr and "Traceback" not in r.stderr
        return ok and not (tmp / "logits.npy").exists(), f"exit {r.returncode}: {last(r)}"
    return case


def cifar_with(tmp: Path, s: Shared, label: int, names: int = 10) -> Path:
    src = s.sample / "cifar-10-batches-py"
    (tmp / "cifar").mkdir()
    batch = pickle.loads((src / "test_batch").read_bytes(), encoding="latin1")
    batch["labels"][5] = label
    meta = pickle.loads((src / "batches.meta").read_bytes(), encoding="latin1")
    meta["label_names"] = [f"c{i}" for i in range(names)]
    (tmp / "cifar" / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    (tmp / "cifar" / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return tmp / "cifar"


def r6_cifar_label(names: int) -> Callable[[Path, Shared], Outcome]:
    def case(tmp: Path, s: Shared) -> Outcome:
        cifar_with(tmp, s, 10, names)
        r = omzoo(tmp, "preprocess", "--pixels", "cifar32", "--data", "cifar", "--out", "shards", "--quiet",
                  "--params", ROOT / "params.yaml")
        ok = r.returncode != 0 and "row 5" in r.stderr and "0..9" in r.stderr
        return ok and not (tmp / "shards").exists(), f"exit {r.returncode}: {last(r)}"
    return case


def r6_imagefolder_classes(tmp: Path, s: Shared) -> Outcome:
    for c in range(11):
        images(tmp / "photos" / f"class{c:02d}", ["a.png"])
    r, rows = predicted(tmp, s)
    return one_line(r, "predict", "11 class folders", "10 classes") if rows is None else (False, f"{rows} rows")


def r6_evaluate_label(tmp: Path, s: Shared) -> Outcome:
    """Shards written by the library without a class bound (label 10 inside), then evaluate for the 10-class model."""
    from omzoo.core.zoo import pixel_recipe
    from omzoo.data.preprocess import preprocess

    preprocess(pixel_recipe("cifar32"), cifar_with(tmp, s, 10, 11), None, tmp / "shards", workers=1, progress=False)
    if s.compile_tiny(tmp, "c4", 4).returncode:
        return False, "compile failed"
    if omzoo(tmp, "infer", "--compiled", "c4", "--shards", "shards", "--out", "infer", "--quiet").returncode:
        return False, "infer failed"
    (tmp / "w.json").write_text(json.dumps({"weights": "random", "seed": 0}))
    r = omzoo(tmp, "evaluate", MODEL, "--infer", "infer", "--shards", "shards", "--weights", "w.json",
              "--out", "m.json", "--info", "i.json")
    ok, got = one_line(r, "evaluate", "outside the 10 classes", "image_5")
    return ok and not (tmp / "m.json").exists(), got


def r6_16bit(tmp: Path, s: Shared) -> Outcome:
    """A 16-bit grey PNG reads as its 8-bit values (v * 257 -> v), not as white."""
    from omzoo.data.shards import ShardSet

    (tmp / "photos").mkdir()
    grey = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) % 256
    Image.fromarray((grey * 257).astype(np.uint16)).save(tmp / "photos" / "a.png")
    r = omzoo(tmp, "preprocess", "--pixels", "cifar32", "--data", "photos", "--out", "shards", "--quiet",
              "--params", ROOT / "params.yaml")
    if r.returncode:
        return False, f"exit {r.returncode}: {short(r.stderr)}"
    pixels = next(ShardSet(tmp / "shards").iter_batches(1))[0]
    ok = bool((pixels == grey.astype(np.uint8)).all())
    return ok, f"decoded mean {pixels.mean():.1f} (want {grey.mean():.1f}; white would be 255)"


def r6_label_bound_preprocess(tmp: Path, s: Shared) -> Outcome:
    """The ImageNet shard set's labels are bounded by its models' 1000 classes: 1000 is refused by line."""
    images(tmp / "val", ["a.png"], size=40)
    (tmp / "labels.txt").write_text("a.png 1000\n")
    r = omzoo(tmp, "preprocess", "--pixels", "bilinear224", "--data", "val", "--labels", "labels.txt", "--out",
              "out", "--quiet", "--params", ROOT / "params.yaml")
    ok = r.returncode != 0 and "0..999" in r.stderr and "line 1" in r.stderr
    return ok, f"exit {r.returncode}: {short(r.stderr.strip().splitlines()[-1], 90)}"


def tensors(s: Shared, change: Callable[[dict], None]) -> dict:
    sd = dict(read_checkpoint(s.weights).state_dict)
    change(sd)
    return sd


def first_conv(sd: dict) -> str:
    return next(k for k, v in sd.items() if v.is_floating_point() and v.ndim == 4)


def r7_dtype(dtype: torch.dtype) -> Callable[[Path, Shared], Outcome]:
    def case(tmp: Path, s: Shared) -> Outcome:
        sd = dict(read_checkpoint(s.weights).state_dict)
        key = first_conv(sd)
        sd[key] = sd[key].to(dtype) if dtype != torch.bool else sd[key] > 0
        torch.save(sd, tmp / "bad.pth")
        r = omzoo(tmp, "weights", MODEL, "--checkpoint", "bad.pth", "--out", "w.pth", "--params", ROOT / "params.yaml")
        ok, got = one_line(r, "weights", "bad.pth", key, str(dtype))
        return ok and not (tmp / "w.pth").exists(), got
    return case


def checkpoint_case(build: Callable[[Path, Shared], str], *names: str) -> Callable[[Path, Shared], Outcome]:
    """`build` writes bad.pth (or returns another path) and the refusal must be one line naming `names`."""
    def case(tmp: Path, s: Shared) -> Outcome:
        path = build(tmp, s) or "bad.pth"
        r = omzoo(tmp, "weights", MODEL, "--checkpoint", path, "--out", "w.pth", "--params", ROOT / "params.yaml",
                  timeout=120)
        ok, got = one_line(r, "weights", path, *names)
        return ok and not (tmp / "w.pth").exists(), got
    return case


def _both_prefixes(tmp: Path, s: Shared) -> str:
    sd = dict(read_checkpoint(s.weights).state_dict)
    key = first_conv(sd)
    torch.save({**sd, f"module.{key}": sd[key] + 1}, tmp / "bad.pth")
    return ""


def _deflated(tmp: Path, s: Shared) -> str:
    """torch.save's archive re-zipped with deflate, one member padded to 256 MB of zeros (a few hundred KB)."""
    import zipfile

    buf = tmp / "plain.pth"
    torch.save(read_checkpoint(s.weights).state_dict, buf)
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(tmp / "bad.pth", "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        with dst.open("archive/data/zeros", "w", force_zip64=True) as f:
            block = bytes(1 << 20)
            for _ in range(256):
                f.write(block)
    return ""


def _lying_size(tmp: Path, s: Shared) -> str:
    """A stored member whose header declares 2 GB: refused before reading."""
    data = bytearray()
    torch.save(read_checkpoint(s.weights).state_dict, tmp / "plain.pth")
    data = bytearray((tmp / "plain.pth").read_bytes())
    at = data.rfind(b"PK\x01\x02")  # the last central-directory entry: its uncompressed size field at +24
    data[at + 24: at + 28] = (2 << 30).to_bytes(4, "little")
    (tmp / "bad.pth").write_bytes(bytes(data))
    return ""


def _meta(tmp: Path, s: Shared) -> str:
    sd = dict(read_checkpoint(s.weights).state_dict)
    key = first_conv(sd)
    torch.save({**sd, key: torch.empty(sd[key].shape, device="meta")}, tmp / "bad.pth")
    return ""


def _sparse(tmp: Path, s: Shared) -> str:
    sd = dict(read_checkpoint(s.weights).state_dict)
    key = next(k for k, v in sd.items() if v.is_floating_point() and v.ndim == 2)
    torch.save({**sd, key: sd[key].to_sparse()}, tmp / "bad.pth")
    return ""


def _int_key(tmp: Path, s: Shared) -> str:
    torch.save({**read_checkpoint(s.weights).state_dict, 7: torch.zeros(1)}, tmp / "bad.pth")
    return ""


def r10_nested(tmp: Path, s: Shared) -> Outcome:
    """A CIFAR batch whose labels are a list nested 100 000 deep (200 KB): one line, no RecursionError."""
    depth = 100_000
    (tmp / "cifar").mkdir()
    (tmp / "cifar" / "test_batch").write_bytes(b"\x80\x02}U\x06labels" + b"]" * depth + b"a" * (depth - 1) + b"s.")
    r = omzoo(tmp, "preprocess", "--pixels", "cifar32", "--data", "cifar", "--out", "shards", "--quiet",
              "--params", ROOT / "params.yaml")
    return one_line(r, "preprocess", "test_batch", "nested too deeply")


def _fifo(tmp: Path, s: Shared) -> str:
    os.mkfifo(tmp / "ck.pth")
    return "ck.pth"


def _folder(tmp: Path, s: Shared) -> str:
    (tmp / "ck.pth").mkdir()
    return "ck.pth"


def _dev_zero(tmp: Path, s: Shared) -> str:
    (tmp / "ck.pth").symlink_to("/dev/zero")
    return "ck.pth"


def params_case(verb: str, text: str, *names: str, replace: tuple[str, str] | None = None
                ) -> Callable[[Path, Shared], Outcome]:
    """params.yaml with `text` appended (or a line replaced), read by `verb`: one line naming `names` (the key, and the
    file where the whole file is checked; a backend's section is checked, by key, where the backend is made)."""
    def case(tmp: Path, s: Shared) -> Outcome:
        body = (ROOT / "params.yaml").read_text()
        if replace:
            assert replace[0] in body, replace[0]
            body = body.replace(replace[0], replace[1], 1)
        params(tmp, text=body + text)
        args = {"weights": ["weights", MODEL, "--out", "w.pth"],
                "compile": ["compile", MODEL, "--bs", "1", "--onnx", s.tiny, "--out", "c1"],
                "bench": ["bench", "--compiled", s.root / "c1", "--out", "m.json", "--info", "i.json", "--rounds",
                          "r.json"],
                "report": ["report", "--root", tmp, "--out", "rep"]}[verb]
        r = omzoo(tmp, *args, "--params", "params.yaml")
        ok, got = one_line(r, verb, *names)
        left = [n for n in ("w.pth", "c1", "m.json", "rep/summary.md") if (tmp / n).exists()]
        return ok and not left, got + (f"; WROTE {left}" if left else "")
    return case


def r9_fifo_image(tmp: Path, s: Shared) -> Outcome:
    images(tmp / "photos", ["a.png", "b.png"])
    os.mkfifo(tmp / "photos" / "c.png")
    r, rows = predicted(tmp, s, "--skip-bad")
    ok = r.returncode == 0 and rows == 2 and "c.png" in r.stderr and "FIFO" in r.stderr
    return ok, f"exit {r.returncode}: {rows} rows; {short(r.stderr.strip().splitlines()[0] if r.stderr else '', 90)}"


def r9_fifo_arg(what: str) -> Callable[[Path, Shared], Outcome]:
    """A FIFO where a file is read (--labels, --params, a CIFAR batch, the data itself): refused at once, no hang."""
    def case(tmp: Path, s: Shared) -> Outcome:
        images(tmp / "photos", ["a.png", "b.png"])
        base = ["predict", MODEL, "--onnx", s.tiny, "--out", "logits.npy"]
        if what == "--labels":
            os.mkfifo(tmp / "labels.txt")
            args, verb, name = [*base, "--data", "photos", "--labels", "labels.txt"], "predict", "labels.txt"
        elif what == "--params":
            os.mkfifo(tmp / "params.yaml")
            args, verb, name = ["weights", MODEL, "--out", "w.pth", "--params", "params.yaml"], "weights", "params.yaml"
        elif what == "test_batch":
            (tmp / "cifar").mkdir()
            os.mkfifo(tmp / "cifar" / "test_batch")
            args, verb, name = [*base, "--data", "cifar"], "predict", "test_batch"
        else:  # --data: a link to /dev/zero named like an image
            (tmp / "zero.png").symlink_to("/dev/zero")
            args, verb, name = [*base, "--data", "zero.png"], "predict", "zero.png"
        r = omzoo(tmp, *args, timeout=60)
        if r.returncode == 124:
            return False, r.stderr
        if verb == "predict" and what == "--data":  # a per-file problem: listed under the one error line
            ok = r.returncode != 0 and "zero.png" in r.stderr and "character device" in r.stderr
            return ok, f"exit {r.returncode}: {short(r.stderr, 100)}"
        return one_line(r, verb, name)
    return case


def r9_wide(w: int, h: int) -> Callable[[Path, Shared], Outcome]:
    """A tiny PNG of an extreme shape (6000x1: 103 bytes) resizes to over 1.5 G pixels: refused before resizing."""
    def case(tmp: Path, s: Shared) -> Outcome:
        (tmp / "photos").mkdir()
        Image.new("RGB", (w, h)).save(tmp / "photos" / "wide.png")
        start = time.monotonic()
        r = omzoo(tmp, "predict", "scnet50_v1d", "--onnx", s.tiny, "--data", "photos", "--out", "l.npy", timeout=120)
        took = time.monotonic() - start
        text = r.stderr
        ok = r.returncode != 0 and "Traceback" not in text and (("wide.png" in text and "pixels" in text)
                                                                   or "scnet50_v1d" in text)
        return ok, f"exit {r.returncode} in {took:.0f} s ({(tmp / 'photos/wide.png').stat().st_size} bytes): " \
                   f"{short(text.strip().splitlines()[-1], 80)}"
    return case


def r9_huge_batch(verb: str) -> Callable[[Path, Shared], Outcome]:
    """A batch size typed with a few zeros too many: one line naming the flag or key, no TiB allocation."""
    def case(tmp: Path, s: Shared) -> Outcome:
        images(tmp / "photos", ["a.png", "b.png", "c.png"])
        if verb == "predict":
            r = omzoo(tmp, "predict", MODEL, "--onnx", s.tiny, "--data", "photos", "--out", "l.npy", "--bs",
                      "1000000000", timeout=120)
            return one_line(r, "predict", "--bs", "4096")
        if verb == "compile":
            r = omzoo(tmp, "compile", MODEL, "--bs", "5000", "--onnx", s.tiny, "--out", "c", "--params",
                      ROOT / "params.yaml", timeout=120)
            return one_line(r, "compile", "--bs", "4096")
        raw = (ROOT / "params.yaml").read_text()
        (tmp / "params.yaml").write_text(raw.replace("batch_sizes: [1, 8]", "batch_sizes: [1, 8, 100000000]"))
        r = omzoo(tmp, "toolkit", "--out", "tk.json", "--params", "params.yaml", timeout=120)
        return one_line(r, "toolkit", "batch_sizes", "100000000")
    return case


def r9_preprocess_wide(tmp: Path, s: Shared) -> Outcome:
    """The same 6000x1 PNG through preprocess (no model in the way): refused by name, quickly."""
    (tmp / "val").mkdir()
    Image.new("RGB", (6000, 1)).save(tmp / "val" / "wide.png")
    r = omzoo(tmp, "preprocess", "--pixels", "bilinear224", "--data", "val", "--out", "out", "--quiet",
              "--params", ROOT / "params.yaml", timeout=120)
    ok = r.returncode != 0 and "wide.png" in r.stderr and "1536000x256" in r.stderr
    return ok, f"exit {r.returncode}: {short(r.stderr.strip().splitlines()[-1], 100)}"


def r9_bomb_header(tmp: Path, s: Shared) -> Outcome:
    """A PNG header declaring 100000x100000 pixels: refused from the header, nothing decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    (tmp / "val").mkdir()
    (tmp / "val" / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000,
                                           100000, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                                           + chunk(b"IEND", b""))
    r = omzoo(tmp, "preprocess", "--pixels", "bilinear224", "--data", "val", "--out", "out", "--quiet",
              "--params", ROOT / "params.yaml", timeout=120)
    ok = r.returncode != 0 and "bomb.png" in r.stderr and "pixels" in r.stderr and "Traceback" not in r.stderr
    return ok, f"exit {r.returncode}: {short(r.stderr.strip().splitlines()[-1], 100)}"


def r10_corrupt_metrics(text: str) -> Callable[[Path, Shared], Outcome]:
    """One bad file among the report's metrics: the message names it (and NaN is no number, never 'best')."""
    def case(tmp: Path, s: Shared) -> Outcome:
        from omzoo.core import paths

        raw = yaml.safe_load((ROOT / "params.yaml").read_text())
        models = list(raw["models"])
        for m in models:
            for bs in raw["batch_sizes"]:
                path = tmp / paths.bench_metrics(m, bs)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps({"bs": bs, "throughput_compute_ips": 100.0 * bs}))
        bad = tmp / paths.bench_metrics(models[2], 8)
        bad.write_text(text)
        r = omzoo(tmp, "report", "--root", tmp, "--out", "rep", "--params", ROOT / "params.yaml")
        return one_line(r, "report", bad.relative_to(tmp).as_posix())
    return case


def _foreground() -> None:
    """In the child before exec: SIGINT as a terminal's foreground job has it. A shell without job control starts its
    background jobs with SIGINT ignored, a Python started so keeps ignoring it (POSIX; the bench run from such a job
    would otherwise test nothing: every Ctrl-C lost, the run finishing with exit 0)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def r10_sigint(verb: str, settle: float = 1.0, children: int = 2) -> Callable[[Path, Shared], Outcome]:
    """Ctrl-C during a run with worker processes: one line, no traceback from any worker. The signal goes `settle`
    seconds after `children` processes exist: 0 s after the first fork hits the window before a worker's
    initializer has made it ignore Ctrl-C."""
    def case(tmp: Path, s: Shared) -> Outcome:
        import signal

        args = {"preprocess": ["preprocess", "--pixels", "bilinear224", "--data", "val", "--out", "out",
                               "--workers", "2", "--params", ROOT / "params.yaml"],
                "predict": ["predict", "scnet50_v1d", "--onnx", s.root / "scnet.onnx", "--data", "val",
                            "--out", "l.npy", "--workers", "2"]}[verb]
        if verb == "predict":
            tiny_onnx(s.root / "scnet.onnx", size=224, classes=1000, model="scnet50_v1d")
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        for n in (3200, 12800):  # a quiet machine finishes 800 images as the signal lands (exit by SIGINT): more
            shutil.rmtree(tmp / "val", ignore_errors=True)
            shutil.rmtree(tmp / "out", ignore_errors=True)
            images(tmp / "val", [f"{i:05d}.jpg" for i in range(n)], size=400)
            proc = subprocess.Popen([str(BIN / "omzoo"), *map(str, args)], cwd=tmp, env=env, preexec_fn=_foreground,
                                    stderr=subprocess.PIPE, text=True, start_new_session=True)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None and len(_children(proc.pid)) < children:
                time.sleep(0.2 if settle else 0.002)  # until the decoder workers run
            time.sleep(settle)
            if proc.poll() is None:
                break
            proc.communicate()
        if proc.returncode is not None:
            return False, f"not tried: every run finished before the signal (exit {proc.returncode})"
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does: the whole foreground process group
        err = proc.communicate(timeout=60)[1]
        lines = [ln for ln in err.splitlines() if ln.strip() and "%|" not in ln and "it/s" not in ln]
        ok = proc.returncode != 0 and "Traceback" not in err and any(f"omzoo {verb}: interrupted" in ln for ln in lines)
        return ok, f"exit {proc.returncode}: {short(' / '.join(lines[-2:]) or '(nothing)', 100)}"
    return case


def _children(pid: int) -> list[int]:
    """The pids of `pid`'s child processes (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def r10_top(tmp: Path, s: Shared) -> Outcome:
    images(tmp / "photos", ["a.png"])
    r = omzoo(tmp, "predict", MODEL, "--onnx", s.tiny, "--data", "photos", "--out", "l.npy", "--top", "-2")
    line = (r.stderr.strip().splitlines() or [""])[-1]
    ok = r.returncode == 2 and "--top" in line and "positive integer" in line and not (tmp / "l.npy").exists()
    return ok, f"exit {r.returncode}: {short(line, 100)}"


def r10_write_names_output(verb: str) -> Callable[[Path, Shared], Outcome]:
    """A write that fails (a file size limit) names the output asked for, never omzoo's temporary name."""
    def case(tmp: Path, s: Shared) -> Outcome:
        shutil.copy(s.tiny, tmp / "m.onnx")
        args = {"simplify": ["simplify", "m.onnx", "--out", "out/s.onnx"],
                "sample-data": ["sample-data", "--out", "out/sample"]}[verb]
        images(tmp / "photos", [f"{i}.png" for i in range(40)])
        r = omzoo(tmp, *args, max_file_bytes=64)
        ok, got = one_line(r, verb, args[args.index("--out") + 1])
        return ok and ".tmp-" not in r.stderr, got
    return case


def _repeated_members(tmp: Path, s: Shared) -> str:
    """A zip whose 300 central-directory entries all name one 4 MB member's bytes, each a storage of data.pkl:
    4 MB of file that torch would read 300 times (1.6 GB)."""
    import io
    import pickle
    import struct
    import zlib
    from collections import OrderedDict

    n, k = 1 << 20, 300

    class Storage:
        def __init__(self, key: str) -> None:
            self.key = key

    class Tensor:
        def __init__(self, key: str) -> None:
            self.key = key

        def __reduce__(self) -> tuple:
            return torch._utils._rebuild_tensor_v2, (Storage(self.key), 0, (n,), (1,), False, OrderedDict())

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: object) -> tuple | None:
            return ("storage", torch.FloatStorage, obj.key, "cpu", n) if isinstance(obj, Storage) else None

    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump({f"junk{i}": Tensor(str(i)) for i in range(k)})
    members = [("archive/data.pkl", buf.getvalue()), ("archive/byteorder", b"little"), ("archive/version", b"3\n"),
               ("archive/data/0", bytes(4 * n))]
    out, central = io.BytesIO(), []
    for name, data in members:
        at, crc = out.tell(), zlib.crc32(data)
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, len(data), len(data), len(name), 0)
                  + name.encode() + data)
        central.append((name, crc, len(data), at))
    central += [(f"archive/data/{i}", *central[-1][1:]) for i in range(1, k)]
    start = out.tell()
    for name, crc, size, at in central:
        out.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, crc, size, size, len(name), 0, 0,
                              0, 0, 0, at) + name.encode())
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), out.tell() - start, start, 0))
    (tmp / "bad.pth").write_bytes(out.getvalue())
    return ""


def _expanded(tmp: Path, s: Shared) -> str:
    """1.5 KB: a 2-byte fp16 storage viewed as 20000x20000 (stride 0), 1.6 GB once cast to float32."""
    torch.save({"junk": torch.zeros(1, dtype=torch.float16).expand(20000, 20000)}, tmp / "bad.pth")
    return ""


def _expanded_weight(tmp: Path, s: Shared) -> str:
    """The model's own key and shape, its values one element repeated (stride 0): still not a weight torch writes."""
    sd = dict(read_checkpoint(s.weights).state_dict)
    key = next(k for k, v in sd.items() if v.is_floating_point() and v.ndim == 4)
    torch.save({**sd, key: torch.ones(1).expand(sd[key].shape)}, tmp / "bad.pth")
    return ""


def _alias_bomb(levels: int) -> str:
    parts = ['&a0 ["x","x","x","x","x","x","x","x","x","x"]']
    parts += [f"&a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


def r9_onnx_not_regular(verb: str, kind: str) -> Callable[[Path, Shared], Outcome]:
    """A FIFO (or a link to /dev/zero) as the ONNX file simplify, compile or predict reads: named, never opened."""
    def case(tmp: Path, s: Shared) -> Outcome:
        if kind == "fifo":
            os.mkfifo(tmp / "m.onnx")
        else:
            (tmp / "m.onnx").symlink_to("/dev/zero")
        images(tmp / "photos", ["a.png"])
        args = {"simplify": ["simplify", "m.onnx", "--out", "s.onnx"],
                "compile": ["compile", MODEL, "--bs", "1", "--onnx", "m.onnx", "--out", "c1", "--params",
                            ROOT / "params.yaml"],
                "predict": ["predict", MODEL, "--onnx", "m.onnx", "--data", "photos", "--out", "l.npy"]}[verb]
        r = omzoo(tmp, *args, timeout=60)
        if r.returncode == 124:
            return False, "hung (killed after 60 s)"
        return one_line(r, verb, "m.onnx", "FIFO" if kind == "fifo" else "character device")
    return case


def r10_metric_value(key: str, value: str) -> Callable[[Path, Shared], Outcome]:
    """One metrics file whose `key` holds `value` (JSON): report names the file and the key, never a plot error."""
    def case(tmp: Path, s: Shared) -> Outcome:
        raw = yaml.safe_load((ROOT / "params.yaml").read_text())
        models = list(raw["models"])
        for m in models:
            for bs in raw["batch_sizes"]:
                path = tmp / "metrics/bench" / f"{m}-{bs}-fp32.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps({"bs": bs, "throughput_compute_ips": 100.0 * bs,
                                            "throughput_compute_ci_low": 90.0 * bs,
                                            "throughput_compute_ci_high": 110.0 * bs}))
        bad = tmp / f"metrics/bench/{models[2]}-8-fp32.json"
        bad.write_text(json.dumps({**json.loads(bad.read_text()), key: json.loads(value)}))
        r = omzoo(tmp, "report", "--root", tmp, "--out", "rep", "--params", ROOT / "params.yaml")
        return one_line(r, "report", bad.relative_to(tmp).as_posix(), key)
    return case


def r1_dvc_name(section: str, target: str) -> Callable[[Path, Shared], Outcome]:
    """A `models:` or `datasets:` key holding shell syntax, through `dvc repro <stage>@<key>` (no -s): DVC pastes the
    key into the command, but the toolkit stage, which every such stage depends on, checks params.yaml first and
    names the key; no shell ever runs the command."""
    def case(tmp: Path, s: Shared) -> Outcome:
        key = f"x;touch {PWNED};echo"
        entry = {"checkpoint": "", "pixels": "cifar32"} if section == "models" else {"data": "d", "labels": "d"}
        dvc_checkout(tmp, lambda p: p[section].update({key: entry}))
        r = run([BIN / "dvc", "repro", "-q", f"{target}@{key}"], tmp)
        ok, got = ran_nothing(r, tmp, f"dvc repro {target}@<key>")
        named = f"{section}: the key '{key}' is not a plain identifier" in r.stdout + r.stderr
        return ok and named, f"{got}; key named: {named}"
    return case


def r2_link_data(kind: str) -> Callable[[Path, Shared], Outcome]:
    """`make link-data` where data/raw/<name> is the user's own folder or file: refused, left exactly as it was."""
    def case(tmp: Path, s: Shared) -> Outcome:
        raw = tmp / "data" / "raw"
        (tmp / "store").mkdir()
        if kind == "folder":
            (raw / "imagenet").mkdir(parents=True)
            (raw / "imagenet" / "NOTES.txt").write_text("notes\n")
        else:
            raw.mkdir(parents=True)
            (raw / "cifar-10-batches-py").write_text("precious\n")
        before = tree(raw)
        r = make(tmp, "link-data", f"{'IMAGENET' if kind == 'folder' else 'CIFAR'}={tmp / 'store'}")
        kept = tree(raw) == before and not any(p.is_symlink() for p in raw.rglob("*"))
        ok = r.returncode != 0 and kept and "exists and is not a link" in r.stderr
        return ok, f"exit {r.returncode}: {'left as it was' if kept else 'CHANGED'}; {last(r)}"
    return case


def r5_every_entry(layout: str, skip_bad: bool) -> Callable[[Path, Shared], Outcome]:
    """Every entry under the data folder is read or listed, in every layout: a labelled flat folder's sub-folders and
    hidden files, what a folder holding cifar-10-batches-py/ holds beside it, a hidden file in predict's folder."""
    def case(tmp: Path, s: Shared) -> Outcome:
        photos = tmp / "photos"
        if layout == "labelled flat folder: a sub-folder and a hidden image":
            images(photos, ["a.png", "b.png", ".e.png"], size=40)
            images(photos / "more", ["c.png", "d.png"], size=40)
            (tmp / "labels.txt").write_text("a.png 1\nb.png 2\n")
            r = omzoo(tmp, "preprocess", "--pixels", "bilinear224", "--data", "photos", "--labels", "labels.txt",
                      "--out", "out", "--quiet", "--params", ROOT / "params.yaml",
                      *(["-S", "preprocess.skip_bad=true"] if skip_bad else []))
            manifest = tmp / "out" / "manifest.json"
            made = json.loads(manifest.read_text()) if r.returncode == 0 and manifest.is_file() else None
            rows, listed, got_rows = 2, ["more/", ".e.png"], made and made["count"]
            text = r.stdout + r.stderr + json.dumps(made and made["skipped"])
        else:
            if layout == "cifar-10-batches-py/ beside images and a class folder":
                shutil.copytree(s.sample / "cifar-10-batches-py", photos / "cifar-10-batches-py")
                images(photos, ["a.png", "b.png"])
                images(photos / "cats", ["c.png"])
                rows, listed = 64, ["a.png", "b.png", "cats/"]
            elif layout == "an image inside the CIFAR batches folder":
                shutil.copytree(s.sample / "cifar-10-batches-py", photos)
                images(photos, ["a.png"])
                rows, listed = 64, ["a.png"]
            else:  # a hidden image in predict's unlabelled folder
                images(photos, ["a.png", "b.png", ".c.png"])
                rows, listed = 2, [".c.png"]
            r, got_rows = predicted(tmp, s, *(["--skip-bad"] if skip_bad else []))
            text = r.stdout + r.stderr
        return strays_judged(r, text, got_rows, rows, listed, skip_bad)
    return case


def _cifar_batch(tmp: Path, extra: dict) -> Path:
    (tmp / "cifar").mkdir()
    batch = {"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1, 2, 3], **extra}
    (tmp / "cifar" / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    return tmp / "cifar"


def r9_cifar_dag(tmp: Path, s: Shared) -> Outcome:
    """A 19 KB test_batch whose batch_label nests 40 levels of [L, L] (2**40 paths): each list walked once."""
    nested: list = []
    for _ in range(40):
        nested = [nested, nested]
    _cifar_batch(tmp, {"batch_label": nested})
    start = time.monotonic()
    r = omzoo(tmp, "predict", MODEL, "--onnx", s.tiny, "--data", "cifar", "--out", "l.npy", timeout=60)
    took = time.monotonic() - start
    return r.returncode == 0 and took < 30, f"exit {r.returncode} in {took:.1f} s; {last(r)}"


def r9_cifar_entries(tmp: Path, s: Shared) -> Outcome:
    """A 20 MB test_batch holding a list of 10 million and one entries: refused by count, naming the file."""
    _cifar_batch(tmp, {"batch_label": [0] * 10_000_001})
    r = omzoo(tmp, "predict", MODEL, "--onnx", s.tiny, "--data", "cifar", "--out", "l.npy", timeout=120)
    return one_line(r, "predict", "test_batch", "more than 10000000 entries")


def r10_decoder_warning(kind: str) -> Callable[[Path, Shared], Outcome]:
    """Pillow warns while decoding: a palette PNG with byte transparency (harmless: decoded, nothing printed), an ICO
    named .png whose directory gives another size (refused in one line naming it); no library text on stderr."""
    def case(tmp: Path, s: Shared) -> Outcome:
        (tmp / "one").mkdir()
        rgb = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
        if kind == "palette":
            Image.fromarray(rgb).convert("P").save(tmp / "one" / "t.png", transparency=bytes([0] * 10 + [255] * 246))
        else:
            Image.fromarray(rgb).save(tmp / "one" / "t.png", format="ICO", sizes=[(32, 32)])
            data = bytearray((tmp / "one" / "t.png").read_bytes())
            data[6:8] = bytes([16, 16])
            (tmp / "one" / "t.png").write_bytes(bytes(data))
        onnx = tiny_onnx(tmp / "s.onnx", 224, 1000, model="scnet50_v1d")
        r = omzoo(tmp, "predict", "scnet50_v1d", "--onnx", onnx, "--data", "one", "--out", "l.npy")
        leaked = [ln for ln in r.stderr.replace("\r", "\n").splitlines() if "Warning" in ln or "PIL/" in ln]
        if kind == "palette":
            return r.returncode == 0 and not leaked, f"exit {r.returncode}; leaked: {leaked or 'nothing'}"
        named = [ln.strip() for ln in r.stderr.splitlines() if "t.png" in ln and "the decoder warned" in ln]
        ok = r.returncode != 0 and len(named) == 1 and "Traceback" not in r.stderr and not leaked
        return ok, f"exit {r.returncode}: {short(named[0] if named else last(r), 90)}; leaked: {leaked or 'nothing'}"
    return case


ROUND2: list[tuple[str, str, Callable[[Path, Shared], Outcome]]] = [
    # 1 shell injection
    ("R1 make compare BASE=main \"HEAD=x;{touch,pwned};echo\" FAIL_ON=regression", "non-zero, nothing run",
     r1_make("compare", "BASE=main", "HEAD=x;{touch,pwned};echo", "FAIL_ON=regression", repo=True)),
    ("R1 make compare BASE='main;touch pwned'", "non-zero, nothing run",
     r1_make("compare", "BASE=main;touch pwned", repo=True)),
    ("R1 make compare BASE='$(shell touch pwned)'", "non-zero, nothing run (make does not expand it)",
     r1_make("compare", "BASE=$(shell touch pwned)", repo=True)),
    ("R1 make compare FAIL_ON='regression; touch pwned'", "non-zero, nothing run",
     r1_make("compare", "BASE=main", "FAIL_ON=regression; touch pwned", repo=True)),
    ("R1 make bench BS=\"1'; touch pwned; '\"", "non-zero, nothing run", r1_make("bench", "BS=1'; touch pwned; '")),
    ("R1 make bench MODEL=\"x' ; touch pwned ; '\"", "non-zero, nothing run",
     r1_make("bench", "BS=1", "MODEL=x' ; touch pwned ; '")),
    ("R1 make doctor BACKEND='$(touch pwned)'", "non-zero, nothing run", r1_make("doctor", "BACKEND=$(touch pwned)")),
    ("R1 make link-data IMAGENET='x;touch pwned'", "non-zero, nothing run",
     r1_make("link-data", "IMAGENET=x;touch pwned")),
    ("R1 dvc repro weights: checkpoint checkpoints/ran92$v2.pth", "that very file is read",
     r1_dvc_checkpoint("ran92$v2.pth", exists=True)),
    ("R1 dvc repro weights: checkpoint holding '\"; touch pwned; \"'", "one line naming the path, nothing run",
     r1_dvc_checkpoint('x"; touch pwned; echo ".pth', exists=False)),
    ("R1 dvc repro preprocess: dataset folder cifar$(touch pwned)", "that folder is read, nothing run",
     r1_dvc_dataset),
    ("R1 dvc.yaml pastes only identifier values into commands", "model ids, pixels, batch sizes only",
     r1_dvc_static),
    # 2 ownership
    ("R2 preprocess --out <web-app folder with a manifest.json>", "refused, folder intact",
     r2_foreign("preprocess", "manifest.json")),
    ("R2 compile --out <folder with a meta.json of its own>", "refused, folder intact",
     r2_foreign("compile", "meta.json")),
    ("R2 sample-data --out <folder with a SAMPLE.json of its own>", "refused, folder intact",
     r2_foreign("sample-data", "SAMPLE.json")),
    ("R2 report --out <folder with the user's summary.md>", "refused, folder intact",
     r2_foreign("report", "summary.md")),
    ("R2 compare --plots-only --out <folder with the user's index.html>", "refused, folder intact",
     r2_foreign("compare", "index.html")),
    ("R2 infer --out <folder with the user's predictions.json>", "refused, folder intact", r2_infer_foreign),
    ("R2 compare main --out <folder with the user's compare.md>", "refused, folder intact", r2_compare_foreign),
    ("R2 preprocess --out <symlink to the user's folder>", "refused, link and folder intact",
     r2_symlink("preprocess")),
    ("R2 sample-data --out <symlink to the user's folder>", "refused, link and folder intact",
     r2_symlink("sample-data")),
    ("R2 report --out <symlink to the user's folder>", "refused, link and folder intact", r2_symlink("report")),
    ("R2 omzoo's own outputs written again (infer, report)", "exit 0 every time", r2_own_again),
    # 3 output = input
    *[(f"R3 {v}", "refused before anything runs, the input intact", r3_same(v)) for v in (
        "predict --out <its --onnx>", "predict --out <a hard link of its --onnx>", "predict --out <one of its images>",
        "export --out <its --checkpoint>", "export --info <its --checkpoint>",
        "weights --trust-checkpoint --out <its checkpoint>", "simplify --out <its input>",
        "compile --out <its --onnx>", "bench --out <inside its --compiled>")],
    # 4 atomic results
    ("R4 bench: its --info cannot be written (a folder there)", "non-zero, old rounds and metrics kept",
     r4_bench("folder")),
    ("R4 bench: the file size limit stops the info file", "non-zero, old rounds and metrics kept", r4_bench("size")),
    ("R4 report: the plot cannot be written (file size limit)", "non-zero, old summary, csv and plot kept", r4_report),
    ("R4 infer: logits cannot be written (file size limit)", "non-zero, old logits and predictions kept", r4_infer),
    ("R4 sweep (make bench BS=16): params.yaml on a full disk", "non-zero naming params.yaml, the file whole",
     r4_sweep),
    ("R4 weights: its --info cannot be written", "non-zero, no checkpoint written", r4_pair("weights")),
    ("R4 export: its --info cannot be written", "non-zero, no ONNX written", r4_pair("export")),
    ("R4 simplify: its --info cannot be written", "non-zero, no ONNX written", r4_pair("simplify")),
    ("R4 evaluate: its --info cannot be written", "non-zero, no metrics written", r4_evaluate),
    # 5 discovery
    *[(f"R5 predict: {layout}{' --skip-bad' if skip else ''}",
       "the strays listed, the images scored once" if skip else "refused, every stray named",
       r5_discovery(layout, skip))
      for layout in ("loose images beside one subfolder", "gif, jfif and txt in class folders",
                     "a symlink loop in a class folder", "two links to one folder", "a dangling link named c.png")
      for skip in (False, True) if not (layout == "a dangling link named c.png" and not skip)],
    ("R5 preprocess: a .txt in a labelled flat folder", "refused, the file listed", r5_labelled_flat),
    # 6 labels and pixels
    ("R6 predict ran92 with label 500 (10 classes)", "refused naming line 2, 0..9", label_file_case("500", "0..9")),
    ("R6 predict with label 10 (10 classes)", "refused naming line 2", label_file_case("10", "0..9")),
    ("R6 labels file: 1_0", "refused: not an integer", label_file_case("1_0", "not an integer")),
    ("R6 labels file: ٣ (Arabic-Indic three)", "refused: not an integer", label_file_case("٣", "not an integer")),
    ("R6 labels file: +3", "refused: not an integer", label_file_case("+3", "not an integer")),
    ("R6 preprocess: CIFAR label 10, batches.meta 10 names", "refused naming row 5", r6_cifar_label(10)),
    ("R6 preprocess: CIFAR label 10, batches.meta 11 names", "refused: the models have 10 classes",
     r6_cifar_label(11)),
    ("R6 preprocess bilinear224: label 1000", "refused naming line 1, 0..999", r6_label_bound_preprocess),
    ("R6 evaluate: shards holding label 10 for the 10-class model", "refused naming the image", r6_evaluate_label),
    ("R6 predict ran92: an ImageFolder of 11 classes", "refused: 11 folders, 10 classes", r6_imagefolder_classes),
    ("R6 a 16-bit grayscale PNG", "its 8-bit values, not white", r6_16bit),
    # 7 checkpoints
    *[(f"R7 a {dt} tensor where a float weight is", "refused naming the key and dtype", r7_dtype(dt))
      for dt in (torch.int64, torch.int8, torch.bool, torch.complex64)],
    ("R7 both module.K and K in one file", "refused naming the key", checkpoint_case(_both_prefixes, "module.")),
    ("R7 a deflated member inflating to 256 MB", "refused before inflating", checkpoint_case(_deflated, "compressed")),
    ("R7 a stored member declaring 2 GB", "refused before reading", checkpoint_case(_lying_size, "declares")),
    ("R7 a meta tensor", "refused naming the key", checkpoint_case(_meta, "meta tensor")),
    ("R7 a sparse tensor", "refused naming the key", checkpoint_case(_sparse, "sparse")),
    ("R7 an int key", "refused naming the key", checkpoint_case(_int_key, "key 7")),
    # 8 params
    ("R8 a second bench: section", "one line: duplicate key bench",
     params_case("weights", "bench:\n  rounds: 3\n", "params.yaml", "duplicate key \"bench\"")),
    ("R8 a model listed twice", "one line: duplicate key", params_case(
        "weights", "", "params.yaml", "duplicate key \"ran92_cifar10\"",
        replace=("  ran92_cifar10: {", "  ran92_cifar10: {checkpoint: x.pth, pixels: cifar32}\n  ran92_cifar10: {"))),
    ("R8 misspelt section bnech:", "one line naming bnech",
     params_case("bench", "bnech:\n  rounds: 2\n", "params.yaml", "bnech")),
    ("R8 top-level batch_size:", "one line naming batch_size",
     params_case("bench", "batch_size: 8\n", "params.yaml", "batch_size")),
    ("R8 non-ASCII section bénch:", "one line naming bénch",
     params_case("bench", "bénch:\n  rounds: 2\n", "params.yaml", "bénch")),
    ("R8 report.platforms: 310P (a string)", "one line naming report.platforms", params_case(
        "report", "", "report.platforms", "list", replace=('  platforms: [310P, "310", T4]', "  platforms: 310P"))),
    ("R8 onnxruntime.threads: -3", "one line naming the key", params_case(
        "compile", "", "onnxruntime.threads", replace=("  threads: 0           # 0 = one per core", "  threads: -3"))),
    ("R8 onnxruntime.providers: TensorRT (a string)", "one line naming the key", params_case(
        "compile", "", "onnxruntime.providers", replace=("  providers: auto", "  providers: TensorRT"))),
    ("R8 onnxruntime.level: fastest", "compile refuses it naming the key", params_case(
        "compile", "", "onnxruntime.level", "fastest", replace=("  level: all", "  level: fastest"))),
    ("R8 bench.level: 1.5", "one line naming bench.level", params_case(
        "bench", "", "bench.level", replace=("  level: 0.95\n\nreport", "  level: 1.5\n\nreport"))),
    ("R8 bench.seed: -1", "one line naming bench.seed", params_case(
        "bench", "", "bench.seed", replace=("  seed: 0\n  rounds: 10", "  seed: -1\n  rounds: 10"))),
    ("R8 bench.rounds: 0", "one line naming bench.rounds", params_case(
        "bench", "", "bench.rounds", replace=("  rounds: 10 ", "  rounds: 0 "))),
    ("R8 weights.seed: \"0\" (a string)", "one line naming weights.seed", params_case(
        "weights", "", "weights.seed", replace=("  seed: 0\n  # sha256", "  seed: \"0\"\n  # sha256"))),
    # 9 hangs and memory
    ("R9 a FIFO named c.png in predict's folder (--skip-bad)", "listed as a FIFO, 2 rows, no hang", r9_fifo_image),
    *[(f"R9 a FIFO as {w}", "one line naming it, no hang", r9_fifo_arg(w)) for w in ("--labels", "--params",
                                                                                      "test_batch")],
    ("R9 a link to /dev/zero as --data zero.png", "refused as a character device, no hang", r9_fifo_arg("--data")),
    ("R9 a 103-byte 6000x1 PNG (predict)", "refused quickly, no 1.6 GB resize", r9_wide(6000, 1)),
    ("R9 predict --bs 1000000000 on 3 images", "one line naming --bs, no 2.8 TiB padding", r9_huge_batch("predict")),
    ("R9 compile --bs 5000", "one line naming --bs and the limit", r9_huge_batch("compile")),
    ("R9 batch_sizes: [1, 8, 100000000]", "one line naming batch_sizes", r9_huge_batch("params")),
    ("R9 a 1x6000 PNG (predict)", "refused quickly", r9_wide(1, 6000)),
    ("R9 a 6000x1 PNG (preprocess)", "refused naming the resize", r9_preprocess_wide),
    ("R9 a PNG header declaring 100000x100000", "refused from the header", r9_bomb_header),
    ("R9 a FIFO as --checkpoint", "one line naming it a FIFO, no hang", checkpoint_case(_fifo, "FIFO")),
    # 10 messages
    ("R10 a folder as --checkpoint", "one line: is a folder", checkpoint_case(_folder, "folder")),
    ("R10 a link to /dev/zero as --checkpoint", "one line: a character device",
     checkpoint_case(_dev_zero, "character device")),
    ("R10 a CIFAR batch nested 100000 deep", "one line: nested too deeply", r10_nested),
    ("R10 report: one corrupt metrics file of ten", "one line naming that file", r10_corrupt_metrics("{not json")),
    ("R10 report: a NaN throughput", "one line naming the file, never starred best",
     r10_corrupt_metrics('{"bs": 8, "throughput_compute_ips": NaN}')),
    ("R10 report: a metrics file holding a list", "one line naming the file", r10_corrupt_metrics("[1, 2]")),
    ("R10 predict --top -2", "argparse: must be a positive integer", r10_top),
    ("R10 Ctrl-C in preprocess with 2 workers", "one line, no worker traceback", r10_sigint("preprocess")),
    ("R10 Ctrl-C in predict with 2 workers", "one line, no worker traceback", r10_sigint("predict")),
    ("R10 Ctrl-C as preprocess forks its first worker", "one line, no worker traceback",
     r10_sigint("preprocess", settle=0.0, children=1)),
    ("R10 Ctrl-C as predict forks its first worker", "one line, no worker traceback",
     r10_sigint("predict", settle=0.0, children=1)),
    ("R10 simplify on a full disk", "names out/s.onnx, not a temp file", r10_write_names_output("simplify")),
    ("R10 sample-data on a full disk", "names out/sample, not a temp folder", r10_write_names_output("sample-data")),
    # third pass: checkpoints (7), params strictness (8), hangs and memory (9), messages (10)
    ("R7 300 zip entries naming one member's 4 MB", "refused before reading: members share bytes",
     checkpoint_case(_repeated_members, "share bytes")),
    ("R7 a 1.5 KB stride-0 fp16 view of 400 M elements", "refused naming the key, nothing materialised",
     checkpoint_case(_expanded, "junk", "storage")),
    ("R7 a model weight of the right shape expanded from one element", "refused naming the key",
     checkpoint_case(_expanded_weight, "elements over a storage")),
    ("R8 an 8 KB YAML alias bomb in report.platforms", "one short line naming the key, no expansion",
     params_case("report", "", "params.yaml", "report.platforms", "anchor",
                 replace=('platforms: [310P, "310", T4]', f"platforms: {_alias_bomb(9)}"))),
    ("R8 a YAML merge key (<<) in bench:", "one line naming it", params_case(
        "bench", "", "params.yaml", "bench.<<", "merge key", replace=("\nbench:\n", "\nbench:\n  <<: {rounds: 3}\n"))),
    ("R8 models.ran92_cifar10.options.nearest_resize: \"false\" (a string)", "one line naming the option",
     params_case("weights", "", "models.ran92_cifar10.options.nearest_resize", "true or false",
                 replace=("options: {nearest_resize: false}", 'options: {nearest_resize: "false"}'))),
    ("R8 infer.batch_size: true", "one line naming infer.batch_size", params_case(
        "weights", "", "infer.batch_size", replace=("  batch_size: 8 ", "  batch_size: true "))),
    ("R8 infer.batch_size: 8.0", "one line naming infer.batch_size", params_case(
        "weights", "", "infer.batch_size", replace=("  batch_size: 8 ", "  batch_size: 8.0 "))),
    ("R8 compare.min_efect (read by weights)", "one line naming it", params_case(
        "weights", "", "compare", "min_efect", replace=("  min_effect: 0.03 ", "  min_efect: 0.03 "))),
    ("R8 torch.devise with backend onnxruntime", "one line naming it", params_case(
        "weights", "", "torch", "devise", replace=("  device: auto ", "  devise: auto "))),
    *[(f"R9 a {'FIFO' if kind == 'fifo' else 'link to /dev/zero'} as {verb}'s ONNX file", "one line naming it, no hang",
       r9_onnx_not_regular(verb, kind)) for verb in ("simplify", "compile", "predict") for kind in ("fifo", "zero")],
    *[(f"R10 report: throughput_compute_ips {v}", "one line naming the file and the key",
       r10_metric_value("throughput_compute_ips", v)) for v in ('"fast"', "true", "-5", "null", "1e308", "10000.0")],
    ("R10 report: e2e_ms.p99 a string", "one line naming the file and the key",
     r10_metric_value("e2e_ms", '{"p99": "slow"}')),
    # third pass: names dvc.yaml pastes (1), link-data (2), discovery (5), batch walks (9), decoder warnings (10)
    ("R1 dvc repro weights@<models key 'x;touch pwned;echo'>", "refused by the toolkit stage naming it, nothing run",
     r1_dvc_name("models", "weights")),
    ("R1 dvc repro export@<models key 'x;touch pwned;echo'>", "refused by the toolkit stage naming it, nothing run",
     r1_dvc_name("models", "export")),
    ("R1 dvc repro preprocess@<datasets key 'x;touch pwned;echo'>", "refused by the toolkit stage, nothing run",
     r1_dvc_name("datasets", "preprocess")),
    ("R2 make link-data IMAGENET=... over the user's folder data/raw/imagenet", "refused, folder left as it was",
     r2_link_data("folder")),
    ("R2 make link-data CIFAR=... over the user's file data/raw/cifar-10-batches-py", "refused, file left as it was",
     r2_link_data("file")),
    *[(f"R5 {layout}{' (skipped)' if skip else ''}",
       "the strays listed, the rest read once" if skip else "refused, every stray named", r5_every_entry(layout, skip))
      for layout in ("labelled flat folder: a sub-folder and a hidden image",
                     "cifar-10-batches-py/ beside images and a class folder",
                     "an image inside the CIFAR batches folder", "a hidden image in predict's folder")
      for skip in (False, True)],
    ("R9 a 19 KB CIFAR batch nesting 40 levels of [L, L] (2**40 paths)", "read in well under 30 s, no memory blow-up",
     r9_cifar_dag),
    ("R9 a CIFAR batch holding a list of 10 000 001 entries", "one line naming test_batch and the limit",
     r9_cifar_entries),
    ("R10 a palette PNG with byte transparency (Pillow warns)", "decoded, no library warning on stderr",
     r10_decoder_warning("palette")),
    ("R10 an ICO named .png whose header gives another size (Pillow warns)", "one line naming the image, no warning",
     r10_decoder_warning("ico")),
    ("R2 sample-data --out out beside a user's out.old-2023, out.tmp-99999", "both kept: not temps omzoo made",
     r2_lookalike_temps("sample-data")),
    ("R2 weights --out w.pth beside a user's .w.pth.tmp-99999-1.pth", "kept: not a temp omzoo made",
     r2_lookalike_temps("weights")),
    *[(f"R2 evaluate {flag} <a user's folder with fp32.json>", "refused, the folder as it was",
       r2_evaluate_foreign(flag)) for flag in ("--out", "--info")],
    *[(f"R3 {verb}: the default --info (<out>.json) is the input", "refused, the input intact", r3_default_info(verb))
      for verb in ("weights", "export", "simplify")],
    *[(f"R3 {verb} --out params.yaml (read without --params)", "refused, params.yaml intact",
       r3_implicit_params(verb)) for verb in ("toolkit", "weights")],
    ("R3 report --out metrics/eval/extra (inside the metrics it reads)", "refused, nothing written",
     r3_into_read_folder("report")),
    ("R3 compare --plots-only --out reports (holds its plot data)", "refused, nothing written",
     r3_into_read_folder("compare")),
    *[(f"R4 {verb} --out w.json (= the default --info)", "refused up front, nothing written",
       r4_out_is_default_info(verb)) for verb in ("weights", "simplify")],
    ("R4 compare --plots-only, index.html cannot be replaced", "refused, throughput.png not committed alone",
     r4_plots_together),
    ("R4 sweep rewrites params.yaml of mode 640", "mode kept", r4_keeps_mode),
    *[(f"R10 sample-data --out {v!r}", "one clear line", r10_nameless_out(v)) for v in (".", "", "/")],
]


CASES += ROUND2


def main(argv: list[str]) -> int:
    """Every case, or those whose name holds one of `argv` (e.g. `R4 ` for one class of the second pass)."""
    cases = [c for c in CASES if not argv or any(a in c[0] for a in argv)]
    rows, handled = [], 0
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="omzoo-faults-") as t:
        root = Path(t)
        shared = Shared(root / "shared")
        for k, (case, expected, fn) in enumerate(cases):
            tmp = root / f"case{k:02d}"
            tmp.mkdir()
            try:
                ok, got = fn(tmp, shared)
            except Exception as e:  # noqa: BLE001 - a case that breaks the script is a case not handled
                ok, got = False, f"the case itself failed: {type(e).__name__}: {short(str(e))}"
            handled += ok
            rows.append([case, expected, f"{'handled' if ok else 'NOT HANDLED'}: {got}"])
            print(f"[{time.monotonic() - start:5.0f} s] {'ok ' if ok else 'NOT'} {case}", file=sys.stderr, flush=True)
    print(tabulate(rows, ["case", "expected", "got"], tablefmt="github"))
    print(f"\n{handled}/{len(cases)} handled")
    return 0 if handled == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
