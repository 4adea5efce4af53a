"""Benchmarks and the soak, each a module run from the repository's root:
`.venv/bin/python -m bench.upsert`, `-m bench.soak --short`, …"""
