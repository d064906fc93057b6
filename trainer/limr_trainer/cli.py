"""The `limr` console script: a table of subcommands, each imported only when it runs.

This is the one place that reaches both the trainer and the operator side; the lazy imports keep
`limr render` working without torch and `limr run` without kopf.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module exposing `main(argv) -> int`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("limr_trainer.commands.run", "run the whole LIMR pipeline of JOB.yaml on a local Ray cluster"),
    "validate": ("limr_trainer.commands.validate", "check JOB.yaml; print every error with its field path"),
    "crd": ("limr_trainer.commands.crd", "print the LIMRJob CustomResourceDefinition generated from the API"),
    "reward": ("limr_trainer.commands.reward", "score responses with the LIMR rule reward (JSONL in, JSONL out)"),
    "select": ("limr_trainer.commands.select", "score reward records with LIM / linear / random and select"),
    "render": ("limr_operator.commands.render", "print the Kubernetes objects the operator would create"),
    "operator": ("limr_operator.commands.operator", "run the kopf operator with /healthz and /metrics"),
    "phase": ("limr_trainer.commands.phase", "run one phase of a job (the RayJob entrypoint)"),
}

USAGE = "usage: limr <command> [options]\n\ncommands:\n" + "\n".join(
    f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] in ("-V", "--version"):
        from limr_trainer import __version__

        print(f"limr {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"limr: unknown command {name!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
