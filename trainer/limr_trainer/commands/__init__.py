"""One module per `limr` subcommand; each exposes `main(argv) -> int` and imports its side lazily."""
