"""Scores a model next to its baselines and prints the comparison.

The metrics dictionary is what ``metrics.json`` holds::

    {"model": {metric: value}, "baselines": {name: {metric: value}}, "split": {...}, ...}
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit.evaluate import significance as sig
from rnnkit.evaluate.baselines import forecast_baselines
from rnnkit.evaluate.ets import ets_forecasts
from rnnkit.evaluate.metrics import METRICS, compute_metrics, mase_scale


def score(y_true: np.ndarray, y_pred: np.ndarray, baselines: dict[str, np.ndarray],
          scale: float | None = None, horizon: int | None = None) -> dict:
    """Metrics of the model and of each baseline on the same targets, and the significance of
    the model's difference from the best baseline (``"verdict"``, see :func:`significance`).

    y_true, y_pred and each baseline: (N, H, O), (N, T, O) or (N, O), forecast origins (or
    samples) first. ``horizon`` sets the Diebold–Mariano test's h-1 lags: None reads it from the
    second axis of a 3-D array (a series' or a panel's (N, H, O) forecasts from consecutive
    origins); pass 1 for independent sequences, whose errors do not overlap.
    """
    metrics = {
        "model": compute_metrics(y_true, y_pred, mase_scale=scale),
        "baselines": {k: compute_metrics(y_true, v, mase_scale=scale)
                      for k, v in baselines.items()},
    }
    if horizon is None:
        horizon = int(np.shape(y_true)[1]) if np.ndim(y_true) == 3 else 1
    verdict_ = significance(y_true, y_pred, baselines, metrics["baselines"], horizon)
    if verdict_ is not None:
        metrics["verdict"] = verdict_
    notes = getattr(baselines, "notes", [])
    if notes:
        metrics["baseline_notes"] = list(notes)
    return metrics


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def significance(y_true: np.ndarray, y_pred: np.ndarray, baselines: dict[str, np.ndarray],
                 scores: dict[str, dict[str, float]], horizon: int = 1) -> dict | None:
    """The Diebold–Mariano test of the model against the baseline with the lowest RMSE.

    Returns what ``metrics.json`` stores as ``verdict``: ``baseline`` (its name), ``p_value``
    (two-sided), ``statistic`` (HLN-corrected, negative when the model's errors are smaller),
    ``test_points`` (forecast origins compared), ``horizon`` (h of the HAC lags), ``test`` and
    ``p_values`` (the model against every baseline). Undefined figures (fewer than three test
    points) are None. None when no baseline has a finite RMSE.
    """
    rmse = {k: s.get("rmse", math.nan) for k, s in scores.items()}
    rmse = {k: v for k, v in rmse.items() if math.isfinite(v)}
    if not rmse:
        return None
    tests = {k: sig.compare(y_true, y_pred, baselines[k], horizon) for k in rmse}
    best = min(rmse, key=rmse.__getitem__)
    t = tests[best]
    return {"baseline": best, "p_value": _finite(t.p_value), "statistic": _finite(t.statistic),
            "test_points": t.test_points, "horizon": t.horizon,
            "test": "Diebold-Mariano on squared errors, HLN-corrected",
            "p_values": {k: _finite(v.p_value) for k, v in tests.items()}}


def series_truth(values: np.ndarray, origins: np.ndarray, horizon: int, n_targets: int
                 ) -> np.ndarray:
    """True values (N, H, O) of rows origin+1..origin+H."""
    idx = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    return np.asarray(values, dtype=np.float64)[idx][:, :, :n_targets]


class Baselines(dict):
    """``{name: forecasts}`` plus ``notes``: why a baseline is left out (ETS on a constant or
    too short series). :func:`score` copies the notes into the metrics as ``baseline_notes``,
    so a caller passing the dict along needs no second return value."""

    def __init__(self, forecasts: dict[str, np.ndarray], notes: list[str] | None = None
                 ) -> None:
        super().__init__(forecasts)
        self.notes = list(notes or [])


def series_baselines(values: np.ndarray, origins: np.ndarray, horizon: int, n_targets: int,
                     train_end: int, period: int | None, window: int, val_end: int
                     ) -> Baselines:
    """Each baseline's forecasts (N, H, O) at the model's origins, fitted on training rows:
    one univariate :func:`forecast_baselines` and one :func:`ets_forecasts` per target column
    (on its levels, in original units), stacked on the last axis. The linear AR's order (the
    standard ones, the model's ``window`` and the period) and ridge are chosen on the
    validation rows (up to ``val_end``) per column. The one stacking
    rule for a series, used by the evaluation and the backtest alike."""
    per_col = [_ar_named(
        forecast_baselines(np.asarray(values[:, j], dtype=np.float64), origins, horizon,
                           train_end, period=period, ar_order=window, val_end=val_end))
        for j in range(n_targets)
    ]
    orders = list(dict.fromkeys(c.pop(AR_KEY) for c in per_col if AR_KEY in c))
    if len(orders) > 1:  # columns chose different orders: one baseline, named for all
        for c in per_col:
            c["linear AR(per column)"] = c.pop(next(k for k in c if k.startswith("linear AR")))
    names = [k for k in per_col[0] if all(k in c for c in per_col)]
    out = Baselines({k: np.stack([c[k] for c in per_col], axis=-1) for k in names})
    ets = [ets_forecasts(np.asarray(values[:, j], dtype=np.float64), origins, horizon,
                         train_end, period) for j in range(n_targets)]
    left_out = [e.note if n_targets == 1 else f"target column {j + 1}: {e.note}"
                for j, e in enumerate(ets) if e.forecasts is None]
    if left_out:  # one column without ETS leaves the baseline out: it forecasts all or none
        out.notes.extend(left_out)
    else:
        out[_ets_name([e.name for e in ets])] = np.stack([e.forecasts for e in ets], axis=-1)
    return out


AR_KEY = "_ar_name"


def _ar_named(forecasts: dict[str, np.ndarray]) -> dict:
    """``forecasts`` plus, under AR_KEY, the name of its linear AR (if any)."""
    name = next((k for k in forecasts if k.startswith("linear AR")), None)
    return {**forecasts, AR_KEY: name} if name else dict(forecasts)


def _ets_name(names: list[str]) -> str:
    """``ETS(A,N,N)``; columns that chose different forms: ``ETS(A,N,N/A,Ad,N)``."""
    forms = list(dict.fromkeys(n[4:-1] for n in names))  # order kept, repeats dropped
    return f"ETS({'/'.join(forms)})" if len(forms) <= 2 else "ETS(per column)"


def series_scale(values: np.ndarray, train_end: int, n_targets: int) -> float | None:
    """MASE denominator: mean absolute one-step change over the training rows (all targets)."""
    scales = [mase_scale(np.asarray(values[:train_end, j], dtype=np.float64))
              for j in range(n_targets)]
    return None if any(s is None for s in scales) else float(np.mean(scales))


TIE = 1e-3  # relative difference under which model and best baseline are reported as equal


def _best_baseline(metrics: dict, key: str) -> tuple[str, float] | None:
    base = {k: v.get(key, math.nan) for k, v in metrics.get("baselines", {}).items()}
    base = {k: v for k, v in base.items() if v is not None and not math.isnan(v)}
    if not base:
        return None
    name = min(base, key=base.__getitem__)
    return name, base[name]


def format_p(p: float) -> str:
    """``p = 0.004``, ``p = 0.41``, ``p < 0.001``."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _points(n: int) -> str:
    return f"{n} test point{'' if n == 1 else 's'}"


def verdict(metrics: dict, key: str = "rmse") -> str:
    """One plain sentence: is the model better than the best baseline on ``key``, and is the
    difference significant (Diebold–Mariano at 5%, ``metrics["verdict"]``)?

    A model within ``TIE`` (0.1%) of the best baseline matches it, whatever the test says.
    Metrics without a stored test (an older ``metrics.json``, or ``key`` other than RMSE/MSE)
    get the sentence without significance.
    """
    model = metrics["model"].get(key, math.nan)
    best = _best_baseline(metrics, key)
    if best is None or model is None or math.isnan(model):
        return ""
    name, ref = best
    if ref > 0 and abs(model - ref) <= TIE * ref:
        # e.g. a model whose best epoch is its least-squares start, scored against that same
        # linear model: "beats it by 0.0%" would claim a skill it does not have
        return (f"The model matches the '{name}' baseline on {key.upper()} ({model:.4g} vs "
                f"{ref:.4g}, within {100 * TIE:g}%): it has learned no more than that baseline.")
    test = metrics.get("verdict") or {}
    if key not in ("rmse", "mse") or test.get("baseline") != name:
        return _plain_verdict(key, model, name, ref)
    return _tested_verdict(key, model, name, ref, test)


def _plain_verdict(key: str, model: float, name: str, ref: float) -> str:
    """The sentence without a significance test (metrics saved before the test existed)."""
    if model < ref:
        gain = 100 * (1 - model / ref) if ref > 0 else 0.0
        return (f"The model beats every baseline on {key.upper()} ({model:.4g} vs {ref:.4g} "
                f"for {name}, {gain:.1f}% lower).")
    return (f"Warning: the model is no better than the '{name}' baseline on {key.upper()} "
            f"({model:.4g} vs {ref:.4g}); it has not learned more than that baseline.")


def _tested_verdict(key: str, model: float, name: str, ref: float, test: dict) -> str:
    """Better, worse or no significant difference, with the p-value and the test points."""
    p, n = test.get("p_value"), int(test.get("test_points") or 0)
    diff = (f"{100 * abs(1 - model / ref):.1f}% {'lower' if model < ref else 'higher'}"
            if ref > 0 else "")
    figures = f"{model:.4g} vs {ref:.4g}" + (f", {diff}" if diff else "")
    if p is None or not math.isfinite(p):
        return (f"On only {_points(n)} the model's {key.upper()} is {model:.4g} vs {ref:.4g} for "
                f"the '{name}' baseline" + (f" ({diff})" if diff else "")
                + ": too few to tell whether either is better.")
    evidence = f"{format_p(p)} over {_points(n)}"
    if p >= sig.ALPHA:
        return (f"No significant difference between the model and the '{name}' baseline on "
                f"{key.upper()} ({figures}; {evidence}): the model has not shown that it learned "
                "more than that baseline.")
    if model < ref:
        return (f"The model beats every baseline on {key.upper()} ({model:.4g} vs {ref:.4g} for "
                f"{name}" + (f", {diff}" if diff else "") + f"; {evidence}, significant at 5%).")
    return (f"Warning: the model is worse than the '{name}' baseline on {key.upper()} "
            f"({figures}; {evidence}): it has not learned more than that baseline.")


def significance_note(metrics: dict) -> str:
    """The test behind the verdict in one line, for the report; '' without a stored test."""
    test = metrics.get("verdict") or {}
    if not test.get("baseline"):
        return ""
    stat, p = test.get("statistic"), test.get("p_value")
    if p is None:
        return (f"Too few test points ({test.get('test_points', 0)}) for a Diebold-Mariano test "
                f"against the '{test['baseline']}' baseline.")
    lags = int(test.get("horizon") or 1) - 1
    return (f"Diebold-Mariano test of the model against the '{test['baseline']}' baseline on "
            "squared errors (Harvey-Leybourne-Newbold correction"
            + (f", autocovariances up to lag {lags}" if lags else "")
            + f"): statistic "
            f"{'-' if stat is None else f'{stat:.3g}'}, {format_p(p)}, "
            f"{_points(int(test.get('test_points', 0)))}; significant at 5% when p < 0.05.")


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4g}"


def format_table(metrics: dict) -> str:
    """The model and baselines as an aligned text table, followed by the verdict."""
    rows = [("model", metrics["model"]), *list(metrics.get("baselines", {}).items())]
    heads = ["", *[m.upper() for m in METRICS]]
    cells = [[name, *[_fmt(r.get(m)) for m in METRICS]] for name, r in rows]
    widths = [max(len(x) for x in col) for col in zip(heads, *cells, strict=True)]
    line = lambda xs: "  ".join(x.rjust(w) if i else x.ljust(w)  # noqa: E731
                                for i, (x, w) in enumerate(zip(xs, widths, strict=True)))
    out = [line(heads), line(["-" * w for w in widths])] + [line(c) for c in cells]
    out += list(metrics.get("baseline_notes") or [])  # under the rows they explain
    v = verdict(metrics)
    return "\n".join(out + ([v] if v else []))
