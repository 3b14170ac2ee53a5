"""``python -m convstack`` is the ``convstack`` command."""

from convstack.cli import main

raise SystemExit(main())
