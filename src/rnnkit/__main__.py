"""``python -m rnnkit`` is the ``rnnkit`` command (also what torchrun launches)."""

from rnnkit.cli.main import main

raise SystemExit(main())
