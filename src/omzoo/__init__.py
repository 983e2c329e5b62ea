"""omzoo: one reproducible pipeline from a published classifier checkpoint to accuracy and throughput."""

__version__ = "0.1.0"
