"""The core every layer stands on: the model registry and recipes, model loading and checkpoints, params.yaml,
the paths, the metric schema, atomic io and provenance."""
