"""Simple forecasters written as linear maps over the model's own window, in model units.

A window model's output is ``head(h) + linear(window)``: any forecaster that is an affine
function of the window can therefore be folded into the model's own weights, and forecasts,
intervals, streaming and saved runs need nothing new. This module writes the simple
forecasters that way: ridge AR over the last ``p`` rows, and any level filter ``a @ levels``
(last value, seasonal naive, the mean, ETS through :func:`rnnkit.models.ets.window_weights`).

A map is ``(weight (H*O, W*F), bias (H*O,))`` in float64: ``out = window.reshape(-1) @ weight.T
+ bias`` gives the scaled working values (changes, when the run differences) that the model's
outputs hold. Output index ``h * O + o``; input index ``w * F + f``, targets in the first O
columns (``data/pairs``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from rnnkit.models.least_squares import Moments, solve


class LinearMap(NamedTuple):
    """``out = window.reshape(-1) @ weight.T + bias``, in scaled working units."""

    weight: np.ndarray  # (H*O, W*F)
    bias: np.ndarray  # (H*O,)

    def apply(self, inputs: torch.Tensor) -> np.ndarray:
        """(N, W, F) windows -> (N, H*O) outputs."""
        x = inputs.reshape(inputs.shape[0], -1).double().numpy()
        return x @ self.weight.T + self.bias

    def scaled(self, k: float) -> LinearMap:
        """``k`` times this map: its share in an average with the network."""
        return LinearMap(self.weight * k, self.bias * k)

    @staticmethod
    def mix(maps: list[LinearMap]) -> LinearMap:
        """The equal-weight average of ``maps``: itself a map."""
        return LinearMap(np.mean([m.weight for m in maps], axis=0),
                         np.mean([m.bias for m in maps], axis=0))


class Space(NamedTuple):
    """The model's units: window W, horizon H, F inputs of which the first O are targets, the
    scaler's shift and scale of those O targets, and whether the targets are differenced."""

    window: int
    horizon: int
    inputs: int
    targets: int
    shift: np.ndarray  # (O,)
    scale: np.ndarray  # (O,)
    diff: bool


def ridge_ar(m: Moments, space: Space, order: int, ridge: float) -> LinearMap:
    """Least squares with ``ridge`` over the last ``order`` rows of each training window (all
    F columns), zero weight on the older rows; ``m``: the training windows' moments."""
    coef, intercept = solve(m, ridge, order * space.inputs)  # (order*F, H*O), (H*O,)
    weight = np.zeros((space.horizon * space.targets, space.window * space.inputs))
    weight[:, -order * space.inputs:] = coef.numpy().T
    return LinearMap(weight, intercept.numpy())


def level_filter(space: Space, target: int, weights: np.ndarray, const: np.ndarray) -> LinearMap:
    """Target column ``target`` forecast as ``weights @ levels + const`` (weights (H, L),
    const (H,)), in model units; zero for the other targets' outputs.

    Without differencing the L = W levels are the window itself. With it, the window holds W
    changes, i.e. the L = W + 1 levels up to the origin relative to the last one; the filter
    must then keep levels (rows summing to one, no constant), which is what makes it a
    function of the changes alone.
    """
    w, f, o = space.window, space.inputs, space.targets
    mu, sigma = float(space.shift[target]), float(space.scale[target])
    if space.diff:
        # y_hat_h - y_last = -sum_j d_j * (weights[h, :j].sum()), j = 1..W over the changes
        ahead = -np.cumsum(weights, axis=1)[:, :w]  # (H, W): coefficient of change j
        per_step = np.diff(np.vstack([np.zeros((1, w)), ahead]), axis=0)  # change h - change h-1
        const = np.zeros(space.horizon)
    else:
        per_step = weights
    weight = np.zeros((space.horizon * o, w * f))
    bias = np.zeros(space.horizon * o)
    rows = np.arange(space.horizon) * o + target
    cols = np.arange(w) * f + target
    # scaled in and out: z_out = (sum_k c_k (sigma z_k + mu) + const - mu) / sigma
    weight[np.ix_(rows, cols)] = per_step
    bias[rows] = (mu * per_step.sum(axis=1) + const - mu) / sigma
    return LinearMap(weight, bias)


def levels_needed(space: Space) -> int:
    """How many levels a level filter sees: the window, plus one when it holds changes."""
    return space.window + int(space.diff)


def last_value(space: Space, target: int) -> LinearMap:
    """Every step forecasts the last level seen."""
    weights = np.zeros((space.horizon, levels_needed(space)))
    weights[:, -1] = 1.0
    return level_filter(space, target, weights, np.zeros(space.horizon))


def seasonal_naive(space: Space, target: int, period: int) -> LinearMap | None:
    """Step h forecasts the level one period before it; None when the window is shorter."""
    n = levels_needed(space)
    if not 2 <= period <= n:
        return None
    weights = np.zeros((space.horizon, n))
    for h in range(space.horizon):
        weights[h, n - period + (h % period)] = 1.0
    return level_filter(space, target, weights, np.zeros(space.horizon))


def mean_level(space: Space, target: int, mean: float) -> LinearMap | None:
    """Every step forecasts the training mean; None with differencing (the changes do not
    say how far the level is from the mean)."""
    if space.diff:
        return None
    zeros = np.zeros((space.horizon, levels_needed(space)))
    return level_filter(space, target, zeros, np.full(space.horizon, mean))


def per_target(maps: list[LinearMap]) -> LinearMap:
    """One map from one map per target column (each zero outside its own outputs)."""
    return LinearMap(np.sum([m.weight for m in maps], axis=0),
                     np.sum([m.bias for m in maps], axis=0))
