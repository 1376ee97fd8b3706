"""Which covariates matter: each one shuffled across the held-out windows, one at a time.

Shuffling a covariate's inputs between windows keeps its distribution and breaks its link to
the target; the rise in held-out RMSE is what the model draws from it (permutation
importance). A past feature is one input column; a future feature is all its leads; the
calendar features (and the holiday flag) are one group each, as the user switches them on and
off together. A covariate whose shuffling costs almost nothing is noise the model must learn
to ignore: the finding says so, with how to leave it out.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnkit.data.pairs import Pairs
from rnnkit.evaluate.findings.base import Finding, Subject
from rnnkit.inference import model_outputs

MAX_WINDOWS = 2000  # held-out windows scored per shuffle, at most (evenly spread)
NOISE = 0.01  # shuffling costs less than 1% RMSE: the covariate adds nothing to speak of
SEED = 0


def groups(pipe: object) -> dict[str, list[int]]:
    """Input columns of each covariate, by the name the user knows it by."""
    o, p = len(pipe.targets), len(pipe.features)
    out = {name: [o + j] for j, name in enumerate(pipe.features)}
    known = pipe.known
    k = len(known.columns)
    by_name = {name: [j] for j, name in enumerate(known.future)}
    dates = list(range(len(known.future), k))
    holiday = [j for j in dates if known.columns[j] == "cal_holiday"]
    calendar = [j for j in dates if j not in holiday]
    if calendar:
        by_name[f"calendar ({', '.join(known.calendar)})"] = calendar
    if holiday:
        by_name[f"holidays ({known.holidays})"] = holiday
    for name, cols in by_name.items():
        out[name] = [o + p + step * k + j for step in range(pipe.lead) for j in cols]
    return out


def check_covariates(s: Subject) -> list[Finding]:
    if not (s.is_series and s.has_data and s.pipeline.covariates):
        return []
    split = s.held_out()
    pairs, origins = _held_out(s, split)
    if len(pairs) < 2:
        return []
    base = _rmse(s, pairs.inputs, origins)
    if not np.isfinite(base) or base <= 0:
        return []
    rng = np.random.default_rng(SEED)
    rise = {}
    for name, cols in groups(s.pipeline).items():
        x = pairs.inputs.clone()
        perm = torch.from_numpy(rng.permutation(len(x)))
        x[:, :, cols] = x[perm][:, :, cols]
        rise[name] = _rmse(s, x, origins) / base - 1
    ranked = sorted(rise.items(), key=lambda kv: -kv[1])
    said = ", ".join(f"{n} {r:+.1%}" for n, r in ranked)
    out = [Finding("covariates", "info", f"shuffling each covariate across the {len(origins)} "
                   f"{split} windows raises the RMSE by: {said}.",
                   {f"rise_{n}": round(r, 4) for n, r in ranked})]
    idle = [n for n, r in ranked if r < NOISE]
    if idle:
        out.append(Finding("idle-covariate", "info", f"{', '.join(idle)} add"
                           f"{'s' if len(idle) == 1 else ''} almost nothing: shuffled, the "
                           f"RMSE rises less than {NOISE:.0%}.", {},
                           "leave it out (--calendar none, or drop it from --features / "
                           "--future-features) for a smaller, faster model."))
    return out


def _held_out(s: Subject, split: str) -> tuple[Pairs, np.ndarray]:
    """Up to MAX_WINDOWS windows of ``split`` as contiguous tensors, and their origins."""
    pipe = s.pipeline
    every = np.asarray(pipe.origins(split, len(s.series_values())))
    pick = np.unique(np.linspace(0, len(every) - 1, min(len(every), MAX_WINDOWS)).astype(int))
    pairs = pipe.windows(s.tensor(), every[pick])
    return Pairs(pairs.inputs.contiguous(), pairs.targets.contiguous()), every[pick]


def _rmse(s: Subject, inputs: torch.Tensor, origins: np.ndarray) -> float:
    """Held-out RMSE in original units of the model's forecasts from ``inputs``."""
    pipe, values = s.pipeline, s.series_values()
    raw = model_outputs(s.run.model, Pairs(inputs, inputs[:, :1, :1]))
    pred = pipe.forecast_units(raw, values, origins)
    rows = origins[:, None] + np.arange(1, pred.shape[1] + 1)[None, :]
    truth = np.asarray(values[rows, : len(pipe.targets)], dtype=np.float64)
    return float(np.sqrt(np.mean((pred - truth) ** 2)))
