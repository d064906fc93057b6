"""`limr` subcommands of the API package: validate and crd."""
