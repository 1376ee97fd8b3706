"""Never worse than the best simple model: after training, choose on the validation part among
the network, the simple forecasters and their equal-weight combinations, and fold the choice
into the model's own weights.

The menu (each a linear map over the model's window, ``models/linear_maps``):

* the network as trained;
* ridge AR over the last ``p`` rows, ``p`` and the ridge chosen on validation;
* ETS selected by AICc on the training rows (``models/ets``), its filter over the window;
* last value, the training mean (without differencing), seasonal naive (the period fits);
* the equal-weight combinations ETS + AR, network + ETS, network + AR, network + ETS + AR.

Why combinations: on short series (the macro columns, 30 validation points) the validation
part cannot tell ETS from AR reliably, and their average is rarely worse than either. Every
choice is an affine map of the window plus ``a`` times the recurrent head (``a`` 0, 1/3, 1/2
or 1), so the chosen forecaster *is* the model: predict, forecast, intervals, streaming and the
saved run need nothing new. Fitted values use the training rows only; the choice uses the
validation rows only; the test rows are never read.

On a short series the validation part holds too few forecasts to choose on (the Nile: 15).
There the same fit is repeated on earlier cuts of the series (``train/rolling.py``) and each
candidate's *recipe* ("network + ETS + AR", the orders and forms refitted per cut) is scored
over every cut's validation block: rolling-origin validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from rnnkit.data.pairs import Pairs
from rnnkit.models import ets, linear_maps
from rnnkit.models.least_squares import AR_ORDERS, AR_RIDGES, identifiable, moments
from rnnkit.models.linear_maps import LinearMap, Space
from rnnkit.models.network import RecurrentNet


class Candidate(NamedTuple):
    """A forecaster on the menu: ``network`` times the recurrent head plus ``map``. ``recipe``
    is its name without what was fitted ("network + AR" for "network + AR(8)"): the same
    recipe refitted on an earlier cut of the series is the same candidate there."""

    name: str
    recipe: str
    network: float
    map: LinearMap | None  # None: the network alone


class Scored(NamedTuple):
    """Every candidate of one fit and, by recipe, its (N,) squared validation errors."""

    items: list[Candidate]
    errors: dict[str, np.ndarray]


def applies(model: RecurrentNet) -> str | None:
    """None when the guard can run on ``model``; else why not, in words."""
    cfg = model.cfg
    if cfg.head != "last" or model.linear is None:
        return "the model has no linear path over a window"
    if cfg.loss != "mse":
        return f"loss={cfg.loss} learns a distribution, not a point forecast to combine"
    return None


def space_of(pipe: object) -> Space:
    """The model units of a window series pipeline."""
    o = len(pipe.targets)
    return Space(pipe.window, pipe.horizon, pipe.width, o,
                 np.asarray(pipe.scaler.shift[:o], float), np.asarray(pipe.scaler.scale[:o],
                                                                         float), pipe.diff)


def simple_maps(space: Space, values: np.ndarray, train_end: int, period: int | None
                ) -> dict[str, LinearMap]:
    """Last value, mean, seasonal naive and ETS as maps, fitted on ``values[:train_end]``."""
    o = space.targets
    out: dict[str, LinearMap] = {
        "last value": linear_maps.per_target([linear_maps.last_value(space, j) for j in range(o)])}
    means = [linear_maps.mean_level(space, j, float(values[:train_end, j].mean()))
             for j in range(o)]
    if all(m is not None for m in means):
        out["mean"] = linear_maps.per_target(means)
    if period is not None:
        seasonal = [linear_maps.seasonal_naive(space, j, period) for j in range(o)]
        if all(m is not None for m in seasonal):
            out["seasonal naive"] = linear_maps.per_target(seasonal)
    fits = [ets.checked(values[:train_end, j], period)[0] for j in range(o)]
    if all(f is not None for f in fits):
        n = linear_maps.levels_needed(space)
        maps = [linear_maps.level_filter(space, j, ets.window_weights(f, n, space.horizon),
                                         np.zeros(space.horizon)) for j, f in enumerate(fits)]
        labels = sorted({f.form.label for f in fits})
        out[f"ETS({'/'.join(labels) if len(labels) < 3 else 'per column'})"] = (
            linear_maps.per_target(maps))
    return out


class Scorer(NamedTuple):
    """Validation RMSE of model-unit outputs: ``to_units`` maps (N, H, O) outputs to original
    units; errors are divided by each target's scale so every target counts alike."""

    truth: np.ndarray  # (N, H, O) original units
    to_units: object
    scale: np.ndarray  # (O,)

    def errors(self, outputs: np.ndarray) -> np.ndarray:
        """(N,) mean squared (scaled) error of each forecast."""
        n, h, o = self.truth.shape
        pred = self.to_units(outputs.reshape(n, h, o))
        return np.mean(((pred - self.truth) / self.scale) ** 2, axis=(1, 2))

    def __call__(self, outputs: np.ndarray) -> float:
        return float(np.sqrt(np.mean(self.errors(outputs))))


