"""Test-only extensions: a sixth model and a fourth backend, each added the way the README says."""
