"""A panel run's data: the long table read with the run's options and covariates, and new data
matched to the run's series (their scaling, their static inputs) before it is encoded."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from rnnkit.data import covariates, panel_covariates
from rnnkit.data.panel import PanelPipeline
from rnnkit.data.panel_table import Panel
from rnnkit.data.pipeline import Encoded
from rnnkit.data.read_panel import columns_of, read_panel
from rnnkit.errors import DataError
from rnnkit.kinds.panel_fit import checked_calendar


def read(data: Any, target: Any, features: list[str] | None, time: str | None,
         opts: dict) -> tuple[Panel, dict, dict]:
    """(panel with its covariates, what the data config learns from it, the source record)."""
    past, future = panel_covariates.roles(features, opts)
    static = [str(c) for c in opts.get("static") or ()]
    panel = read_panel(data, opts.get("id"), time, target, past or None, opts.get("fill"),
                       opts.get("duplicates"), static or None, future)
    known = covariates.resolve(opts, panel_covariates.time_index(panel))
    panel, known = checked_calendar(panel_covariates.attach(panel, known), known, opts)
    learned = {"id": panel.id_name, "target": panel.targets, "features": panel.features,
               "time": panel.time_name, "future_features": list(known.future),
               "calendar": list(known.calendar), "holidays": known.holidays, "static": static}
    source = {"target": panel.targets, "features": panel.features, "time": panel.time_name,
              "id": panel.id_name, "fill": opts.get("fill"),
              "duplicates": opts.get("duplicates"), "name": panel.source}
    return panel, learned, source


def attach(run: Any, data: Any) -> tuple[Encoded, PanelPipeline]:
    """The panel to use, encoded, and the pipeline with its series' statistics and static
    inputs in its order (new data may hold some of the training series, in any order; static
    columns it leaves out are the run's own)."""
    pipe: PanelPipeline = run.pipeline
    if data is None:
        if run.data is None:
            raise DataError("no data: this panel run was loaded from disk without its data; "
                            "pass the long table (a CSV path or DataFrame).")
        return run.data, pipe
    p = run.config["panel"]
    names = columns_of(data)
    static = [c for c in pipe.statics.names if names is None or c in names]
    panel = read_panel(data, p["id"], p["time"], pipe.targets, pipe.features or None,
                       run.config["source"].get("fill"), run.config["source"].get("duplicates"),
                       static or None, pipe.known.future)
    panel = panel_covariates.attach(panel, pipe.known)
    pos = {s: i for i, s in enumerate(p["ids"])}
    unknown = [s for s in panel.ids if s not in pos]
    if unknown:
        raise DataError(f"{panel.source}: series {', '.join(unknown[:5])}"
                        f"{' and more' if len(unknown) > 5 else ''} were not in the training "
                        "panel, so their scaling is unknown; fit again with them.")
    rows = np.array([pos[s] for s in panel.ids])
    mine = dataclasses.replace(pipe, shift=pipe.shift[rows], scale=pipe.scale[rows])
    if pipe.statics:
        own = pipe.static_rows[rows]
        mine.static_rows = (own if panel.static is None else
                            pipe.statics.encode(panel.static, panel.source, panel.ids, own))
    return mine.encode(panel), mine


def tail_of(pipe: PanelPipeline, panel: Panel) -> dict[str, np.ndarray]:
    """The last window (+1 with diff) of rows of every series (all its columns: targets,
    features, known covariates), and each series' last time."""
    need = pipe.window + int(pipe.diff)
    ends = panel.offsets[1:]
    rows = ends[:, None] - need + np.arange(need)[None, :]
    return {"values": panel.rows_of(rows),
            "last": panel.times[ends - 1].astype(np.int64)}
