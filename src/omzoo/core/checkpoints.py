"""Strict loading of published checkpoint containers, and writing them (random weights, tests).

One loader for every container the five published files may use (docs/models.md §0.2): a plain state dict,
timm's `{'state_dict', 'args': Namespace, 'optimizer', 'amp', ...}`, SPACH's `{'model', 'model_ema', ...}`,
and legacy (pre-1.6, non-zip) pickles whose storages are tagged `cuda:0`. A wrong file never loads
"mostly": the error names the file, the container found and the first missing/unexpected keys.

Checkpoints come from the internet, and unpickling can run any code the file names. Files are read with
torch's safe unpickler (`weights_only=True`) and SAFE_GLOBALS only; a file that needs anything else is
refused unless the caller passes `trust=True` (the user's explicit opt-in for that file).

Before anything is unpickled or inflated the file is checked: a regular file (omzoo.core.io.open_regular: a FIFO, a
device or a folder is named as such) below MAX_CHECKPOINT_BYTES, and a zip archive only as torch.save writes one,
members stored, not compressed, each in bytes of the archive no other member names (a 1 MB deflated member could
inflate to 1 GB; 300 entries naming one member's data would read it 300 times). After it: string keys only, strided
tensors with data (no meta or sparse ones) and no more elements than their storage holds (a stride-0 view of 2 bytes
can stand for 400 million elements), no key given both with and without `module.`, and each tensor's dtype one the
model's can take (an int, bool or complex tensor is never cast into float weights). Keys and shapes are checked
against the model before any tensor is cast.
"""

from __future__ import annotations

import argparse
import io
import pickle
import re
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from omzoo.core.io import NotRegular, open_regular, sha256_file, write_bytes_atomic

#: Globals a published container may name beyond torch's own safe set (tensors, their storages including the
#: legacy `torch.cuda.*Storage` tags, OrderedDict, torch.Size, torch.device, dtypes). docs/models.md §0.2 and
#: §3.1/§4.1: TResNet's timm dict and sMLP's SPACH dict keep the training `args` as an argparse.Namespace;
#: the rest of those dicts (epoch, optimizer, amp/scaler and scheduler state, metric) is tensors, numbers,
#: strings and plain containers, which need no global. Nothing else is allowed without `trust`.
SAFE_GLOBALS: tuple[type, ...] = (argparse.Namespace,)

#: Wrapper keys tried in order; EMA weights are never taken (published accuracy is non-EMA).
_WRAPPER_KEYS = ("state_dict", "model")
#: the largest checkpoint read (the published files: 50-350 MB)
MAX_CHECKPOINT_BYTES = 4 << 30
#: a zip member's local file header: signature, version, flags, method, time, date, crc, sizes, name and extra lengths
_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used for this model; the message says why."""


@dataclass
class Loaded:
    state_dict: dict[str, torch.Tensor]
    container: str  # what was found: "state_dict", "dict['state_dict']", "dict['model']"
    weights_only: bool  # whether the safe unpickler sufficed


def _one_line(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())


def _refusal(message: str) -> str:
    """What torch's safe unpickler refused, out of its multi-line message."""
    if m := re.search(r"GLOBAL (\S+)", message):
        return f"global {m.group(1)}"
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return next((line for line in reversed(lines) if not line.startswith("Check the documentation")), message)


def _check_archive(path: Path, f: io.BufferedReader) -> None:
    """A zip checkpoint as torch.save writes it, checked before anything is inflated or read: every member stored
    (torch never compresses), each member's local header and data a range of the archive of its own (overlapping or
    repeated members would let a small file name the same megabytes again and again), so that the members' sizes
    together stay within the archive's own."""
    if f.read(4) != b"PK\x03\x04":
        f.seek(0)
        return
    f.seek(0)
    size = f.seek(0, io.SEEK_END)
    f.seek(0)
    try:
        members = zipfile.ZipFile(f).infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise CheckpointError(f"{path}: cannot be read as a torch checkpoint (a broken zip archive: {e})") from None
    ranges: list[tuple[int, int, str]] = []
    for m in members:
        if m.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(f"{path}: member {m.filename} is compressed (method {m.compress_type}); torch.save "
                                  "stores members uncompressed, so this is not its file (nothing was inflated)")
        if m.file_size > size or m.compress_size != m.file_size:
            raise CheckpointError(f"{path}: member {m.filename} declares {m.file_size} bytes in a {size}-byte "
                                  "archive; refusing it before reading")
        f.seek(m.header_offset)
        header = f.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise CheckpointError(f"{path}: member {m.filename} has no local header at offset {m.header_offset}; "
                                  "a broken zip archive")
        name_len, extra_len = _LOCAL_HEADER.unpack(header)[-2:]
        end = m.header_offset + _LOCAL_HEADER.size + name_len + extra_len + m.compress_size
        if end > size:
            raise CheckpointError(f"{path}: member {m.filename} ends at byte {end} of a {size}-byte archive; "
                                  "refusing it before reading")
        ranges.append((m.header_offset, end, m.filename))
    ranges.sort()
    for (_, end, first), (start, _, second) in zip(ranges, ranges[1:], strict=False):
        if start < end:
            raise CheckpointError(f"{path}: members {first} and {second} share bytes of the archive (overlapping or "
                                  "repeated entries, which torch.save never writes); refusing it before reading")
    f.seek(0)


