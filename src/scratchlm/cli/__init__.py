"""The `scratchlm` command: flags in, one library call, an exit code out. Nothing imports this package."""
