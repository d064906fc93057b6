"""The trainer's `limr` subcommands (run, phase, select, reward, logs), registered as entry points.

Each module exposes `HELP` and `main(argv) -> int` and imports heavy libraries inside `main`.
"""