def _deserialise(path: Path, trust: bool) -> tuple[Any, bool]:
    """torch.load onto the CPU with the safe unpickler; the full one only for a file the user trusts."""
    try:
        with open_regular(path, MAX_CHECKPOINT_BYTES, "checkpoint file") as f:
            _check_archive(path, f)
            with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
                return torch.load(f, map_location="cpu", weights_only=True), True
    except NotRegular as e:
        raise CheckpointError(str(e)) from None
    except CheckpointError:
        raise
    except RecursionError:
        raise _unreadable(path, "nested too deeply to unpickle") from None
    except pickle.UnpicklingError as e:
        refused = _refusal(str(e))
        if not trust and not refused.startswith("global "):
            raise _unreadable(path, refused) from None
        if not trust:
            raise CheckpointError(
                f"{path}: refused {refused}: a checkpoint may hold only tensors, plain containers and "
                "argparse.Namespace, and unpickling anything else can run code. If you trust this file, pass "
                f"--trust-checkpoint (pipeline: add its sha256 {sha256_file(path)} to weights.trusted_checkpoints)"
            ) from None
    except Exception as e:  # noqa: BLE001 - zip, EOF, storage errors: all mean an unreadable file to the user
        raise _unreadable(path, _one_line(e)) from None
    try:
        with open_regular(path, MAX_CHECKPOINT_BYTES, "checkpoint file") as f:
            return torch.load(f, map_location="cpu", weights_only=False), False
    except RecursionError:
        raise _unreadable(path, "nested too deeply to unpickle") from None
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise _unreadable(path, _one_line(e)) from None


def _unreadable(path: Path, reason: str) -> CheckpointError:
    """torch's reason for a file that is not a checkpoint at all (a text file: "KeyError: 101") means nothing to
    the user: say instead that it is not what torch.save writes, and what it starts with."""
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        reason = "an empty file"
    elif not head.startswith((b"PK\x03\x04", b"\x80")):
        reason = f"not a zip archive or a pickle, which is what torch.save writes; it starts with {head!r}"
    return CheckpointError(f"{path}: cannot be read as a torch checkpoint ({reason})")


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def read_checkpoint(path: str | Path, trust: bool = False) -> Loaded:
    """Deserialise and unwrap to a float32 state dict with any `module.` prefix stripped.

    `trust`: the user vouches for this file, so the full unpickler may read what the safe one refuses.
    """
    loaded = _unwrap(Path(path), trust)
    return Loaded(_as_float(loaded.state_dict), loaded.container, loaded.weights_only)


