"""Strict loading of published checkpoint containers, and writing them (random weights, tests).

One loader for every container the five published files may use (MODELS.md §0.2): a plain state dict,
timm's `{'state_dict', 'args': Namespace, 'optimizer', 'amp', ...}`, SPACH's `{'model', 'model_ema', ...}`,
and legacy (pre-1.6, non-zip) pickles whose storages are tagged `cuda:0`. A wrong file never loads
"mostly": the error names the file, the container found and the first missing/unexpected keys.
"""

from __future__ import annotations

import argparse
import pickle
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from omzoo.io import atomic_write

#: Wrapper keys tried in order; EMA weights are never taken (published accuracy is non-EMA).
_WRAPPER_KEYS = ("state_dict", "model")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used for this model; the message says why."""


@dataclass
class Loaded:
    state_dict: dict[str, torch.Tensor]
    container: str  # what was found: "state_dict", "dict['state_dict']", "dict['model']"
    weights_only: bool  # whether the safe unpickler sufficed


def _deserialise(path: Path) -> tuple[Any, bool]:
    """torch.load onto the CPU; the safe unpickler first, the full one only if that fails."""
    torch.serialization.add_safe_globals([argparse.Namespace])
    try:
        return torch.load(path, map_location="cpu", weights_only=True), True
    except pickle.UnpicklingError:
        pass  # some optimizer/amp/args object outside the safe list: retry with the full unpickler
    except (EOFError, RuntimeError, OSError) as e:
        raise CheckpointError(f"{path}: cannot be read as a torch checkpoint ({type(e).__name__}: {e})") from e
    try:
        return torch.load(path, map_location="cpu", weights_only=False), False
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise CheckpointError(f"{path}: cannot be read as a torch checkpoint ({type(e).__name__}: {e})") from e


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def read_checkpoint(path: str | Path) -> Loaded:
    """Deserialise and unwrap to a float32 state dict with any `module.` prefix stripped."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    obj, weights_only = _deserialise(path)
    if _is_state_dict(obj):
        sd, container = obj, "state_dict"
    else:
        if not isinstance(obj, Mapping):
            raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state dict or checkpoint dict")
        for key in _WRAPPER_KEYS:
            if key in obj and _is_state_dict(obj[key]):
                sd, container = obj[key], f"dict[{key!r}]"
                break
        else:
            keys = ", ".join(map(str, list(obj)[:12]))
            raise CheckpointError(
                f"{path}: a dict without a state dict under 'state_dict' or 'model'; top-level keys: {keys}"
            )
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        k = k[len("module."):] if k.startswith("module.") else k
        out[k] = v.float() if v.is_floating_point() else v
    return Loaded(out, container, weights_only)


def _describe(keys: list[str], sd: Mapping[str, torch.Tensor], limit: int = 5) -> str:
    shown = [f"{k} {tuple(sd[k].shape)}" for k in keys[:limit]]
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(shown) + more


def load_strict(model: torch.nn.Module, path: str | Path) -> Loaded:
    """Load `path` into `model`; only a missing `num_batches_tracked` is tolerated (old torch omits it)."""
    loaded = read_checkpoint(path)
    sd = loaded.state_dict
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in sd if k not in expected]
    mismatched = [k for k in sd if k in expected and sd[k].shape != expected[k].shape]
    if missing or unexpected or mismatched:
        parts = [f"{path}: does not fit {type(model).__name__} (container: {loaded.container}, "
                 f"{len(sd)} tensors, model expects {len(expected)})"]
        if missing:
            parts.append(f"missing {len(missing)}: {_describe(missing, expected)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)}: {_describe(unexpected, sd)}")
        if mismatched:
            shapes = [f"{k} file {tuple(sd[k].shape)} vs model {tuple(expected[k].shape)}" for k in mismatched[:5]]
            parts.append(f"shape mismatch {len(mismatched)}: " + ", ".join(shapes))
        raise CheckpointError("; ".join(parts))
    result = model.load_state_dict(sd, strict=False)
    assert not result.unexpected_keys and all(k.endswith(".num_batches_tracked") for k in result.missing_keys)
    model.eval()
    return loaded


@contextmanager
def _tag_storages_as(location: str):
    """Make torch.save tag every storage with `location` (how a .cuda() model's pickle looks)."""
    entry = (0, lambda _obj: location, lambda _obj, _loc: None)
    registry = torch.serialization._package_registry
    registry.insert(0, entry)
    try:
        yield
    finally:
        registry.remove(entry)


def save_container(state_dict: Mapping[str, torch.Tensor], path: str | Path, container: str) -> None:
    """Write `state_dict` the way the published file for this container was written (MODELS.md).

    - state_dict: a plain OrderedDict (SCNet, SE-ResNeXt).
    - timm: timm's CheckpointSaver dict with an argparse.Namespace, optimizer and amp state (TResNet).
    - spach: DeiT/SPACH main.py dict with `model`, `model_ema` and args (sMLP); `model_ema` differs, so
      a loader that takes the EMA weights is caught.
    - legacy: pre-1.6 non-zip pickle without num_batches_tracked, storages tagged cuda:0 (RAN-92).
    """
    sd = dict(state_dict)
    if container == "state_dict":
        obj: Any = sd
    elif container == "timm":
        args = argparse.Namespace(model="tresnet_m", lr=0.1, amp=True, apex_amp=True)
        obj = {"epoch": 99, "arch": "tresnet_m", "state_dict": sd, "optimizer": {"state": {}, "param_groups": []},
               "version": 2, "args": args, "amp": {"loss_scaler0": {"loss_scale": 65536.0}}, "metric": 0.0}
    elif container == "spach":
        ema = {k: (v + 0.01 if v.is_floating_point() else v) for k, v in sd.items()}
        obj = {"model": sd, "model_ema": ema, "optimizer": {"state": {}}, "lr_scheduler": {}, "epoch": 299,
               "scaler": {"scale": 1024.0}, "args": argparse.Namespace(model="smlpnet_tiny")}
    elif container == "legacy":
        obj = {k: v for k, v in sd.items() if not k.endswith(".num_batches_tracked")}
    else:
        raise ValueError(f"unknown container {container!r}")
    with atomic_write(Path(path)) as tmp:
        if container == "legacy":
            with _tag_storages_as("cuda:0"):
                torch.save(obj, tmp, _use_new_zipfile_serialization=False)
        else:
            torch.save(obj, tmp)
