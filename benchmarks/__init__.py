"""Benchmarks that print figures (run from the repo root: ``python -m benchmarks.<name>``)."""
