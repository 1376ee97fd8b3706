"""Choices of a fit that repeat part of the fit itself: the window of a long series, chosen on
validation before training, and the guard's rolling-origin cuts of a short one, fitted again
after it (``train/window.py``, ``train/rolling.py`` hold the rules; this module runs them on
the fit's data and pipeline). ``fit`` (api.py) calls both."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data import calendar, covariates
from rnnkit.errors import FewPointsWarning
from rnnkit.evaluate import calendar_check
from rnnkit.kinds import KINDS
from rnnkit.models.ensemble import Members
from rnnkit.train import objectives, rolling, window
from rnnkit.train.loop import train
from rnnkit.train.threads import thread_count, threads_for

# (model config, train config, objective, training pairs) -> (model, optimiser groups)
Build = Callable[[ModelConfig, TrainConfig, str, Any], tuple[Any, Any]]


def validated_window(prep: Any, d_opts: dict) -> Any:
    """``prep`` (the fit's prepared data) with the window chosen on validation when the user
    gave none and the series' validation part is large enough to choose on."""
    pipe = prep.pipe
    if (prep.kind != "series" or d_opts.get("window") is not None or pipe.shape != "window"
            or len(pipe.origins("val", len(prep.data.values))) < rolling.FEW_VAL_FORECASTS):
        return prep
    chosen = window.validated(pipe, prep.encoded)
    if chosen >= pipe.window:
        return prep
    dcfg = replace(prep.dcfg, window=chosen)
    cut, data = KINDS[prep.kind].pipeline.fit(prep.data, dcfg)
    note = (f"window {chosen}, the order of the linear AR that scored best on validation "
            f"(the default, one season, was {pipe.window})")
    return replace(prep, dcfg=dcfg, pipe=cut, data=data, encoded=cut.encode(data),
                   notes=[*prep.notes, note])


def validated_calendar(prep: Any, d_opts: dict) -> Any:
    """``prep`` with the automatic calendar features that pass ``evaluate/calendar_check.py``:
    those whose cycle is longer than the window unless they hurt, the others only where they
    help; the fit's output says which way each went."""
    pipe = prep.pipe
    if (prep.kind != "series" or d_opts.get("calendar", "auto") != "auto"
            or not pipe.known.calendar or pipe.known.holidays or pipe.shape != "window"):
        return prep
    long, short = calendar_check.by_cycle(list(pipe.known.calendar), prep.data.index,
                                          pipe.window)
    built = {tuple(pipe.known.calendar): prep}
    errors: dict[tuple, Any] = {}

    def judged(names: list[str]) -> Any:
        key = tuple(n for n in pipe.known.calendar if n in names)
        if key not in built:
            built[key] = _with_calendar(prep, list(key))
        if key not in errors:
            errors[key] = calendar_check.ar_errors(built[key].pipe, built[key].encoded)
        return errors[key]

    kept, notes = [], []
    for names, rule in ((long, calendar_check.hurts), (short, calendar_check.helps)):
        if not names:
            continue
        verdict, said = rule(judged([*kept, *names]), judged(kept), pipe.horizon)
        stays = verdict if rule is calendar_check.helps else not verdict
        what = calendar.describe(names, None)
        why = ("their cycle is longer than the window" if rule is calendar_check.hurts
               else "their cycle fits in the window")
        notes.append(f"calendar features {'kept' if stays else 'left out'}: {what} ({why}; "
                     f"{said})")
        kept += names if stays else []
    chosen = built.get(tuple(n for n in pipe.known.calendar if n in kept)) or _with_calendar(
        prep, kept)
    return replace(chosen, notes=[*prep.notes, *notes])


def _with_calendar(prep: Any, names: list[str]) -> Any:
    """``prep`` fitted again with only the calendar features ``names``."""
    data, known = covariates.with_calendar(prep.data, prep.pipe.known, names)
    dcfg = replace(prep.dcfg, calendar=list(known.calendar))
    with warnings.catch_warnings():  # the same rows again: the fit already warned about them
        warnings.simplefilter("ignore", FewPointsWarning)
        pipe, data = KINDS[prep.kind].pipeline.fit(data, dcfg)
    return replace(prep, dcfg=dcfg, pipe=pipe, data=data, encoded=pipe.encode(data))


def earlier_cuts(prep: Any, m_opts: dict, asked: TrainConfig, objective: str, build: Build
                 ) -> list[dict]:
    """The guard's rolling-origin folds: this fit's recipe (the user's model options
    ``m_opts`` and train config ``asked``) repeated, quietly and in this process, on earlier
    cuts of a series whose validation part is small; [] when it is not."""
    pipe, n = prep.pipe, len(prep.data.values)
    if not rolling.wanted(len(pipe.origins("val", n))):
        return []
    kind = KINDS[prep.kind]
    quiet = replace(asked, quiet=True)  # epochs and patience follow each cut's size

    def fit_rows(rows: int, split: tuple) -> tuple:
        cut, data = kind.pipeline.fit(prep.data.head(rows), replace(prep.dcfg, split=split))
        mcfg = ModelConfig(**{**kind.model_defaults(cut), **m_opts,
                              **kind.model_shape(cut, data)})
        encoded = cut.encode(data)
        pairs = cut.pairs(encoded, "train")
        model, groups = build(mcfg, quiet, objective, pairs)
        loss = objectives.pick(objective, prep.dcfg.prompt_length, mcfg.loss, mcfg.quantiles,
                               mcfg.ensemble)
        with thread_count(threads_for(mcfg, quiet.batch_size, quiet.threads)):
            train(model, pairs, cut.pairs(encoded, "val"), quiet, loss, None, groups)
        model.eval()
        return (model.collapse() if isinstance(model, Members) else model).eval(), cut, encoded

    return rolling.earlier_errors(fit_rows, *pipe.bounds(n))
