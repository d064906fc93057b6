"""`limr crd`: print the LIMRJob CustomResourceDefinition generated from the `limr_api` models."""

from __future__ import annotations

import argparse
import sys

HELP = "print the LIMRJob CustomResourceDefinition generated from the API"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="limr crd", description=__doc__)
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad input, 0 on --help
        return int(exc.code or 0)
    from limr_api.crd import crd_yaml

    text = crd_yaml()
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0
