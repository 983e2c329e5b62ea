"""Evaluation data: dataset readers, the pixel half of each recipe (decode → resize → crop), and uint8 shards.

Pipeline: ``readers.read_dataset`` lists (image, label) pairs from a flat folder + ``val_label.txt``,
an ImageFolder tree, a CIFAR-10 python batch or a plain folder of the user's images;
``preprocess.preprocess`` decodes, resizes and crops them (``decode.resize_crop``, docs/models.md §0.3) into
uint8 NCHW shards (``shards``); evaluation reads the shards with ``shards.ShardSet`` and normalises at
load time with ``omzoo.core.recipe.normalize``. Shards hold uint8 pixels, not float32 tensors, so that models
sharing a pixel recipe share one shard set, the data is 4x smaller, and a uint8-input model gets exactly
the bytes the float path normalises.

Submodules are imported on demand; this package only defines the shared error type.
"""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """Bad or inconsistent input data; the message names every offending file and why."""
