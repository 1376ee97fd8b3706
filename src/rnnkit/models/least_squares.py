"""The one least-squares linear AR: the linear-AR baseline and the linear path's start.

A window -> horizon map fitted by ridge-stabilised least squares is both a baseline every model
is scored against (``evaluate/baselines``, ``evaluate/panel_scores``) and where the model's
linear path starts, so that training begins from that very baseline. Written once here, the two
can never drift apart.

The normal equations are accumulated over batches of windows (views), so a long series never
has its windows materialised at once. The recurrent head starts at zero: the untrained model
*is* the linear AR, and early stopping (which scores epoch 0 too) can only keep or improve it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from rnnkit.data.pairs import Pairs
from rnnkit.models.network import RecurrentNet

# Relative to the mean variance of the (centred) window entries: only keeps the solve stable on
# collinear windows (smooth series, constant stretches). A larger penalty on uncentred moments
# shrank the fit by up to percents on series with an offset, so the untrained model was no
# longer the least-squares AR it promises to be.
RIDGE = 1e-8
# what validation chooses from, for the linear-AR baseline and the guard's AR alike: the
# orders (past values) and the ridge penalties, relative like RIDGE
AR_ORDERS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48)
AR_RIDGES = (RIDGE, 1e-3, 1e-2, 1e-1)


class Moments(NamedTuple):
    """The centred normal equations of flattened windows and targets, float64: what every
    least-squares fit over (a trailing part of) these windows needs."""

    mx: torch.Tensor  # (W*F,) window means
    my: torch.Tensor  # (H*O,) target means
    xtx: torch.Tensor  # (W*F, W*F)
    xty: torch.Tensor  # (W*F, H*O)


@torch.no_grad()
def moments(pairs: Pairs, batch: int = 8192) -> Moments:
    """:class:`Moments` of ``pairs``, accumulated batch by batch."""
    n = len(pairs)
    first = pairs.rows(0, 1)
    d, k = first.inputs[0].numel(), first.targets[0].numel()
    # Centre by the means (the intercept absorbs them), so the ridge scales with the spread of
    # the windows, not their level. Reductions over the strided views copy no windows.
    # (Panels gather their windows batch by batch, so both passes go through ``rows``.)
    mx = torch.zeros(d, dtype=torch.float64)
    my = torch.zeros(k, dtype=torch.float64)
    for s in range(0, n, batch):
        b = pairs.rows(s, s + batch)
        mx += b.inputs.sum(dim=0, dtype=torch.float64).reshape(-1)  # (W*F,)
        my += b.targets.sum(dim=0, dtype=torch.float64).reshape(-1)  # (H*O,)
    mx, my = mx / n, my / n
    xtx = torch.zeros(d, d, dtype=torch.float64)
    xty = torch.zeros(d, k, dtype=torch.float64)
    for s in range(0, n, batch):
        b = pairs.rows(s, s + batch)
        x = b.inputs.reshape(-1, d).double() - mx  # (B, W*F)
        y = b.targets.reshape(len(x), -1).double() - my  # (B, H*O)
        xtx += x.T @ x
        xty += x.T @ y
    return Moments(mx, my, xtx, xty)


def identifiable(windows: int, lags: int) -> bool:
    """Whether ``windows`` training windows pin down a linear map of ``lags`` inputs: at least
    two rows per coefficient (intercept included), the rule every AR fit here follows."""
    return windows >= 2 * (lags + 1)


def solve(m: Moments, ridge: float = RIDGE, last: int | None = None
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """(coef (d, H*O), intercept (H*O,)) of the ridge fit on the ``last`` flattened window
    entries (all when None); ``ridge`` relative to their mean centred variance."""
    cols = slice(-last, None) if last else slice(None)
    xtx, xty, mx = m.xtx[cols, cols], m.xty[cols], m.mx[cols]
    d = xtx.shape[0]
    if not xtx.any():
        # windows that never vary (a constant series): nothing to regress on, so the map is the
        # mean; the solve would divide zero by a subnormal ridge and give NaN
        coef = torch.zeros(d, xty.shape[1], dtype=torch.float64)
        return coef, m.my - mx @ coef
    penalty = ridge * (xtx.trace() / d).clamp_min(torch.finfo(torch.float64).tiny)
    coef = torch.linalg.solve(xtx + penalty * torch.eye(d, dtype=torch.float64), xty)
    return coef, m.my - mx @ coef


def least_squares(pairs: Pairs, batch: int = 8192, ridge: float = RIDGE
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge-stabilised least squares of flattened targets on flattened windows: (coef
    (W*F, H*O), intercept (H*O,)) in float64. ``ridge`` is the penalty relative to the mean
    variance of the centred window entries.

    ``prediction = window.reshape(-1) @ coef + intercept`` in the units of ``pairs``.
    """
    return solve(moments(pairs, batch), ridge)


@torch.no_grad()
def least_squares_start(model: RecurrentNet, pairs: Pairs, batch: int = 8192,
                        fit: tuple[torch.Tensor, torch.Tensor] | None = None) -> bool:
    """Set the linear path to the least-squares fit on ``pairs`` (window -> horizon targets;
    ``fit``: that fit, already computed) and the recurrent head to zero. Returns whether the
    model has such a path to start."""
    if model.linear is None or model.cfg.head != "last" or len(pairs) == 0:
        return False
    coef, intercept = fit if fit is not None else least_squares(pairs, batch)
    model.linear.weight.copy_(coef.T.float())
    if model.linear.bias is not None:
        # the intercept lives in head.bias; a random linear bias would offset every prediction
        model.linear.bias.zero_()
    model.head.weight.zero_()
    model.head.bias.copy_(intercept.float())
    return True


# The linear path starts at its least-squares optimum: Adam's unit-size steps would only knock
# it off, so it learns this much slower while the recurrent path learns the residual.
LINEAR_LR_SCALE = 0.1


def param_groups(model: RecurrentNet, lr: float) -> list[dict]:
    """Adam parameter groups of a model whose linear path was started by
    :func:`least_squares_start`: that path at ``lr * LINEAR_LR_SCALE``, the rest at ``lr``."""
    lin = list(model.linear.parameters())
    rest = [p for p in model.parameters() if all(p is not q for q in lin)]
    return [{"params": rest}, {"params": lin, "lr": lr * LINEAR_LR_SCALE}]