def _as_float(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating tensors as float32 (a cast materialises a tensor: done only after its key, shape and storage passed)."""
    return {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}


def _overlapping(v: torch.Tensor) -> bool:
    """Whether `v` has more elements than its storage holds: a stride-0 or overlapping view, which a few bytes in
    the file can make gigabytes of once materialised (torch.save never writes one for a model's weights)."""
    return v.numel() * v.element_size() > v.untyped_storage().nbytes()


def _unwrap(path: Path, trust: bool) -> Loaded:
    """The file's state dict as stored (nothing cast or copied yet), its keys and tensors checked."""
    obj, weights_only = _deserialise(path, trust)
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
    for key, v in sd.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{path}: key {key!r} is a {type(key).__name__}; a state dict's keys are names")
        if v.is_meta or v.layout != torch.strided:
            what = "a meta tensor (shape only, no data)" if v.is_meta else f"a {v.layout} tensor"
            raise CheckpointError(f"{path}: {key} is {what}; weights must be dense tensors with data")
        if _overlapping(v):
            raise CheckpointError(f"{path}: {key} has {v.numel()} elements over a storage of "
                                  f"{v.untyped_storage().nbytes()} bytes (a stride-0 or overlapping view, which "
                                  "torch.save never writes for weights); refusing it before it is materialised")
        k = key[len("module."):] if key.startswith("module.") else key
        if k in out:
            raise CheckpointError(f"{path}: holds both module.{k} and {k}; which one is the weight is unknown")
        out[k] = v
    return Loaded(out, container, weights_only)


def _describe(keys: list[str], sd: Mapping[str, torch.Tensor], limit: int = 5) -> str:
    shown = [f"{k} {tuple(sd[k].shape)}" for k in keys[:limit]]
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(shown) + more


def load_strict(model: torch.nn.Module, path: str | Path, trust: bool = False) -> Loaded:
    """Load `path` into `model`; only a missing `num_batches_tracked` is tolerated (old torch omits it).

    Non-finite weights fail here too: they would only surface later as NaN logits or an unnamed export error. Keys,
    shapes and dtypes are checked before any tensor is cast (a cast materialises it).
    """
    loaded = _unwrap(Path(path), trust)
    sd = loaded.state_dict
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in sd if k not in expected]
    mismatched = [k for k in sd if k in expected and sd[k].shape != expected[k].shape]
    wrong_dtype = [k for k in sd if k in expected and expected[k].is_floating_point() != sd[k].is_floating_point()]
    if wrong_dtype:
        shown = ", ".join(f"{k} {sd[k].dtype} (model {expected[k].dtype})" for k in wrong_dtype[:5])
        more = f" (+{len(wrong_dtype) - 5} more)" if len(wrong_dtype) > 5 else ""
        raise CheckpointError(f"{path}: {len(wrong_dtype)} tensors of the wrong kind of dtype, never cast: "
                              f"{shown}{more}")
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
    sd = _as_float(sd)
    loaded = Loaded(sd, loaded.container, loaded.weights_only)
    nonfinite = [k for k, v in sd.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if nonfinite:
        counts = [f"{k} {tuple(sd[k].shape)}: {int(sd[k].isnan().sum())} NaN, {int(sd[k].isinf().sum())} inf"
                  for k in nonfinite[:5]]
        more = f" (+{len(nonfinite) - 5} more)" if len(nonfinite) > 5 else ""
        raise CheckpointError(f"{path}: non-finite weights in {len(nonfinite)} tensors: " + ", ".join(counts) + more)
    result = model.load_state_dict(sd, strict=False)
    assert not result.unexpected_keys and all(k.endswith(".num_batches_tracked") for k in result.missing_keys)
    model.eval()
    return loaded


class _Torch04Pickler(pickle._Pickler):
    """Pickles as torch 0.4 on Python 2 did for a .cuda() model: `str` as Python 2 byte strings, every
    storage as a persistent id typed `torch.cuda.*Storage` and tagged `cuda:0`, keyed in pickling order.

    The pure-Python pickler, because only its dispatch table lets `str` be written the Python 2 way.
    """

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=2)
        self.storages: dict[int, tuple[str, torch.storage.TypedStorage]] = {}  # by storage identity

    def persistent_id(self, obj: Any) -> tuple | None:
        if not isinstance(obj, torch.storage.TypedStorage):
            return None
        key, _ = self.storages.setdefault(obj._cdata, (str(len(self.storages)), obj))
        return "storage", getattr(torch.cuda, obj._pickle_storage_type()), key, "cuda:0", obj._size(), None

    def _save_py2_str(self, obj: str) -> None:
        data = obj.encode("latin-1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = _save_py2_str


def _legacy_bytes(obj: Any) -> bytes:
    """A pre-1.6 (non-zip) torch.save file. torch's own legacy writer keys storages by memory address, so its
    bytes change from run to run; these do not."""
    buf = io.BytesIO()
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 8}}
    for header in (0x1950A86A20F9469CFC6C, 1001, sys_info):  # magic number, protocol version
        _Torch04Pickler(buf).dump(header)
    pickler = _Torch04Pickler(buf)
    pickler.dump(obj)
    _Torch04Pickler(buf).dump([key for key, _ in pickler.storages.values()])
    for _, storage in pickler.storages.values():  # each: int64 element count, then the raw bytes
        storage._untyped_storage._write_file(buf, False, True, storage.dtype.itemsize)
    return buf.getvalue()


def save_container(state_dict: Mapping[str, torch.Tensor], path: str | Path, container: str) -> None:
    """Write `state_dict` the way the published file for this container was written (docs/models.md).

    The same state dict and container always give the same bytes, whatever `path` is called.

    - state_dict: an OrderedDict as `model.state_dict()` returns it, `_metadata` included (SCNet, SE-ResNeXt).
    - timm: timm's CheckpointSaver dict with an argparse.Namespace, optimizer and amp state (TResNet).
    - spach: DeiT/SPACH main.py dict with `model`, `model_ema` and args (sMLP); `model_ema` differs, so
      a loader that takes the EMA weights is caught.
    - legacy: pre-1.6 non-zip Python-2 pickle without num_batches_tracked, storages cuda-typed and tagged
      cuda:0 (RAN-92).
    """
    sd = state_dict if isinstance(state_dict, OrderedDict) else OrderedDict(state_dict)
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
        obj = OrderedDict((k, v) for k, v in sd.items() if not k.endswith(".num_batches_tracked"))
    else:
        raise ValueError(f"unknown container {container!r}")
    if container == "legacy":
        data = _legacy_bytes(obj)
    else:
        buf = io.BytesIO()  # torch names the zip's top folder after a file name; a buffer's is always "archive"
        torch.save(obj, buf)
        data = buf.getvalue()
    write_bytes_atomic(path, data)
