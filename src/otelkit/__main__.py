"""``python -m otelkit``: the same as the ``otelkit`` command."""

from otelkit._cli import main

raise SystemExit(main())