def scorer_of(pipe: object, values: np.ndarray) -> Scorer:
    """The Scorer of the validation forecasts of ``pipe`` over ``values``."""
    n, o = len(values), len(pipe.targets)
    origins = np.asarray(pipe.origins("val", n))
    steps = origins[:, None] + np.arange(1, pipe.horizon + 1)[None, :]
    truth = np.asarray(values, dtype=np.float64)[steps][..., :o]  # (N, H, O)
    train_end = pipe.bounds(n)[0]
    # one target: RMSE in its own units; several: each divided by its spread, to count alike
    scale = (np.ones(1) if o == 1 else
             np.maximum(np.std(values[:train_end, :o], axis=0), 1e-12))
    return Scorer(truth, lambda out: pipe.forecast_units(out, values, origins), scale)


def best_ar(train: Pairs, val: Pairs, space: Space, score: Scorer) -> tuple[int, LinearMap]:
    """Ridge AR with the order and ridge that score best on validation (one pass over the
    training windows: every order's fit is a block of the same normal equations)."""
    m = moments(train)
    best: tuple[float, int, LinearMap] | None = None
    for order in sorted({p for p in AR_ORDERS if p < space.window} | {space.window}):
        if not identifiable(len(train), order * space.inputs):
            break  # too few windows for this many lags
        for ridge in AR_RIDGES:
            fitted = linear_maps.ridge_ar(m, space, order, ridge)
            s = score(fitted.apply(val.inputs))
            if best is None or s < best[0]:
                best = (s, order, fitted)
    if best is None:
        return 1, linear_maps.ridge_ar(m, space, 1, AR_RIDGES[-1])
    return best[1], best[2]


def menu(ar: tuple[int, LinearMap], simple: dict[str, LinearMap]) -> list[Candidate]:
    """Every candidate: the network, each simple map, and the combinations."""
    ar_name, ar_map = f"AR({ar[0]})", ar[1]
    items = [Candidate("network", "network", 1.0, None), Candidate(ar_name, "AR", 0.0, ar_map)]
    items += [Candidate(k, k.split("(")[0], 0.0, m) for k, m in simple.items()]
    ets_name = next((k for k in simple if k.startswith("ETS")), None)
    if ets_name is not None:
        e = simple[ets_name]
        items += [Candidate(f"{ets_name} + {ar_name}", "ETS + AR", 0.0,
                            LinearMap.mix([e, ar_map])),
                  Candidate(f"network + {ets_name}", "network + ETS", 0.5, e.scaled(1 / 2)),
                  Candidate(f"network + {ets_name} + {ar_name}", "network + ETS + AR", 1 / 3,
                            LinearMap.mix([e, ar_map]).scaled(2 / 3))]
    items.append(Candidate(f"network + {ar_name}", "network + AR", 0.5, ar_map.scaled(1 / 2)))
    return items


