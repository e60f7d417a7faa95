"""`python -m oauth_service` runs the command-line interface."""

from oauth_service.cli import main

raise SystemExit(main())
