"""params.yaml access: each stage reads its own section (so editing `bench` never re-runs `compile`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def load_params(path: Path = Path("params.yaml")) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no params file (run from the repository root or pass --params)")
    with open(path) as f:
        return yaml.safe_load(f) or {}


def backend_config(params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The configured backend's name and its own options section (`backend: acl` reads `acl: {...}`)."""
    name = params.get("backend", "onnxruntime")
    return name, dict(params.get(name) or {})


def model_options(params: dict[str, Any], model_id: str) -> dict[str, Any]:
    """Architecture options a branch sets for a model (e.g. RAN-92's `nearest_resize`)."""
    entry = (params.get("models") or {}).get(model_id) or {}
    return dict(entry.get("options") or {})
