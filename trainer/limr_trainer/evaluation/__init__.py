"""Evaluation mechanisms: benchmarks and their sampling, scoring completions, the results table."""
