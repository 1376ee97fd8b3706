"""Skill: is the model better than a constant, the last value, or a linear model?

``no-skill`` is the "forecast is a flat line" / "same prediction for every input" failure: the
model's error is within a few percent of the mean or last-value baseline, or its predictions
barely vary while the targets do.

``baseline-better`` is a linear AR, seasonal-naive or ETS baseline at least 5% better than the model
*and* significantly so (the Diebold–Mariano p-values that scoring stores in
``metrics["verdict"]``, see ``rnnkit.evaluate.significance``). ``not-significant`` is a note that
the model and its best baseline differ by no more than noise on this test part.
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit.evaluate.findings.base import Finding, Subject
from rnnkit.evaluate.scoring import TIE
from rnnkit.evaluate.significance import ALPHA

NO_SKILL_RATIO = 0.97  # RMSE within 3% of the better trivial baseline
FLAT_VARIANCE = 0.05  # predictions varying less than 5% as much as the targets (variance)
CLEAR_SKILL = 0.1  # model MSE below 10% of the mean baseline's: a linear model winning is a note
BETTER = 0.95  # a baseline with RMSE below 95% of the model's is worth a finding (when significant)


def p_value(s: Subject, baseline: str) -> float:
    """The Diebold–Mariano p-value of the model against ``baseline`` (NaN when not stored:
    metrics from before the test, or too few test points)."""
    v = ((s.metrics.get("verdict") or {}).get("p_values") or {}).get(baseline)
    return float("nan") if v is None else float(v)


def prediction_variance_ratio(pred: np.ndarray, truth: np.ndarray) -> float:
    """Variance of the predictions over samples / that of the targets, per position, averaged.

    pred, truth: (N, ...) with samples first. NaN when the targets do not vary.
    """
    p = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1)
    t = np.asarray(truth, dtype=np.float64).reshape(len(truth), -1)
    tv = t.var(axis=0)
    keep = tv > 1e-12 * np.maximum(1.0, np.abs(t.mean(axis=0)) ** 2)
    if len(t) < 2 or not keep.any():
        return float("nan")
    return float(np.mean(p.var(axis=0)[keep] / tv[keep]))


def check_skill(s: Subject) -> list[Finding]:
    out: list[Finding] = []
    ratio = s.skill_ratio()
    ev = s.evaluation
    var_ratio = float("nan")
    if ev is not None and len(ev.pred) >= 2:
        var_ratio = prediction_variance_ratio(ev.pred, ev.truth)
    flat = math.isfinite(var_ratio) and var_ratio < FLAT_VARIANCE
    useless = math.isfinite(ratio) and ratio >= NO_SKILL_RATIO
    if useless or flat:
        names = [b for b in ("mean", "last value") if math.isfinite(s.rmse(b))]
        best = min(names, key=s.rmse) if names else "mean"
        evidence = {"model_rmse": s.rmse(), f"{best}_rmse": s.rmse(best)}
        if math.isfinite(p_value(s, best)):
            evidence["p_value"] = p_value(s, best)
        if math.isfinite(var_ratio):
            evidence["prediction_variance_ratio"] = var_ratio
        if flat:
            what = (f"the predictions vary only {100 * var_ratio:.1f}% as much as the targets: "
                    "the model predicts almost the same value for every input")
        else:
            what = "the model has no skill"
        if useless:
            how = (f"{100 * (ratio - 1):.1f}% above" if ratio >= 1 else
                   f"only {100 * (1 - ratio):.1f}% below")
            what += f"{';' if flat else ':'} its error is {how} the '{best}' baseline's"
        severity = "error" if (math.isfinite(ratio) and ratio >= 1.0) or flat else "warning"
        fix = ("check that inputs carry information about the targets (features, window), then "
               "train longer or with a higher --lr; a model that only learned the mean needs "
               "more signal, not more epochs")
        if best == "last value":
            fix = ("the series may be a random walk; if not, try --transform diff, a longer "
                   "--window, or more epochs")
        fix = less_capacity(s) or fix
        out.append(Finding("no-skill", severity, what + ".", evidence, fix + "."))
    out.extend(_linear_better(s))
    if not out:  # no-skill already says the model is no better (with the p-value)
        out.extend(_not_significant(s))
    return out


def _linear_better(s: Subject) -> list[Finding]:
    """A linear AR, seasonal-naive or ETS baseline beating the model is a note when the model is
    already very good (a sine is exactly linear), a warning when it is not."""
    others = {k: s.rmse(k) for k in s.metrics.get("baselines", {})
              if k not in ("mean", "last value")}
    others = {k: v for k, v in others.items() if math.isfinite(v)}
    model = s.rmse()
    if not others or not math.isfinite(model):
        return []
    name = min(others, key=others.__getitem__)
    p = p_value(s, name)
    if not others[name] < BETTER * model or (math.isfinite(p) and p >= ALPHA):
        return []  # not clearly better, or better by no more than noise (_not_significant says)
    mean = s.rmse("mean")
    strong = math.isfinite(mean) and mean > 0 and (model / mean) ** 2 < CLEAR_SKILL
    severity = "info" if strong else "warning"
    msg = (f"the '{name}' baseline beats the model (RMSE {others[name]:.4g} vs {model:.4g})"
           + (f"; the model is still very accurate, {_simple(name)}"
              if strong else "; the recurrent model adds nothing over it") + ".")
    fix = ("nothing to do if the accuracy is enough; a linear model is the simpler choice"
           if strong else "train longer or use --window equal to the period; else use the "
           "simpler baseline")
    fix = fix if strong else less_capacity(s) or fix
    evidence = {"model_rmse": model, f"{name}_rmse": others[name]}
    if math.isfinite(p):
        evidence["p_value"] = p
    return [Finding("baseline-better", severity, msg, evidence, fix + ".")]


def less_capacity(s: Subject) -> str | None:
    """The advice for an over-fitted model, or None when it does not look over-fitted."""
    why = s.overfit()
    if why is None:
        return None
    return (f"the model over-fits ({why}): more epochs will not help; use a smaller "
            "--hidden-size, --weight-decay 1e-3, a shorter --window or more data")


def _simple(name: str) -> str:
    """Why a very accurate model can still lose to this baseline."""
    if name.startswith("linear AR"):
        return "the series is close to linear"
    return "the series is well forecast by that simple model"


def _not_significant(s: Subject) -> list[Finding]:
    """A note when the verdict's test finds no significant difference from the best baseline
    (or has too few test points to test one), unless the two are within 0.1% (a tie)."""
    test = s.metrics.get("verdict") or {}
    name, n = test.get("baseline"), int(test.get("test_points") or 0)
    model, base = s.rmse(), s.rmse(name) if name else float("nan")
    if not name or not (math.isfinite(model) and math.isfinite(base)):
        return []
    if base > 0 and abs(model - base) <= TIE * base:
        return []
    p = test.get("p_value")
    evidence = {"model_rmse": model, f"{name}_rmse": base, "test_points": n}
    if p is None:
        what = (f"only {n} test point{'s' if n != 1 else ''}: too few to test whether the model "
                f"or the '{name}' baseline is better")
    elif float(p) < ALPHA:
        return []
    else:
        evidence["p_value"] = float(p)
        what = (f"the model's RMSE differs from the '{name}' baseline's by no more than noise "
                f"(Diebold-Mariano p = {float(p):.2g} over {n} test points)")
    return [Finding("not-significant", "info", what + ".", evidence,
                    "judge the model on more test points (a longer series, or a larger test part "
                    "with --split) before preferring it to the simpler baseline.")]
