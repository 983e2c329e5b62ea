"""Results read back and shown: the report, the bench table, the plots, and compare's jobs (rules, diffs,
verdicts, per-image accuracy, the gate, its markdown)."""
