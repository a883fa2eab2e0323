"""``python -m otelkit``: the same as the ``otelkit`` command."""

from otelkit.cli import main

raise SystemExit(main())
