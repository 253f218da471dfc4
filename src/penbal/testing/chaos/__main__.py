# -*- test-case-name: tests.testing.chaos.test_cli -*-
"""C{python -m penbal.testing.chaos}: see L{penbal.testing.chaos.cli}."""

from penbal.testing.chaos.cli import main

raise SystemExit(main())
