"""Fault benchmark: every case of the reliability issue, run the way a user meets it, with what happened.

Each case runs in its own temporary directory through the real commands (`omzoo`, `dvc`, `make`) and is judged
on what they did: the exit status, the one error line (naming the file or key, no traceback), and the files left
behind. A case that is not handled is reported as such; nothing is skipped.

    .venv/bin/python benchmarks/bench_faults.py        # = make bench-faults

Offline, a few minutes on 2 cores: the models are ran92_cifar10 (32x32) and ONNX graphs built with onnx.helper.
Prints `case | expected | got` and `N/N handled`; exits 1 when a case is not handled.
"""

from __future__ import annotations

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


def run(cmd: list[str | Path], cwd: Path, max_file_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    """A command in `cwd` with the venv first on PATH. `max_file_bytes` caps every file it writes (RLIMIT_FSIZE,
    no root needed): writes past it fail as on a full disk (EFBIG; Python ignores SIGXFSZ)."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1"}
    env.pop("OMZOO_TRACEBACK", None)
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          preexec_fn=limit if max_file_bytes else None)


def omzoo(cwd: Path, *args: str | Path, max_file_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    return run([BIN / "omzoo", *args], cwd, max_file_bytes)


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


def tiny_onnx(path: Path, size: int = 32, classes: int = 10, weight: float = 0.5) -> Path:
    """ran92_cifar10's inputs and outputs (uint8 image [N,3,size,size] -> class [N,classes]) around a channel mean
    and a constant matrix of `weight`: NaN gives NaN logits."""
    graph = helper.make_graph(
        [helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
         helper.make_node("ReduceMean", ["f"], ["m"], axes=[2, 3], keepdims=0),
         helper.make_node("MatMul", ["m", "w"], ["class"])], "tiny",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", 3, size, size])],
        [helper.make_tensor_value_info("class", TensorProto.FLOAT, ["N", classes])],
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


# --- the cases, by the items ----------------------------------------------------------------------------


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
    key = f"{MODEL}-1"
    r = s.compile_tiny(tmp, f"models/compiled/{key}")
    if r.returncode != 0:
        return False, f"compile failed: {short(r.stderr)}"
    params(tmp, lambda p: p["bench"].update(min_iters="5"))
    for path in (f"metrics/bench/{key}.json", f"metrics/info/bench/{key}.json"):
        (tmp / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp / path).write_text('{"previous": "run"}\n')
    before = tree(tmp / "metrics")
    cmd = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["bench"]["cmd"].replace("${key}", key)
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
                        "with atomic_dir('c1', marker='meta.json') as t:\n    (t / 'model.onnx').write_bytes(b'x')\n"
                        "    print(t, flush=True)\n    time.sleep(600)\n", tmp)
    left = (tmp / f"c1.tmp-{pid}").is_dir()
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


def main() -> int:
    rows, handled = [], 0
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="omzoo-faults-") as t:
        root = Path(t)
        shared = Shared(root / "shared")
        for k, (case, expected, fn) in enumerate(CASES):
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
    print(f"\n{handled}/{len(CASES)} handled")
    return 0 if handled == len(CASES) else 1


if __name__ == "__main__":
    sys.exit(main())
