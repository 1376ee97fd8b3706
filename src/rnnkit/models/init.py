"""Start the linear path at the least-squares fit, so training begins from a linear AR model.

The normal equations are accumulated over batches of windows (views), so a long series never
has its windows materialised at once. The recurrent head starts at zero: the untrained model
*is* the linear AR, and early stopping (which scores epoch 0 too) can only keep or improve it.
"""

from __future__ import annotations

import torch

from rnnkit.data.pairs import Pairs
from rnnkit.models.network import RecurrentNet

# Relative to the mean variance of the (centred) window entries, as in the linear AR baseline:
# only keeps the solve stable on collinear windows (smooth series, constant stretches). A larger
# penalty on uncentred moments shrank the fit by up to percents on series with an offset, so the
# untrained model was no longer the least-squares AR it promises to be.
RIDGE = 1e-8


@torch.no_grad()
def least_squares(pairs: Pairs, batch: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge-stabilised least squares of flattened targets on flattened windows: (coef
    (W*F, H*O), intercept (H*O,)) in float64, accumulated batch by batch."""
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
    ridge = RIDGE * (xtx.trace() / d).clamp_min(torch.finfo(torch.float64).tiny)
    coef = torch.linalg.solve(xtx + ridge * torch.eye(d, dtype=torch.float64), xty)  # (W*F, H*O)
    return coef, my - mx @ coef


@torch.no_grad()
def init_linear_path(model: RecurrentNet, pairs: Pairs, batch: int = 8192) -> bool:
    """Least-squares fit of the linear path on ``pairs`` (window -> horizon targets).
    Returns whether it was fitted."""
    if model.linear is None or model.cfg.head != "last" or len(pairs) == 0:
        return False
    coef, intercept = least_squares(pairs, batch)
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


def prepare(model: RecurrentNet, pairs: Pairs, lr: float) -> list[dict] | None:
    """Fit the linear path on ``pairs`` and return Adam parameter groups (the linear path at
    ``lr * LINEAR_LR_SCALE``), or None when there is no least-squares path to protect."""
    if not init_linear_path(model, pairs):
        return None
    lin = list(model.linear.parameters())
    rest = [p for p in model.parameters() if all(p is not q for q in lin)]
    return [{"params": rest}, {"params": lin, "lr": lr * LINEAR_LR_SCALE}]
