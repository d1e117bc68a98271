"""One module per `wirebridge` subcommand; each exposes a click command named `command`."""
