"""`limr` subcommands that live on the operator side (`render`, `operator`)."""
