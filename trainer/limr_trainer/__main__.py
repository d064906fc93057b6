"""`python -m limr_trainer ...` is the RayJob entrypoint; same commands as the `limr` script."""

from limr_trainer.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
