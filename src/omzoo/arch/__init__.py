"""One module per architecture family; attribute names mirror the published checkpoints' keys."""
