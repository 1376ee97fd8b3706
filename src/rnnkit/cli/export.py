"""``rnnkit export RUN --format onnx --steps N --out model.onnx [--stateful]``.

The graph itself is built in ``rnnkit/export.py``; this module only reads the command line.
onnx loads inside the command, so ``rnnkit --help`` works without the ``export`` extra.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

FORMATS = ("onnx",)


def add_export(sub: Any, command: Any) -> None:
    """Register ``rnnkit export``; ``command`` makes a subparser the way main.py does."""
    c = command(sub, "export", "Write a run's whole forecasting loop (scaling, differencing, "
                "network, feedback) as one ONNX graph (needs the export extra: pip install "
                "'rnnkit[export]'); see docs/deploy.md.")
    c.add_argument("run")
    c.add_argument("--format", default="onnx", help="onnx (the only format)")
    c.add_argument("--steps", type=int, default=12, help="rows the graph forecasts (default 12)")
    c.add_argument("--stateful", action="store_true", help="export one step instead, the "
                   "streaming form: (x[, known], buffer, seen) -> (y, buffer, seen) for a "
                   "window run, (x[, known], h[, c][, last], seen) -> (y, h[, c][, last], "
                   "seen) for --shape next; a panel's also takes shift, scale[, static]")
    c.add_argument("--out", required=True, help="the .onnx file to write")
    c.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    import rnnkit
    from rnnkit.errors import ConfigError

    if args.format not in FORMATS:
        raise ConfigError(f"export: --format {args.format!r} is not supported; use onnx.")
    _needs_onnx()
    import onnx

    run = rnnkit.load(args.run)
    path = run.export(args.out, steps=args.steps, stateful=args.stateful)
    # the input names tell a deployer what to feed (a run with covariates takes more)
    inputs = [i.name for i in onnx.load(str(path)).graph.input]
    if args.json:
        print(json.dumps({"path": str(path), "bytes": path.stat().st_size,
                          "stateful": args.stateful, "steps": args.steps, "inputs": inputs}))
    else:
        form = "one step (stateful)" if args.stateful else f"{args.steps}-step forecast"
        print(f"wrote {path} ({path.stat().st_size:,} bytes): the {form} of {args.run}")
        print(f"inputs: {', '.join(inputs)} (their columns are in the model's metadata; "
              "docs/deploy.md)")
    return 0


def _needs_onnx() -> None:
    from rnnkit.errors import ConfigError

    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ConfigError("export needs the onnx package: pip install 'rnnkit[export]'."
                          ) from None
