"""Checks that run the model itself: saturation of a bounded state, and priming.

Saturation: a tanh (or LSTM/GRU) state lives in (-1, 1), so without a linear path the output
``head(h)`` is bounded by ``|W| + b``; targets beyond that bound can never be reached (the
adder with tanh). Hidden units stuck at a bound for most steps carry no information either.

Priming: a per-step model started from a zero state is wrong for its first steps until the
state has seen enough of the sequence. The check runs the model from a zero state over
held-out data, measures the error at each step, and finds how many steps it takes to settle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rnnkit.evaluate.findings.base import Finding, Subject
from rnnkit.models.cells import resolve_activation

PINNED = 0.01  # within 1% of the range from a bound is pinned; a smaller spread is frozen
PINNED_MAJORITY = 0.5  # stuck on half of all unit-steps
BEYOND_REACH = 0.01  # 1% of targets out of reach is not a rounding matter
MAX_SAMPLES = 512  # held-out samples run through the model: enough for stable fractions
SETTLE_EXCESS = 1e-4  # excess error below 0.01% of the target variance counts as settled


def state_bounds(s: Subject) -> tuple[float, float] | None:
    """The range of the last layer's hidden output, or None when it is unbounded."""
    cfg = s.run.model.cfg
    if cfg.cell in ("lstm", "gru"):
        return -1.0, 1.0
    act = resolve_activation(cfg.activation)
    probe = torch.linspace(-1e4, 1e4, 2001, dtype=torch.float64)
    with torch.no_grad():
        y = act(probe)
    if not torch.isfinite(y).all() or y.abs().max() > 100:
        return None
    return float(y.min()), float(y.max())


def _to_units(s: Subject, values: np.ndarray) -> np.ndarray:
    """Scaled output values (..., O) -> original units (changes, for a diff series)."""
    pipe = s.pipeline
    if s.is_series:
        return pipe.scaler.inverse(values, slice(0, len(pipe.targets)))
    return pipe.outputs_to_units(values)


@torch.inference_mode()
def _hidden(s: Subject, split: str) -> np.ndarray:
    """|hidden outputs| of the last layer at every real step: (M, H)."""
    pairs = s.pairs(split)
    n = min(len(pairs), MAX_SAMPLES)
    x = pairs.inputs[:n]
    s.run.model.eval()
    out, _ = s.run.model.encoder(x)  # (B, T, H)
    if pairs.lengths is not None:
        real = torch.arange(x.shape[1])[None, :] < pairs.lengths[:n, None]
        return out[real].double().numpy()
    return out.reshape(-1, out.shape[-1]).double().numpy()


def check_saturation(s: Subject) -> list[Finding]:
    if not s.has_data:
        return []
    bounds = state_bounds(s)
    if bounds is None:
        return []
    lo, hi = bounds
    model = s.run.model
    ev: dict = {}
    parts: list[str] = []
    severity = None
    if model.linear is None:
        w = model.head.weight.detach().double().numpy()  # (outputs, H)
        b = model.head.bias.detach().double().numpy()
        top = b + np.maximum(w * lo, w * hi).sum(axis=1)
        bottom = b + np.minimum(w * lo, w * hi).sum(axis=1)
        o = model.cfg.output_size
        top, bottom = top.reshape(-1, o).max(axis=0), bottom.reshape(-1, o).min(axis=0)  # (O,)
        y = s.targets()  # (M, O)
        beyond = float(np.mean(np.any((y > top) | (y < bottom), axis=1)))
        if beyond > BEYOND_REACH:
            top_u = _to_units(s, top[None, :])[0]
            bottom_u = _to_units(s, bottom[None, :])[0]
            y_u = _to_units(s, y)
            ev.update({"output_max": float(top_u.max()), "output_min": float(bottom_u.min()),
                       "target_max": float(y_u.max()), "target_min": float(y_u.min()),
                       "targets_out_of_reach": beyond})
            parts.append(
                f"the {_state_name(s)} state is bounded, so this model can only output values "
                f"in [{bottom_u.min():.4g}, {top_u.max():.4g}], but {100 * beyond:.0f}% of the "
                f"targets lie outside (they reach {y_u.min():.4g} .. {y_u.max():.4g})")
            severity = "error"
    h = _hidden(s, s.held_out())
    if h.size:
        near = PINNED * (hi - lo)
        # stuck: at a bound, or in a unit that never moves (a GRU whose update gate is shut
        # keeps its zero state); either way the value says nothing about the input
        frozen = h.std(axis=0) < near  # (H,)
        stuck = (h <= lo + near) | (h >= hi - near) | frozen[None, :]
        frac = float(stuck.mean())
        ev["hidden_stuck_fraction"] = frac
        ev["units_mostly_stuck"] = f"{int((stuck.mean(axis=0) > 0.5).sum())}/{h.shape[1]}"
        if frac >= PINNED_MAJORITY:
            parts.append(f"{100 * frac:.0f}% of hidden values are stuck at the bounds "
                         f"{lo:g}/{hi:g} or never move, so they carry no information and pass "
                         "no gradient")
            severity = severity or "warning"
    if severity is None:
        return []
    unscaled = s.config.get("data", {}).get("scaler") == "none"
    if "output_max" in ev:  # targets out of reach: the output path itself must change
        fix = ("use an unbounded activation (--activation identity or relu)"
               if s.run.model.cfg.cell == "rnn" else
               "use --cell rnn --activation identity, or keep the linear path on")
        if unscaled:
            fix += ", or scale the targets (--scaler standard) so they fit the output range"
    else:  # units pin when the inputs or the weights grow large
        fix = ("scale the inputs (--scaler standard)" if unscaled else "lower --lr") + \
              ", or use an unbounded activation (--activation relu or identity)"
    return [Finding("saturation", severity, "; ".join(parts) + ".", ev, fix + ".")]


