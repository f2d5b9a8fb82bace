"""The CLI's commands, one module per area, imported lazily by servin.cli.main."""
