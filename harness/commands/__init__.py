"""One module per `harness` command; each defines `register(subparsers)`."""