def _state_name(s: Subject) -> str:
    cfg = s.run.model.cfg
    return str(cfg.activation) if cfg.cell == "rnn" else cfg.cell.upper()


# --- priming ------------------------------------------------------------------------------------
@dataclass
class PrimingCurve:
    """Mean squared error (model units) at each step after a zero state, and what it implies.

    curve: (L,) error at step k (0 = the first prediction). steady: the settled error (median
    of the second half). needed: steps before the error settles (0 = good from the start).
    warmup: the priming this run declares (unscored warm-up steps).
    """

    curve: np.ndarray
    steady: float
    tolerance: float
    needed: int
    warmup: int


@torch.inference_mode()
def priming_curve(s: Subject) -> PrimingCurve | None:
    """Error per step from a zero state over held-out data, for per-step (``next``) models."""
    if not s.has_data or s.shape != "next" or s.run.model.cfg.head != "step":
        return None
    model = s.run.model
    model.eval()
    pipe = s.pipeline
    if s.is_series:
        data = s.tensor()
        o = len(pipe.targets)
        train_end, _ = pipe.bounds(len(s.series_values()))
        begin = max(0, train_end - int(pipe.diff))
        if len(data) - begin < 2 * pipe.window + 2:
            begin = 0  # short held-out part: the whole series still shows the settling
        length = min(len(data) - begin - 1, max(3 * pipe.window, 100))
        if length < 4:
            return None
        starts = np.unique(np.linspace(begin, len(data) - length - 1, 16).astype(int))
        x = torch.stack([data[a : a + length] for a in starts])  # (S, L, F)
        y = torch.stack([data[a + 1 : a + 1 + length, :o] for a in starts])  # (S, L, O)
        real = torch.ones(x.shape[:2], dtype=torch.bool)
    else:
        pairs = s.pairs(s.held_out())
        n = min(len(pairs), MAX_SAMPLES)
        x, y = pairs.inputs[:n], pairs.targets[:n]
        steps = torch.arange(x.shape[1])
        real = (steps[None, :] < pairs.lengths[:n, None] if pairs.lengths is not None
                else torch.ones(x.shape[:2], dtype=torch.bool))
    pred, _ = model(x)  # from a zero state
    err = ((pred - y) ** 2).mean(dim=-1).double() * real  # (S, L)
    counts = real.sum(dim=0).clamp_min(1)
    curve = (err.sum(dim=0) / counts).numpy()
    curve = curve[: int((real.sum(dim=0) > 0).sum())]
    if len(curve) < 4:
        return None
    settled = curve[len(curve) // 2 :]
    steady = float(np.median(settled))
    var = float(y[real].double().var(dim=0).mean()) if real.any() else 1.0
    # Settled means: no worse than twice the settled level, or than the worst settled step
    # (the error of a model varies with the phase of the data; that is not priming), or than
    # an excess of 0.01% of the target variance (negligible whatever the settled level).
    tol = max(2 * steady, 1.1 * float(settled.max()), steady + SETTLE_EXCESS * var)
    bad = np.flatnonzero(curve[: len(curve) // 2] > tol)
    needed = int(bad[-1]) + 1 if len(bad) else 0
    return PrimingCurve(curve, steady, tol, needed, int(pipe.warmup))


def check_priming(s: Subject) -> list[Finding]:
    pc = priming_curve(s)
    if pc is None or pc.needed == 0:
        return []
    n, w = pc.needed, pc.warmup
    first = float(pc.curve[0])
    ratio = first / pc.steady if pc.steady > 0 else float("inf")
    ev: dict = {"needed_warmup": n, "warmup": w, "first_step_mse": first,
                "settled_mse": pc.steady, "first_step_vs_settled": ratio}
    for key in ("test_mse_unprimed_first_steps", "test_mse_primed_first_steps"):
        if key in s.metrics:
            ev[key.removeprefix("test_")] = s.metrics[key]
    head = (f"from a fresh (zero) state the first {n} prediction{'s are' if n > 1 else ' is'} "
            f"poor (the first has {ratio:.3g}x the settled error)")
    if n > w:
        msg = (head + f", but this run primes only {w} step{'s' if w != 1 else ''}: its "
               "predictions at the start of any new sequence or stream are wrong.")
        fix = (f"prime on at least {n} values before using predictions: --warmup {n} (training "
               f"and scoring skip them), or feed run.stream() {n} values first.")
        return [Finding("priming", "warning", msg, ev, fix)]
    msg = head + f"; this run primes {w} steps, which covers it."
    fix = (f"when streaming or generating on new data, feed at least {n} values before "
           "trusting the predictions.")
    return [Finding("priming", "info", msg, ev, fix)]
