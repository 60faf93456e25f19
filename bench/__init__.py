"""Benchmarks: `python -m bench.<name>`; figures are printed and written to bench/results/<name>.json."""
