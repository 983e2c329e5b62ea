"""The `omzoo` command: one subcommand per verb with --help, and errors as one line, never a traceback."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cli_helpers import error_line, omzoo

from omzoo import cli
from omzoo.core import paths, zoo
from omzoo.core.model import random_checkpoint
from omzoo.data.sample import write_sample

MODEL = "ran92_cifar10"
ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"


@pytest.mark.parametrize("verb", list(cli.VERBS))
def test_every_verb_has_help(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    """With -S and the params keys the verb reads; --out, never --output, for what it writes."""
    with pytest.raises(SystemExit) as e:
        cli.main([verb, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: omzoo " + verb in out and "-S KEY=VALUE, --set-param KEY=VALUE" in out and "--output" not in out
    text = " ".join(out.split())
    refused = getattr(importlib.import_module(cli.VERBS[verb]), "NO_OVERRIDES", "")
    if refused:  # sweep: -S is refused, with the reason, and the keys it reads still listed
        assert f"not taken: {' '.join(refused.split())}; omzoo {verb} reads {', '.join(cli.READS[verb])}" in text
    else:
        assert (f"omzoo {verb} reads {', '.join(cli.READS[verb])}" if cli.READS[verb] else
                f"omzoo {verb} reads no params") in text
    assert ("--params PARAMS" in out) == bool(cli.READS[verb] and verb not in cli.FROM_REVISIONS)


def test_every_verb_declares_what_it_reads() -> None:
    assert list(cli.READS) == list(cli.VERBS)


def _name(expr: str, over: dict[str, str]) -> str:
    """A dvc.yaml `${expr}` in the names of cli.READS: `over` maps the stage's foreach/matrix names."""
    head, _, rest = expr.partition(".")
    return over[expr] if expr in over else f"{over[head]}.{rest}" if head in over and rest else expr


def _names(text: str, over: dict[str, str]) -> str:
    return re.sub(r"\$\{([^}]+)\}", lambda m: _name(m.group(1), over), text)


#: keys a verb reads that its stage deliberately leaves out of `params:`, and why
NOT_TRACKED = {"preprocess.workers": "decoder processes change the speed, never the shards"}