def choose(scored: Scored, earlier: Sequence[dict[str, np.ndarray]] = ()
           ) -> tuple[Candidate, dict]:
    """The candidate whose recipe has the lowest validation MSE, averaged over this fit's
    validation part and the ``earlier`` cuts' (recipes missing from a cut are not chosen);
    and what config.json keeps of the choice."""
    folds = [scored.errors, *earlier]
    usable = [c for c in scored.items if all(c.recipe in f for f in folds)]
    mse = {c.recipe: float(np.mean([np.mean(f[c.recipe]) for f in folds])) for c in usable}
    best = min(usable, key=lambda c: mse[c.recipe])
    record = {"chosen": best.name, "recipe": best.recipe, "val_rmse": {
        c.name: round(float(np.sqrt(np.mean(scored.errors[c.recipe]))), 6)
        for c in scored.items}}
    if earlier:
        record["folds"] = len(folds)
        record["fold_rmse"] = {k: round(float(np.sqrt(v)), 6) for k, v in mse.items()}
    return best, record


@torch.no_grad()
def fold_in(model: RecurrentNet, c: Candidate) -> None:
    """Make ``model`` compute ``c``: the recurrent head and linear path scaled by
    ``c.network``, plus ``c.map``."""
    if c.map is None:
        return
    a = c.network
    w = torch.as_tensor(c.map.weight, dtype=model.linear.weight.dtype)
    b = torch.as_tensor(c.map.bias, dtype=model.head.bias.dtype)
    model.head.weight.mul_(a)
    model.head.bias.mul_(a).add_(b)
    model.linear.weight.mul_(a).add_(w)
    if model.linear.bias is not None:
        model.linear.bias.mul_(a)


@torch.no_grad()
def guard(model: RecurrentNet, pipe: object, encoded: object,
          earlier: Sequence[dict[str, np.ndarray]] = ()) -> dict:
    """Choose on validation (and the ``earlier`` cuts' validation errors, ``score`` of the
    same fit on each) and fold the choice into ``model`` (CPU, eval mode); returns what
    config.json keeps: the choice and the scores, or why the guard did not run."""
    scored = score(model, pipe, encoded)
    if isinstance(scored, str):
        return {"skipped": scored}
    best, record = choose(scored, earlier)
    fold_in(model, best)
    return {**record, "note": note(record)}


@torch.no_grad()
def score(model: RecurrentNet, pipe: object, encoded: object) -> Scored | str:
    """Every candidate's validation errors for this fit, or why the guard cannot run."""
    why = applies(model)
    if why is None and getattr(pipe, "shape", None) != "window":
        why = "the run does not forecast from windows"
    if why is not None:
        return why
    values = np.asarray(encoded.dataset.values)
    train, val = pipe.pairs(encoded, "train"), pipe.pairs(encoded, "val")
    if len(val) == 0 or len(train) < 4:
        return "too few training or validation windows"
    space, scorer = space_of(pipe), scorer_of(pipe, values)
    train_end = pipe.bounds(len(values))[0]
    net_out = model(val.inputs)[0].reshape(len(val), -1).double().numpy()
    items = menu(best_ar(train, val, space, scorer),
                 simple_maps(space, values, train_end, pipe.period))
    errors = {}
    for c in items:
        out = c.network * net_out
        if c.map is not None:
            out = out + c.map.apply(val.inputs)
        errors[c.recipe] = scorer.errors(out)
    return Scored(items, errors)


def note(record: dict) -> str | None:
    """One line for the fit's output: what forecasts, and why."""
    if "chosen" not in record:
        return None
    chosen = record["chosen"]
    if "fold_rmse" in record:  # scores by recipe, over every cut
        scores, mine = record["fold_rmse"], record["recipe"]
        where = f"over {record['folds']} rolling-origin validation folds"
    else:
        scores, mine, where = record["val_rmse"], chosen, "on validation"
    if chosen == "network":
        simple = min((k for k in scores if "network" not in k), key=scores.get, default=None)
        tail = f"; best simple model {simple} {scores[simple]:.4g}" if simple else ""
        return (f"kept the network: the best of {len(scores)} candidates {where} "
                f"(RMSE {scores[mine]:.4g}{tail})")
    return (f"forecasts come from {chosen}, the best of {len(scores)} candidates {where} "
            f"(RMSE {scores[mine]:.4g}; the network alone {scores['network']:.4g});"
            " --no-guard keeps the network")
