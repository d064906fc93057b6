"""The `limr` console script: subcommands found through the `limr.commands` entry points.

Each installed distribution registers its own commands (limr-api: validate, crd; limr-operator:
render, operator; limr-trainer: run, phase, select, reward, logs), so the operator image offers
only what it has and nothing here names a module. A command module exposes `HELP` (one line) and
`main(argv) -> int`, and imports its heavy libraries inside `main`, so `limr --help` stays fast.
"""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint, entry_points

ENTRY_POINT_GROUP = "limr.commands"
# Only for a helpful message when a command's distribution is not installed here.
PROVIDED_BY = {"run": "limr-trainer", "phase": "limr-trainer", "select": "limr-trainer",
               "reward": "limr-trainer", "logs": "limr-trainer", "render": "limr-operator",
               "operator": "limr-operator"}


def commands() -> dict[str, EntryPoint]:
    """Installed subcommands by name, sorted."""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return dict(sorted(found.items()))


def usage() -> str:
    lines = []
    for name, ep in commands().items():
        try:
            help_ = getattr(ep.load(), "HELP", "")
        except Exception as exc:  # noqa: BLE001  (a broken install must not hide the other commands)
            help_ = f"(cannot load {ep.value}: {type(exc).__name__})"
        lines.append(f"  {name:<10} {help_}")
    return "usage: limr <command> [options]\n\ncommands:\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from limr_api import __version__

        print(f"limr {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    found = commands()
    if name not in found:
        hint = f" (it comes with {PROVIDED_BY[name]}, which is not installed here)" if name in PROVIDED_BY else ""
        print(f"limr: unknown command {name!r}{hint}\n\n{usage()}", file=sys.stderr)
        return 2
    return int(found[name].load().main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
