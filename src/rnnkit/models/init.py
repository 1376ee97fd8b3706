"""Start the linear path at the least-squares fit, so training begins from a linear AR model.

The normal equations are accumulated over batches of windows (views), so a long series never
has its windows materialised at once. The recurrent head starts at zero: the untrained model
*is* the linear AR, and early stopping (which scores epoch 0 too) can only keep or improve it.
"""

from __future__ import annotations

import torch

from rnnkit.data.pairs import Pairs
from rnnkit.models.network import RecurrentNet

RIDGE = 1e-4  # relative to the mean diagonal: tames collinear windows (smooth series)


@torch.no_grad()
def init_linear_path(model: RecurrentNet, pairs: Pairs, batch: int = 8192) -> bool:
    """Least-squares fit of the linear path on ``pairs`` (window -> horizon targets).
    Returns whether it was fitted."""
    if model.linear is None or model.cfg.head != "last" or len(pairs) == 0:
        return False
    d = model.linear.in_features
    xtx = torch.zeros(d + 1, d + 1, dtype=torch.float64)
    xty = torch.zeros(d + 1, model.linear.out_features, dtype=torch.float64)
    for s in range(0, len(pairs), batch):
        x = pairs.inputs[s : s + batch].reshape(-1, d).double()  # (B, W*F)
        x = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
        y = pairs.targets[s : s + batch].reshape(len(x), -1).double()  # (B, H*O)
        xtx += x.T @ x
        xty += x.T @ y
    ridge = RIDGE * xtx.diagonal()[:d].mean().clamp_min(1e-12)
    reg = torch.eye(d + 1, dtype=torch.float64) * ridge
    reg[d, d] = 0  # never shrink the intercept
    coef = torch.linalg.solve(xtx + reg, xty)  # (W*F + 1, H*O)
    model.linear.weight.copy_(coef[:d].T.float())
    model.head.weight.zero_()
    model.head.bias.copy_(coef[d].float())
    return True
