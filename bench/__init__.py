"""Benchmarks of Forgeyard against a bare Starlette app, run by ``make bench``."""
