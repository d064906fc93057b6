"""`python -m limr_trainer ...` (the RayJob entrypoint): the same commands as the `limr` script."""

from limr_api.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
