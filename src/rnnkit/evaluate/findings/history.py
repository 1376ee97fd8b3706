"""Checks on the training history: over-fitting, stopping too early, gradient norms.

Everything here reads ``history.csv`` only (per-epoch train/validation loss and the mean
pre-clipping gradient norm), so it works on any saved run, with or without its data.
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit.evaluate.findings.base import Finding, Subject

OVERFIT_RISE = 0.2  # validation loss 20% above its best ...
OVERFIT_TRAIN_DROP = 0.1  # ... while the training loss kept falling by 10%
OVERFIT_SEVERE = 0.5  # validation 50% above its best: a warning, not a note
STILL_IMPROVING_DROP = 0.02  # monitored loss fell 2% over the last stretch of epochs
EXPLODE_GROWTH = 100.0  # late gradient norms 100x the early ones
EXPLODE_SPIKE = 100.0  # one later epoch's norm 100x the early ones
EXPLODE_LOSS = 10.0  # an epoch's training loss 10x the untrained model's
VANISH_SHRINK = 1e-3  # gradient norms shrank 1000x ...
VANISH_LOSS = 0.5  # ... while the training loss is still above half its start
VANISH_FLOOR = 1e-7  # or the gradient is this small from the first epoch
MEMBERS_APART = 1.5  # the worst ensemble member's validation loss 1.5x the best one's


def _column(history: list[dict], key: str) -> np.ndarray:
    return np.array([float(r.get(key, math.nan)) for r in history], dtype=np.float64)


def check_history(s: Subject) -> list[Finding]:
    h = s.history
    if len(h) < 3:
        return []
    return [*_overfitting(s), *_still_improving(s), *_gradients(s), *_members(s)]


def _members(s: Subject) -> list[Finding]:
    """An ensemble's members (config.json ``ensemble``): how far apart they ended, and what
    averaging them gained. Members far apart mean the fit depends on its initial weights."""
    record = s.config.get("ensemble")
    if not record or len(record.get("members", [])) < 2:
        return []
    each, average = np.array(record["members"], dtype=np.float64), float(record["average"])
    spread = float(each.max() / each.min()) if each.min() > 0 else math.inf
    gain = 1 - average / float(each.mean()) if each.mean() > 0 else 0.0
    ev = {"members": len(each), "member_val_loss_min": float(each.min()),
          "member_val_loss_max": float(each.max()), "average_val_loss": average}
    msg = (f"the {len(each)} ensemble members' validation losses range from {each.min():.4g} "
           f"to {each.max():.4g}; their average scores {average:.4g}, {100 * gain:.1f}% below "
           "the mean member")
    if spread >= MEMBERS_APART:
        return [Finding("members-disagree", "warning", msg + ": the fit depends on its initial "
                        "weights.", ev, "trust the average over any one member; a smaller "
                        "--hidden-size or more data makes the members agree.")]
    return [Finding("ensemble", "info", msg + ".", ev, "nothing to do.")]


def _overfitting(s: Subject) -> list[Finding]:
    train, val = _column(s.history, "train_loss"), _column(s.history, "val_loss")
    if not np.isfinite(val).any():
        return []
    best = int(np.nanargmin(val))
    span = max(3, len(val) // 10)
    if best >= len(val) - span:
        return []  # still at (or near) its best: nothing to see yet
    # the late level, not the worst epoch: one unstable epoch is not memorisation
    val_late = float(np.nanmedian(val[-span:]))
    train_late = float(np.nanmedian(train[-span:]))
    rise = val_late / val[best] - 1 if val[best] > 0 else math.nan
    drop = 1 - train_late / train[best] if train[best] > 0 else math.nan
    if not (rise >= OVERFIT_RISE and drop >= OVERFIT_TRAIN_DROP):
        return []
    epoch = int(s.history[best]["epoch"])
    msg = (f"validation loss rose {100 * rise:.0f}% after epoch {epoch} while the training "
           f"loss fell {100 * drop:.0f}% more: the model memorises the training data; the "
           f"weights of epoch {epoch} are the ones kept.")
    return [Finding("overfitting", "warning" if rise >= OVERFIT_SEVERE else "info", msg,
                    {"best_epoch": epoch, "val_loss_best": float(val[best]),
                     "val_loss_late": val_late, "train_loss_best": float(train[best]),
                     "train_loss_late": train_late},
                    "use a smaller --hidden-size, --weight-decay 1e-4, more data, or keep "
                    "early stopping on (it already stops at the best epoch).")]


def _still_improving(s: Subject) -> list[Finding]:
    training = s.config.get("training", {})
    reason = str(training.get("stop_reason", ""))
    if not (reason == "max epochs" or reason.startswith("time budget")):
        return []
    val = _column(s.history, "val_loss")
    monitor = val if np.isfinite(val).any() else _column(s.history, "train_loss")
    epochs = np.array([r["epoch"] for r in s.history], dtype=np.float64)
    last = int(epochs[-1])
    best = int(epochs[int(np.nanargmin(monitor))])
    if last - best >= 5:
        return []
    span = max(3, len(monitor) // 10)
    before = float(np.nanmin(monitor[: -span])) if len(monitor) > span else math.nan
    now = float(np.nanmin(monitor[-span:]))
    drop = 1 - now / before if math.isfinite(before) and before > 0 else math.nan
    if not (math.isfinite(drop) and drop >= STILL_IMPROVING_DROP):
        return []
    # Worth a warning only while the model is not clearly better than a trivial baseline:
    # more epochs then may be what it lacks. A model that already works just has headroom.
    ratio = s.skill_ratio()
    weak = not (math.isfinite(ratio) and ratio < 0.9)
    epochs_cfg = int(s.config.get("train", {}).get("epochs", last) or last)
    msg = (f"training stopped ({reason}) while the loss was still falling ({100 * drop:.1f}% "
           f"over the last {span} epochs): more epochs would improve it"
           + (", and it is under-trained as it is." if weak else "."))
    return [Finding("still-improving", "warning" if weak else "info", msg,
                    {"last_epoch": last, "best_epoch": best, "recent_drop": drop},
                    f"train longer: --epochs {max(2 * epochs_cfg, last + 50)}"
                    + (" or a larger --max-seconds" if reason.startswith("time") else "") + ".")]


def _gradients(s: Subject) -> list[Finding]:
    g = _column(s.history, "grad_norm")[1:]  # epoch 0 has no step
    g = g[np.isfinite(g)]
    if len(g) < 3:
        return []
    # "early" is the first tenth of training: the scale gradients start at, which later
    # epochs are compared with (a converged model's tiny late norms are no yardstick)
    k = max(1, len(g) // 10)
    early, late = float(np.median(g[:k])), float(np.median(g[-k:]))
    peak = float(g[k:].max()) if len(g) > k else float(g.max())
    clip = s.config.get("train", {}).get("clip")
    ev = {"grad_norm_early": early, "grad_norm_late": late, "grad_norm_peak": peak,
          "clip": clip if clip else "off"}
    train = _column(s.history, "train_loss")
    start = train[0] if math.isfinite(train[0]) and train[0] > 0 else math.nan
    # The loss jumping far above where it started is the same instability seen from the other
    # side (and the only sign when the very first steps exploded). "Where it started" is at
    # least the loss of predicting zero: a linear path fitted by least squares can make the
    # untrained model nearly exact, and any step then looks like a huge relative rise.
    trivial = float(np.mean(s.targets() ** 2)) if s.has_data else 0.0
    ref = max(start, trivial) if math.isfinite(start) else math.nan
    blowup = float(np.nanmax(train[1:]) / ref) if math.isfinite(ref) and ref > 0 else math.nan
    grew = late / early if early > 0 else math.nan
    spiked = peak / early if early > 0 else math.nan
    if grew >= EXPLODE_GROWTH or spiked >= EXPLODE_SPIKE or blowup >= EXPLODE_LOSS:
        if math.isfinite(blowup) and blowup >= EXPLODE_LOSS:
            ev["train_loss_peak_vs_start"] = blowup
        msg = (f"gradient norms grew {grew:.0f}x during training (peak {peak:.3g})"
               if grew >= EXPLODE_GROWTH else
               f"gradient norms spiked to {peak:.3g}, {spiked:.0f}x their early size"
               if spiked >= EXPLODE_SPIKE else
               f"the training loss blew up to {blowup:.3g}x its starting value")
        msg += ("; clipping kept the steps bounded, but the loss surface is unstable."
                if clip else "; without clipping such steps can wreck the weights.")
        fix = ("lower the learning rate (--lr), use --cell lstm or gru"
               + ("" if clip else ", and turn clipping on (--clip 1)"))
        return [Finding("exploding-gradients", "warning", msg, ev, fix + ".")]
    kept = float(np.nanmin(train)) / start if math.isfinite(start) else math.nan
    if kept >= VANISH_LOSS and (late <= VANISH_SHRINK * early or late <= VANISH_FLOOR):
        ev["train_loss_vs_start"] = kept
        msg = (f"gradient norms fell to {late:.3g} ({late / early:.1e} of their early size) "
               f"while the training loss is still {100 * kept:.0f}% of where it started: the "
               "network stopped learning (saturated or dead units).")
        return [Finding("vanishing-gradients", "warning", msg, ev,
                        "use --cell lstm or gru, a lower --lr (dead ReLU units), or scale the "
                        "inputs (--scaler standard).")]
    return []
