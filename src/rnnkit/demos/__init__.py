"""The founding problems, end to end: ``rnnkit demo sine|adder|seeded|sunspots``.

Each demo makes (or loads) its data, fits on its own defaults (any option can be overridden),
adds the problem's own figures to ``metrics.json`` and its own plots, and saves a run folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnkit.errors import ConfigError


def run_demo(name: str, out: str | Path | None = None, **overrides: Any) -> dict:
    """Run demo ``name``; returns {"run": Run, "metrics": dict, "text": str, "folder": Path}."""
    from rnnkit.demos import adder, seeded, sine, sunspots

    demos = {"sine": sine, "adder": adder, "seeded": seeded, "sunspots": sunspots}
    if name not in demos:
        raise ConfigError(f"demo {name!r} does not exist; choose one of {', '.join(demos)}.")
    folder = Path(out) if out is not None else Path("runs") / name
    if overrides.get("shuffle_targets") and name != "seeded":
        raise ConfigError(f"--shuffle-targets applies to the seeded demo only, not {name!r}.")
    result = demos[name].run(folder, **overrides)
    result["text"] = result["text"] + f"\n\nrun saved to {folder} (plots: " + ", ".join(
        sorted(p.name for p in folder.glob("*.png"))) + ")"
    result["folder"] = folder
    return result


def reattach(run: Any) -> Any:
    """Give a demo run loaded from disk its data back (regenerated from the demo's seed)."""
    from rnnkit.demos import adder, seeded, sine, sunspots

    name = run.config.get("source", {}).get("name")
    module = {"sine": sine, "adder": adder, "seeded": seeded, "sunspots": sunspots}.get(name)
    if module is not None and run.data is None:
        run.data = run.pipeline.encode(module.data_for(run))
    return run

