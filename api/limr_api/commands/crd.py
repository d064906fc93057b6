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
    if not args.output:
        sys.stdout.write(text)
        return 0
    if "://" in args.output:  # not a path: never create a local ./s3:/... file for a URI
        print(f"limr crd: --output {args.output.split('://')[0]}://...: give a local file (or pipe standard "
              "output, e.g. `limr crd | aws s3 cp - s3://BUCKET/KEY`)", file=sys.stderr)
        return 2
    try:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        print(f"limr crd: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0
