"""Benchmarks of policybot, each run from the repository as `.venv/bin/python -m bench.NAME`.

Shared modules: bench.machine (the machine block, percentiles), bench.results (the JSON
writer), bench.speeches (UN General Debate speeches as corpus files), bench.discord_world
(the Discord emulator with a real bot) and bench.local_web (a web server on 127.0.0.1 and
hostile files).
"""