def test_dvc_tracks_what_each_verb_reads() -> None:
    """Each stage's `params:` hold every key its verb reads (cli.READS) and nothing it does not read, except the
    entries that its command line interpolates (an item of foreach, `${infer.batch_size}`)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        verb = body["cmd"].split()[1]
        over = {"backend": "<backend>"}
        if "foreach" in stage:
            source = stage["foreach"].strip("${}")
            one = {"models": "<model>", "datasets": "<pixels>"}[source]
            over |= {"key": one, "item": f"{source}.{one}"}
        for var, source in stage.get("matrix", {}).items():
            over[f"item.{var}"] = {"${models}": "<model>", "${batch_sizes}": "<bs>",
                                   "${precisions}": "<precision>"}[source]
        tracked = {_names(p, over) for p in body.get("params", [])}
        used = {_name(e, over) for e in re.findall(r"\$\{([^}]+)\}", body["cmd"] + " ".join(body.get("deps", [])))}
        reads = set(cli.READS[verb]) - set(NOT_TRACKED)
        untracked = {r for r in reads if not any(r == t or r.startswith(t + ".") for t in tracked)}
        assert not untracked, f"stage {name}: omzoo {verb} reads {sorted(untracked)}, which `params:` lacks"
        extra = {t for t in tracked if not any(t == r or t.startswith(r + ".") for r in reads)
                 and not any(u == t or u.startswith(t + ".") for u in used)}
        assert not extra, f"stage {name}: `params:` lists {sorted(extra)}, which omzoo {verb} does not read"


def test_unknown_verb_lists_the_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["frobnicate"])
    assert "invalid choice" in capsys.readouterr().err


def test_console_script_reports_library_errors_without_traceback(tmp_path: Path) -> None:
    params = Path(__file__).resolve().parents[1] / "params.yaml"
    r = subprocess.run([sys.executable, "-m", "omzoo.cli", "weights", MODEL, "--out", str(tmp_path / "w.pth"),
                        "--checkpoint", str(tmp_path / "missing.pth"), "--params", str(params)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "omzoo weights: error:" in r.stderr and "missing.pth: no such checkpoint file" in r.stderr
    assert "Traceback" not in r.stderr


def test_unexpected_errors_are_one_line_too(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    """A bug still ends as one line naming the exception (the traceback only on request)."""
    import omzoo.stages.models

    def boom(args):
        raise KeyError("surprise")

    monkeypatch.setattr(omzoo.stages.models, "run", boom)
    assert cli.main(["models"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "omzoo models: error: KeyError: 'surprise'"


def test_a_text_file_as_checkpoint_is_one_line_naming_it(tmp_path: Path) -> None:
    text = tmp_path / "model_best.pth.tar"
    text.write_text("<html>404 Not Found</html>\n")  # what a failed download saves
    line = error_line(omzoo("weights", MODEL, "--checkpoint", text, "--out", tmp_path / "w.pth"), "weights")
    assert line == (f"omzoo weights: error: {text}: cannot be read as a torch checkpoint (not a zip archive or a "
                    "pickle, which is what torch.save writes; it starts with b'<html>404 Not Fo')")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_best.pth.tar"]


def test_an_unknown_model_is_one_line_naming_the_key(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS.read_text().replace("  ran92_cifar10: {", "  ran92_cifar100: {"))
    line = error_line(omzoo("weights", MODEL, "--out", tmp_path / "w.pth", "--params", params), "weights")
    assert line.startswith(f"omzoo weights: error: {params}: models.ran92_cifar100: unknown model 'ran92_cifar100'; ")
    line = error_line(omzoo("weights", "ran92", "--out", tmp_path / "w.pth", "--params", PARAMS), "weights")
    assert line.startswith("omzoo weights: error: unknown model 'ran92'; registered: scnet50_v1d, ")


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "w.pth"
    random_checkpoint(zoo.get(MODEL), path)
    return path


@pytest.mark.parametrize("verb", ["weights", "export", "preprocess"])
def test_a_full_disk_is_one_line_naming_the_output(tmp_path: Path, verb: str, random_weights: Path) -> None:
    """Every file is capped at 64 KiB (RLIMIT_FSIZE): the writes fail as on a full disk, the output is named."""
    write_sample(tmp_path / "s")
    out = tmp_path / "out" / {"weights": "w.pth", "export": "m.onnx", "preprocess": "shards"}[verb]
    args = {"weights": ["weights", MODEL, "--out", out],
            "export": ["export", MODEL, "--checkpoint", random_weights, "--out", out],
            "preprocess": ["preprocess", "--pixels", "cifar32", "--data", tmp_path / "s/cifar-10-batches-py",
                           "--out", out, "--quiet"]}[verb]
    line = error_line(omzoo(*args, "--params", PARAMS, max_file_bytes=64 << 10), verb)
    assert line == f"omzoo {verb}: error: {out}: cannot write: File too large"
    assert list(out.parent.iterdir()) == []  # neither the output nor a temp file is left


@pytest.mark.parametrize(("argv", "message"), [
    (["export", MODEL, "--checkpoint", "w.pth", "--out", "m.onnx", "--params", PARAMS, "-S", "bench.min_s=5"],
     f"-S bench.min_s=5: omzoo export does not read `bench.min_s` (it reads export, models.{MODEL})"),
    (["export", MODEL, "--checkpoint", "w.pth", "--out", "m.onnx", "--params", PARAMS, "-S", "export.input_dtyp=f"],
     f"{PARAMS} with -S export.input_dtyp=f: export: unknown key(s) ['input_dtyp']"),
    (["compile", MODEL, "--bs", "1", "--out", "c", "--params", PARAMS, "-S", "torch.device=cpu"],
     "-S torch.device=cpu: omzoo compile does not read `torch.device` (it reads backend, models"),
    (["infer", "--compiled", "c", "--shards", "s", "--out", "i", "-S", "bench.min_s=1"],
     "-S bench.min_s=1: omzoo infer does not read `bench.min_s` (it reads infer.batch_size, precisions)"),
    (["evaluate", MODEL, "--infer", "i", "--shards", "s", "--weights", "w", "--out", "e", "--info", "f", "-S",
      "infer.batch_size=1"], "-S infer.batch_size=1: omzoo evaluate reads no params; its settings are its arguments"),
    (["report", "--out", "r", "--params", PARAMS, "-S", "report.platforms"],
     "-S 'report.platforms': expected KEY=VALUE"),
    (["export", MODEL, "--checkpoint", "w.pth", "--out", "m.onnx", "--params", PARAMS, "-S",
      "models.scnet50_v1d.options.x=1"],  # another model's entry: this export never reads it
     "-S models.scnet50_v1d.options.x=1: omzoo export does not read `models.scnet50_v1d.options.x`"),
    (["doctor", "--params", PARAMS, "-S", "bench.rounds=0"],  # refused for what it names, before its value
     "-S bench.rounds=0: omzoo doctor does not read `bench.rounds`"),
])
def test_a_bad_override_is_one_line_naming_it(tmp_path: Path, argv: list[str | Path], message: str) -> None:
    line = error_line(omzoo(*argv, cwd=tmp_path), str(argv[0]))
    assert line.startswith(f"omzoo {argv[0]}: error: {message}")
    assert list(tmp_path.iterdir()) == []


def test_an_override_of_the_backend_moves_what_compile_may_set(tmp_path: Path) -> None:
    """`-S backend=torch` makes `torch.*` a key compile reads (it is refused above while the backend is ORT)."""
    checkpoint = tmp_path / "w.pth"
    random_checkpoint(zoo.get(MODEL), checkpoint)
    out = tmp_path / "c"
    assert cli.main(["compile", MODEL, "--bs", "2", "--checkpoint", str(checkpoint), "--out", str(out),
                     "--params", str(PARAMS), "-S", "backend=torch", "-S", "torch.channels_last=false"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["backend"] == "torch" and meta["options"]["channels_last"] is False


def test_a_size_flag_takes_positive_integers_only(tmp_path: Path) -> None:
    r = omzoo("compile", MODEL, "--bs", "0", "--out", tmp_path / "c")
    assert r.returncode == 2 and "argument --bs: batch size must be a positive integer, got '0'" in r.stderr


def test_dvc_pastes_only_identifier_values_into_commands() -> None:
    """DVC runs `cmd` through a shell: only values params validation reduces to ids and integers are pasted there."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    pasted = {e for st in stages.values() for e in re.findall(r"\$\{([^}]+)\}", st.get("do", st)["cmd"])}
    assert pasted <= {"key", "item.model", "item.bs", "item.pixels", "item.precision"}, pasted


