"""Probabilistic heads: what a network predicts beside its point forecast, and how it is trained.

``loss`` (``ModelConfig.loss``) names the head:

- ``mse``: the point forecast only (the default).
- ``gaussian``: the point is the mean, and one more output per value gives the scale,
  ``softplus(raw) + 1e-3`` (in scaled units). The training loss is the Gaussian negative
  log-likelihood.
- ``student_t``: mean, scale and degrees of freedom ``2 + softplus(raw)`` (above 2, so the
  variance is finite). Heavy tails for series with jumps; the loss is the Student-t negative
  log-likelihood.
- ``pinball``: quantile regression at ``quantiles`` (0.5 is always one of them, and is the
  point). The other quantiles are the median minus or plus cumulative softplus steps, so they
  never cross. The loss is the mean pinball loss.

Everything here works in the model's scaled units. ``quantile`` returns, for a probability tau,
outputs that the pipeline turns into original units like a point forecast. When the pipeline
integrates differences, the offsets of the steps are added in quadrature, as for independent
steps; that is exact for the first step and an approximation after it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

MIN_SCALE = 1e-3


def all_quantiles(quantiles: tuple[float, ...] | list[float]) -> tuple[float, ...]:
    """The quantiles a pinball head predicts: the given ones and the median, sorted."""
    return tuple(sorted({round(float(q), 6) for q in quantiles} | {0.5}))


def extra_outputs(loss: str, quantiles: tuple[float, ...]) -> int:
    """Outputs per predicted value beside the point forecast."""
    if loss == "gaussian":
        return 1
    if loss == "student_t":
        return 2
    if loss == "pinball":
        return len(all_quantiles(quantiles)) - 1
    return 0


def _scale(raw: torch.Tensor) -> torch.Tensor:
    return F.softplus(raw) + MIN_SCALE


def _df(raw: torch.Tensor) -> torch.Tensor:
    return 2.0 + F.softplus(raw)


def quantile_values(point: torch.Tensor, extra: torch.Tensor,
                    quantiles: tuple[float, ...]) -> torch.Tensor:
    """(..., K) the pinball head's quantiles, sorted like ``all_quantiles``."""
    qs = all_quantiles(quantiles)
    mid = qs.index(0.5)
    steps = F.softplus(extra)  # (..., K - 1)
    below = point[..., None] - torch.cumsum(steps[..., :mid].flip(-1), dim=-1).flip(-1)
    above = point[..., None] + torch.cumsum(steps[..., mid:], dim=-1)
    return torch.cat([below, point[..., None], above], dim=-1)


def loss_value(loss: str, quantiles: tuple[float, ...], point: torch.Tensor,
               extra: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None
               ) -> torch.Tensor:
    """Mean loss per scored value; ``extra`` (..., P) the head's outputs beside the point."""
    if loss == "gaussian":
        s = _scale(extra[..., 0])
        per = torch.log(s) + 0.5 * ((target - point) / s) ** 2
    elif loss == "student_t":
        s, df = _scale(extra[..., 0]), _df(extra[..., 1])
        per = -torch.distributions.StudentT(df, point, s).log_prob(target)
    else:
        q = quantile_values(point, extra, quantiles)
        tau = torch.tensor(all_quantiles(quantiles), dtype=q.dtype, device=q.device)
        diff = target[..., None] - q
        per = torch.maximum(tau * diff, (tau - 1) * diff).mean(-1)
    if mask is None:
        return per.mean()
    m = mask.unsqueeze(-1).to(device=per.device, dtype=per.dtype)
    return (per * m).sum() / (m.sum() * per.shape[-1]).clamp_min(1)


def offsets(loss: str, quantiles: tuple[float, ...], point: np.ndarray, extra: np.ndarray,
            tau: float) -> np.ndarray:
    """(N, H, O) the tau-quantile minus the point, per step, in scaled units."""
    if loss == "gaussian":
        from scipy.stats import norm

        return norm.ppf(tau) * _np_scale(extra[..., 0])
    if loss == "student_t":
        from scipy.stats import t

        df = 2.0 + np.logaddexp(0.0, extra[..., 1])
        return t.ppf(tau, df) * _np_scale(extra[..., 0])
    q = quantile_values(torch.from_numpy(point), torch.from_numpy(extra),
                        quantiles).numpy()
    qs = np.asarray(all_quantiles(quantiles))
    return _between(q, qs, np.full(point.shape, tau)) - point


def _between(q: np.ndarray, qs: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Values at probabilities ``tau`` (...) of quantiles ``q`` (..., K) at levels ``qs``:
    linear between learned quantiles, the outermost one outside them."""
    j = np.clip(np.searchsorted(qs, tau), 1, len(qs) - 1)
    w = np.clip((tau - qs[j - 1]) / (qs[j] - qs[j - 1]), 0.0, 1.0)
    lo = np.take_along_axis(q, (j - 1)[..., None], -1)[..., 0]
    hi = np.take_along_axis(q, j[..., None], -1)[..., 0]
    return lo + w * (hi - lo)


def _np_scale(raw: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, raw) + MIN_SCALE


def quantile(loss: str, quantiles: tuple[float, ...], point: np.ndarray, extra: np.ndarray,
             tau: float, diff: bool) -> np.ndarray:
    """(N, H, O) outputs in scaled units that the pipeline turns into the tau-quantile of each
    forecast, as it turns ``point`` into the forecast. With ``diff`` the pipeline adds up the
    steps, so each step's offset is the growth of the offsets added in quadrature."""
    off = offsets(loss, quantiles, point, extra, tau)
    if diff and off.shape[1] > 1:
        total = np.sign(off) * np.sqrt(np.cumsum(off ** 2, axis=1))
        off = np.diff(total, axis=1, prepend=0.0)
    return point + off


def sample(loss: str, quantiles: tuple[float, ...], point: np.ndarray, extra: np.ndarray,
           rng: np.random.Generator) -> np.ndarray:
    """One draw per value from the predicted distribution, in scaled units (forecast paths)."""
    if loss == "gaussian":
        return point + _np_scale(extra[..., 0]) * rng.standard_normal(point.shape)
    if loss == "student_t":
        df = 2.0 + np.logaddexp(0.0, extra[..., 1])
        return point + _np_scale(extra[..., 0]) * rng.standard_t(df)
    q = quantile_values(torch.from_numpy(point), torch.from_numpy(extra), quantiles).numpy()
    return _between(q, np.asarray(all_quantiles(quantiles)), rng.uniform(size=point.shape))
