"""The `colorize` command: one module per sub-command over the library API."""