def test_dvc_validates_params_before_any_command_pastes_a_name() -> None:
    """DVC pastes before omzoo runs: every stage that pastes a name depends on the file the toolkit stage (which
    pastes nothing) writes once params.yaml is valid, so DVC runs it first; the file is a plain cache: false out."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    checked = str(paths.PARAMS_CHECKED)
    toolkit = stages["toolkit"]
    assert "${" not in toolkit["cmd"] and f"--checked {checked}" in toolkit["cmd"] and toolkit["always_changed"]
    assert {checked: {"cache": False}} in toolkit["outs"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        assert ("${" in body["cmd"]) == (checked in body["deps"]), name


@pytest.mark.parametrize(("argv", "message"), [
    (["simplify", "m.onnx", "--out", "m.onnx"], "--out m.onnx: is the input --input m.onnx"),
    (["simplify", "m.onnx", "--out", "hard.onnx"], "--out hard.onnx: is the input --input m.onnx"),
    (["predict", MODEL, "--onnx", "m.onnx", "--data", "photos", "--out", "photos/a.png"],
     "--out photos/a.png: sits inside the input --data photos"),
    (["preprocess", "--pixels", "cifar32", "--data", "photos/sub", "--out", "photos"],
     "--out photos: would contain the input --data photos/sub"),
    # an output's default (--info <out>.json) is an output too: never the checkpoint, the ONNX file or --out itself
    (["weights", MODEL, "--checkpoint", "ck.json", "--out", "ck.pth"], "--info ck.json: is the input --checkpoint"),
    (["export", MODEL, "--checkpoint", "ck.json", "--out", "ck.onnx"], "--info ck.json: is the input --checkpoint"),
    (["simplify", "ck.json", "--out", "ck.onnx"], "--info ck.json: is the input --input ck.json"),
    (["weights", MODEL, "--checkpoint", "", "--out", "w.json"], "--info w.json: is also --out"),
    (["simplify", "m.onnx", "--out", "s.json"], "--info s.json: is also --out"),
    # the params file read without --params is an input
    (["toolkit", "--out", "params.yaml"], "--out params.yaml: is the params file params.yaml"),
    (["weights", MODEL, "--out", "params.yaml", "--info", "w.json"], "--out params.yaml: is the params file"),
    # what a verb reads that no argument names: report's metrics folder, the workspace plot's data
    (["report", "--out", "metrics/eval/extra"], "--out metrics/eval/extra: sits inside the metrics folder metrics"),
    (["compare", "--plots-only", "--out", "reports"], "--out reports: would contain the plot data"),
    # an output with no name of its own
    (["sample-data", "--out", "."], "--out .: names no file or folder of its own"),
    (["weights", MODEL, "--out", "w/..", "--checkpoint", ""], "--out w/..: names no file or folder of its own"),
])
def test_an_output_that_is_an_input_is_refused(tmp_path: Path, monkeypatch, capsys, argv, message) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos" / "sub").mkdir(parents=True)
    (tmp_path / "photos" / "a.png").write_bytes(b"png")
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    (tmp_path / "ck.json").write_bytes(b"checkpoint")
    (tmp_path / "metrics" / "eval").mkdir(parents=True)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "throughput.csv").write_text("model\n")
    params = (ROOT / "params.yaml").read_bytes()
    (tmp_path / "params.yaml").write_bytes(params)
    os.link(tmp_path / "m.onnx", tmp_path / "hard.onnx")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert (tmp_path / "m.onnx").read_bytes() == b"onnx" and (tmp_path / "photos" / "a.png").read_bytes() == b"png"
    assert (tmp_path / "ck.json").read_bytes() == b"checkpoint" and (tmp_path / "params.yaml").read_bytes() == params
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before  # nothing written


def test_an_empty_output_path_is_refused_as_empty(capsys: pytest.CaptureFixture[str]) -> None:
    """`--out ''` is not the current folder (Path('') would be '.'): argparse refuses it, naming the argument."""
    with pytest.raises(SystemExit) as e:
        cli.main(["sample-data", "--out", ""])
    assert e.value.code == 2
    assert "argument --out: an empty path names no file or folder" in capsys.readouterr().err
