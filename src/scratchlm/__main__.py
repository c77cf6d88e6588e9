"""`python -m scratchlm` is the `scratchlm` command."""

from scratchlm.cli.main import main

raise SystemExit(main())
