"""Entry point: ``python -m relaybench``."""

from relaybench.cli import main

raise SystemExit(main())
