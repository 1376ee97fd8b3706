"""A choice a panel fit makes on validation before it trains: which of the automatic calendar
features stay (``--calendar auto``, the default).

The rules are the series kind's (``evaluate/calendar_check.py``, run by
``refits.validated_calendar``): a feature whose cycle is longer than the window (the day of
year of daily data) is the only way the model can know where in the season it is, so it stays
unless it hurts; a feature whose cycle fits in the window repeats what the values show, so it
stays only where it helps. The judge here is the pooled linear AR (the panel's own baseline and
the linear path's start, ``evaluate/panel_scores.py``) one step (the horizon) ahead, with
errors in each series' scaled units so every series counts alike; the series kind's rolled
check is left out (a rolled pooled AR over every series would cost more than the check saves).
Features the user names (``--calendar weekday``) and holidays are kept as asked.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from rnnkit.config import DataConfig
from rnnkit.data import calendar, panel_covariates
from rnnkit.data.covariates import Known
from rnnkit.data.panel import PanelPipeline
from rnnkit.data.panel_table import Panel
from rnnkit.errors import FewPointsWarning
from rnnkit.evaluate import calendar_check
from rnnkit.inference import BATCH
from rnnkit.models.least_squares import least_squares

CHECK_WINDOWS = 200_000  # training windows each AR is fitted on, at most (an even draw)


def checked_calendar(panel: Panel, known: Known, opts: dict) -> tuple[Panel, Known]:
    """``panel`` and ``known`` with only the automatic calendar features that pass the
    rules above; the panel's notes say which way each group went."""
    if (calendar.parse(opts.get("calendar")) != "auto" or not known.calendar
            or known.holidays):
        return panel, known
    names = list(known.calendar)
    window = PanelPipeline.choose(panel, _config(opts, known))[0]
    long, short = calendar_check.by_cycle(names, panel_covariates.time_index(panel), window)
    errors: dict[tuple[str, ...], Any] = {}

    def judged(chosen: list[str]) -> Any:
        key = tuple(n for n in names if n in chosen)
        if key not in errors:
            errors[key] = ar_errors(*with_calendar(panel, known, list(key)), opts)
        return errors[key]

    kept, notes = [], []
    with warnings.catch_warnings():  # the fit itself warns once about few points
        warnings.simplefilter("ignore", FewPointsWarning)
        for group, rule in ((long, calendar_check.hurts), (short, calendar_check.helps)):
            if not group:
                continue
            verdict, said = rule(judged([*kept, *group]), judged(kept), int(
                opts.get("horizon") or 1))
            stays = verdict if rule is calendar_check.helps else not verdict
            why = ("their cycle is longer than the window" if rule is calendar_check.hurts
                   else "their cycle fits in the window")
            notes.append(f"calendar features {'kept' if stays else 'left out'}: "
                         f"{calendar.describe(group, None)} ({why}; {said}, pooled over the "
                         "series in scaled units)")
            kept += group if stays else []
    panel, known = with_calendar(panel, known, kept)
    return replace(panel, notes=[*panel.notes, *notes]), known


def with_calendar(panel: Panel, known: Known, names: list[str]) -> tuple[Panel, Known]:
    """The panel with only the calendar features ``names`` (of those it has)."""
    chosen = Known(known.future, tuple(n for n in known.calendar if n in names), None)
    if chosen == known:
        return panel, known
    picks = [known.columns.index(c) for c in chosen.columns]
    block = panel.known_values  # the kept columns are shared, not copied
    kept = block.select(picks) if block is not None and picks else None
    return replace(panel, known=chosen.columns, known_values=kept), chosen


def _config(opts: dict, known: Known) -> DataConfig:
    return DataConfig(**{**opts, "future_features": list(known.future),
                         "calendar": list(known.calendar), "holidays": known.holidays})


@torch.no_grad()
def ar_errors(panel: Panel, known: Known, opts: dict) -> calendar_check.Errors | None:
    """Squared validation errors, in each series' scaled units (mean over the horizon), of
    the pooled ridge AR over the inputs the panel gives; None when there are too few."""
    pipe, kept = PanelPipeline.fit(panel, _config(opts, known))
    enc = pipe.encode(kept)
    train, val = pipe.pairs(enc, "train"), pipe.pairs(enc, "val")
    if len(val) < calendar_check.MIN_POINTS or len(train) < 4:
        return None
    coef, intercept = least_squares(train.sample(min(len(train), CHECK_WINDOWS), seed=0))
    out = []
    for s in range(0, len(val), BATCH):
        b = val.rows(s, s + BATCH)
        pred = b.inputs.reshape(len(b.inputs), -1).double() @ coef + intercept
        err = (pred - b.targets.reshape(len(pred), -1).double()) ** 2
        out.append(err.mean(dim=1).numpy())
    return calendar_check.Errors(np.concatenate(out), None, 1)  # one step: no rolled check
