"""PNG plots of a run: loss and gradient norms, predictions vs truth, residuals, forecast with
history, continuations, priming and the rolling-origin backtest.

Matplotlib runs headless (Agg). Every plot has a title, axis labels with units where known
(values are in the data's original units), a legend, for series the train/validation/test
split marked, and the strongest simple baseline drawn beside the model where it helps.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from rnnkit.persist import atomic_write_bytes

MODEL, TRUTH, BASE = "tab:blue", "black", "tab:orange"
OTHERS = ("tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink")  # baselines
MAX_COVARIATES = 4  # covariate panels drawn under the target, at most (all are ranked)


def _save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _best_baseline(baselines: dict[str, np.ndarray], truth: np.ndarray) -> str | None:
    """The baseline with the lowest squared error on ``truth``: the one worth drawing."""
    if not baselines:
        return None
    return min(baselines, key=lambda k: float(np.mean((baselines[k] - truth) ** 2)))


def _mark_splits(ax: Any, x: np.ndarray, bounds: tuple[int, int], lo: int) -> None:
    """Shade the validation and test parts of a time axis and label them."""
    train_end, val_end = bounds
    top = ax.get_ylim()[1]
    for a, b, label, alpha in ((train_end, val_end, "validation", 0.08),
                               (val_end, len(x), "test", 0.16)):
        a, b = max(a, lo), min(b, len(x))
        if b > a:
            ax.axvspan(x[a], x[b - 1], color="grey", alpha=alpha, lw=0)
            ax.annotate(label, (x[a], top), fontsize=8, va="top", ha="left", color="dimgrey")


def loss_curves(history: list[dict], path: Path, best_epoch: int | None = None,
                stop_reason: str | None = None) -> Path:
    """Training/validation loss per epoch (log scale) and the mean gradient norm below it."""
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True,
                                  gridspec_kw={"height_ratios": [2, 1]})
    ep = [r["epoch"] for r in history]
    ax.plot(ep, [r["train_loss"] for r in history], color=MODEL, label="train")
    val = [r["val_loss"] for r in history]
    if not all(math.isnan(v) for v in val):
        ax.plot(ep, val, color=BASE, label="validation")
    if best_epoch is not None:
        ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best epoch ({best_epoch})")
    ax.set_yscale("log")
    ax.set_ylabel("loss (MSE in model units)")
    ax.set_title("Training and validation loss" + (f" (stopped: {stop_reason})" if stop_reason
                                                   else ""), fontsize=10)
    ax.legend(fontsize=8)
    grads = [r.get("grad_norm", math.nan) for r in history]
    if any(g > 0 for g in grads if not math.isnan(g)):
        ax2.plot(ep, grads, color="tab:green", lw=1, label="mean gradient norm (before clipping)")
        ax2.set_yscale("log")
        ax2.legend(fontsize=8)
    ax2.set_xlabel("epoch (0 = before training)")
    ax2.set_ylabel("gradient norm")
    return _save(fig, path)


def series_predictions(index: Any, values: np.ndarray, origins: Any, pred: np.ndarray,
                       baselines: dict[str, np.ndarray], bounds: tuple[int, int], name: str,
                       path: Path, truth: np.ndarray | None = None,
                       bands: dict[int, tuple[np.ndarray, np.ndarray]] | None = None) -> Path:
    """Held-out split: truth, the model's one-step-ahead forecasts with their interval
    ``bands`` ({level: (lo, hi)}, each (N, H, O)) and the best baseline's, with some history
    before it and the splits shaded."""
    origins = np.asarray(origins)
    first = int(origins[0]) + 1
    lo = max(0, first - max(50, len(origins) // 3))
    x = np.asarray(index)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(x[lo:], values[lo:, 0], color=TRUTH, lw=1, label=f"{name} (truth)")
    tx = x[origins + 1]
    for i, (level, (b_lo, b_hi)) in enumerate(sorted((bands or {}).items(), reverse=True)):
        ax.fill_between(tx, b_lo[:, 0, 0], b_hi[:, 0, 0], color=MODEL, alpha=0.12 + 0.1 * i,
                        lw=0, label=f"{level}% interval")
    best = _best_baseline(baselines, truth) if truth is not None else (
        "last value" if "last value" in baselines else None)
    if best is not None:
        ax.plot(tx, baselines[best][:, 0, 0], color=BASE, lw=0.8, alpha=0.8,
                label=f"{best} baseline")
    ax.plot(tx, pred[:, 0, 0], color=MODEL, lw=1.2, label="model, 1 step ahead")
    _mark_splits(ax, x, bounds, lo)
    ax.set_title(f"{name}: forecasts on the held-out rows vs truth")
    ax.set_xlabel("time")
    ax.set_ylabel(f"{name} (original units)")
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def panel_series(series: list[dict], path: Path) -> Path:
    """A few series of a panel, one panel each: recent truth and the model's one-step
    forecasts on the held-out rows (each in its own units), inside their interval bands."""
    n = len(series)
    cols = 2 if n > 1 else 1
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(10, 3.2 * rows), squeeze=False)
    for ax, s in zip(axes.flat, series, strict=False):
        ax.plot(s["times"], s["values"], color=TRUTH, lw=1, label="truth")
        for i, (level, (lo, hi)) in enumerate(sorted(s.get("bands", {}).items(), reverse=True)):
            ax.fill_between(s["pred_times"], lo, hi, color=MODEL, alpha=0.12 + 0.1 * i, lw=0,
                            label=f"{level}% interval")
        ax.plot(s["pred_times"], s["pred"], color=MODEL, lw=1.2, label="model, 1 step ahead")
        ax.set_title(f"series {s['id']}", fontsize=9)
        ax.set_ylabel(s["name"], fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Panel: held-out forecasts of a few series (one global model)", fontsize=10)
    return _save(fig, path)


def series_residuals(index: Any, origins: Any, pred: np.ndarray, truth: np.ndarray,
                     baselines: dict[str, np.ndarray], name: str, path: Path) -> Path:
    """Errors of the first forecast step over time, and their distribution, model vs the best
    baseline: structure left in the residuals is signal the model missed."""
    x = np.asarray(index)[np.asarray(origins) + 1]
    res = pred[:, 0, 0] - truth[:, 0, 0]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 1]})
    best = _best_baseline(baselines, truth)
    if best is not None:
        bres = baselines[best][:, 0, 0] - truth[:, 0, 0]
        ax.plot(x, bres, color=BASE, lw=0.7, alpha=0.7, label=f"{best} baseline")
        ax2.hist(bres, bins=30, color=BASE, alpha=0.5, label=best)
    ax.plot(x, res, color=MODEL, lw=0.9, label="model")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_title(f"{name}: residuals (forecast - truth) on the held-out rows")
    ax.set_xlabel("time")
    ax.set_ylabel(f"error ({name} units)")
    ax.legend(fontsize=8)
    ax2.hist(res, bins=30, color=MODEL, alpha=0.6, label="model")
    ax2.set_title("distribution")
    ax2.set_xlabel("error")
    ax2.legend(fontsize=8)
    return _save(fig, path)


def sequence_residuals(truth: np.ndarray, pred: np.ndarray, baselines: dict[str, np.ndarray],
                       path: Path) -> Path:
    """Continuations: RMSE at each generated step, model vs baselines. seq2one: the error of
    each held-out sequence against its true value."""
    fig, ax = plt.subplots(figsize=(7, 4))
    if truth.ndim == 3 and truth.shape[1] > 1:
        steps = np.arange(1, truth.shape[1] + 1)
        ax.plot(steps, np.sqrt(np.mean((pred - truth) ** 2, axis=(0, 2))), "o-", color=MODEL,
                lw=2, label="model")
        for (name, fc), color in zip(baselines.items(), OTHERS, strict=False):
            rmse = np.sqrt(np.mean((fc - truth) ** 2, axis=(0, 2)))
            ax.plot(steps, rmse, "s--", color=color, label=f"{name} baseline")
        ax.set_xlabel("generated step")
        ax.set_ylabel("RMSE (original units)")
        ax.set_title("Error at each step of the continuation (held-out sequences)")
        ax.set_xticks(steps)
    else:
        t, r = truth.ravel(), (pred - truth).ravel()
        ax.scatter(t, r, s=8, alpha=0.6, color=MODEL, label="model")
        if "mean" in baselines:
            ax.scatter(t, (baselines["mean"] - truth).ravel(), s=6, alpha=0.3, color=BASE,
                       label="mean baseline")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("true value")
        ax.set_ylabel("error (predicted - true)")
        ax.set_title("Residuals of the held-out sequences")
    ax.legend(fontsize=8)
    return _save(fig, path)


def forecast(index: Any, values: np.ndarray, future_index: Any, future: np.ndarray, name: str,
             path: Path, bounds: tuple[int, int] | None = None,
             baseline: np.ndarray | None = None, baseline_name: str = "",
             bands: dict[int, tuple[np.ndarray, np.ndarray]] | None = None,
             covariates: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Path:
    """History, the model's forecast past the end with its interval ``bands`` ({level: (lo,
    hi)}), and a baseline's continuation; under it each future-known covariate's history and
    the coming values the forecast was given (``covariates``: {name: (history, ahead)})."""
    shown = list(covariates or {})[:MAX_COVARIATES]
    fig, axes = plt.subplots(1 + len(shown), 1, figsize=(10, 4.5 + 1.3 * len(shown)),
                             sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [3] + [1] * len(shown)})
    ax, fx = axes[0, 0], np.asarray(future_index)
    for i, (level, (b_lo, b_hi)) in enumerate(sorted((bands or {}).items(), reverse=True)):
        ax.fill_between(fx, b_lo, b_hi, color="tab:red", alpha=0.12 + 0.1 * i, lw=0,
                        label=f"{level}% interval")
    lo = max(0, len(values) - max(4 * len(future), 200))
    x = np.asarray(index)
    ax.plot(x[lo:], values[lo:, 0], color=TRUTH, lw=1, label="history")
    if baseline is not None:
        ax.plot(fx, baseline, color=BASE, lw=1, ls="--", label=f"{baseline_name} baseline")
    ax.plot(fx, future[:, 0], color="tab:red", lw=1.5,
            label=f"model forecast ({len(future)} steps)")
    if bounds is not None:
        _mark_splits(ax, x, bounds, lo)
    ax.set_title(f"{name}: forecast past the end of the data")
    ax.set_ylabel(f"{name} (original units)")
    ax.legend(fontsize=8)
    for row, col in enumerate(shown, start=1):
        past, ahead = (covariates or {})[col]
        cx = axes[row, 0]
        cx.step(x[lo:], past[lo:], where="post", color=TRUTH, lw=0.9)
        cx.step(fx, ahead, where="post", color="tab:red", lw=1.1)
        cx.set_title(f"{col}: known ahead (given to the forecast)", fontsize=9, loc="left")
        cx.set_ylabel(col, fontsize=8)
    for a in axes[:, 0]:
        a.axvline(x[-1], color="grey", lw=1, ls=":")
    axes[-1, 0].set_xlabel("time")
    return _save(fig, path)


def continuations(truth: np.ndarray, pred: np.ndarray, prompt: np.ndarray, path: Path,
                  n: int = 6, mean: np.ndarray | None = None) -> Path:
    """True vs generated continuations of the first ``n`` sequences (prompt shown too)."""
    n = min(n, len(truth))
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    p = prompt.shape[1]
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        ax.plot(range(p), prompt[k, :, 0], "o-", color="grey", label="prompt")
        steps = range(p, p + truth.shape[1])
        ax.plot(steps, truth[k, :, 0], "o-", color=TRUTH, label="true")
        if mean is not None:
            ax.plot(steps, mean[:, 0], ":", color=BASE, label="mean baseline")
        ax.plot(steps, pred[k, :, 0], "x--", color=MODEL, label="generated")
        ax.set_title(f"held-out sequence {k}", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("value")
        if k == 0:
            ax.legend(fontsize=7)
    fig.suptitle("Generated vs true continuations (held-out sequences)")
    return _save(fig, path)


def scatter(truth: np.ndarray, pred: np.ndarray, path: Path, title: str,
            baseline: float | None = None) -> Path:
    """Predicted vs true values; a flat cloud means the model predicts one value for all."""
    fig, ax = plt.subplots(figsize=(5, 5))
    t, q = truth.ravel(), pred.ravel()
    ax.scatter(t, q, s=8, alpha=0.6, color=MODEL, label="model")
    lim = [min(t.min(), q.min()), max(t.max(), q.max())]
    ax.plot(lim, lim, color="grey", ls="--", lw=1, label="perfect")
    if baseline is not None:
        ax.axhline(baseline, color=BASE, lw=1, ls=":", label="mean baseline")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def priming(truth: np.ndarray, primed: np.ndarray, unprimed: np.ndarray, prime_len: int,
            path: Path, steps: int = 60) -> Path:
    """The first steps of a fresh sequence, predicted with and without priming."""
    steps = min(steps, len(truth))
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    t = np.arange(steps)
    ax.plot(t, truth[:steps], color=TRUTH, lw=1.5, label="truth")
    ax.plot(t, primed[:steps], "--", color=MODEL, label=f"primed on {prime_len} values")
    ax.plot(t, unprimed[:steps], ":", color="tab:red", lw=2, label="zero state (unprimed)")
    ax.axvspan(0, prime_len, color="grey", alpha=0.15, label=f"first {prime_len} steps")
    ax.set_ylabel("value")
    ax.set_title("Next-step predictions at the start of an unseen range")
    ax.legend(fontsize=8)
    ax2.semilogy(t, (primed[:steps] - truth[:steps]) ** 2 + 1e-16, color=MODEL, label="primed")
    ax2.semilogy(t, (unprimed[:steps] - truth[:steps]) ** 2 + 1e-16, color="tab:red",
                 label="unprimed")
    ax2.set_xlabel("step into the test range")
    ax2.set_ylabel("squared error")
    ax2.legend(fontsize=8)
    return _save(fig, path)


def priming_curve(curve: np.ndarray, settled: float, needed: int, warmup: int,
                  path: Path) -> Path:
    """Error per step after a zero state (held-out data), with the needed and declared
    warm-up lengths: the doctor's priming evidence."""
    fig, ax = plt.subplots(figsize=(8, 4))
    t = np.arange(len(curve))
    ax.semilogy(t, np.maximum(curve, 1e-16), color=MODEL, label="model from a zero state")
    ax.axhline(settled, color="grey", ls="--", lw=1, label="settled error")
    if needed:
        ax.axvspan(-0.5, needed - 0.5, color="tab:red", alpha=0.12,
                   label=f"needs {needed} priming steps")
    ax.axvline(warmup - 0.5, color=BASE, lw=1.5, label=f"run's warm-up ({warmup})")
    ax.set_xlabel("step after a fresh state")
    ax.set_ylabel("mean squared error (scaled units)")
    ax.set_title("Priming: error at each step after a zero state (held-out data)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def backtest(index: Any, values: np.ndarray, bt: Any, name: str, path: Path) -> Path:
    """Each origin's multi-step forecast drawn over the truth (rolling-origin backtest)."""
    x = np.asarray(index)
    lo = max(0, int(bt.origins[0]) - 2 * bt.steps)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(x[lo:], values[lo:, 0], color=TRUTH, lw=1, label=f"{name} (truth)")
    best = _best_baseline(bt.baselines, bt.truth)
    for i, a in enumerate(bt.origins):
        fx = x[int(a) + 1 : int(a) + 1 + bt.steps]
        if best is not None:
            ax.plot(fx, bt.baselines[best][i, :, 0], color=BASE, lw=0.8, ls="--",
                    label=f"{best} baseline" if i == 0 else None)
        ax.plot(fx, bt.model[i, :, 0], color="tab:red", lw=1.2,
                label=f"model, {bt.steps} steps ahead" if i == 0 else None)
        ax.plot(x[int(a)], values[int(a), 0], "o", color="tab:red", ms=3)
    ax.set_title(f"{name}: rolling-origin backtest, {len(bt.origins)} origins "
                 f"({bt.split} split)")
    ax.set_xlabel("time")
    ax.set_ylabel(f"{name} (original units)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def covariates(index: Any, values: np.ndarray, columns: dict[str, np.ndarray],
               origins: Any, pred: np.ndarray, name: str, path: Path,
               rise: dict[str, float] | None = None) -> Path:
    """The held-out rows of the target with the model's one-step forecasts, each covariate the
    user gave below it on the same time axis (so a promotion's spike lines up with its flag),
    and beside them how much the held-out RMSE rises when each covariate is shuffled (the
    doctor's permutation importance, ``rise``; calendar groups included)."""
    origins = np.asarray(origins)
    lo = max(0, int(origins[0]) + 1 - 30, len(values) - 400)
    x = np.asarray(index)[lo:]
    shown = list(columns)[:MAX_COVARIATES]
    fig = plt.figure(figsize=(11, 2.2 + 1.3 * len(shown)))
    grid = fig.add_gridspec(1 + len(shown), 2, width_ratios=[3, 1],
                            height_ratios=[2] + [1] * len(shown))
    ax = fig.add_subplot(grid[0, 0])
    ax.plot(x, values[lo:, 0], color=TRUTH, lw=1, label=f"{name} (truth)")
    keep = origins + 1 >= lo
    ax.plot(np.asarray(index)[origins[keep] + 1], pred[keep, 0, 0], color=MODEL, lw=1.1,
            label="model, 1 step ahead")
    ax.set_title(f"{name} and the covariates beside it (held-out rows)")
    ax.set_ylabel(name)
    ax.legend(fontsize=8, loc="best")
    for i, col in enumerate(shown, start=1):
        cx = fig.add_subplot(grid[i, 0], sharex=ax)
        cx.step(x, columns[col][lo:], where="post", color=OTHERS[(i - 1) % len(OTHERS)], lw=0.9)
        said = "" if not rise or col not in rise else f": shuffled, RMSE {rise[col]:+.1%}"
        cx.set_title(f"{col}{said}", fontsize=9, loc="left")
        cx.set_ylabel(col, fontsize=8)
    for upper in fig.axes[:-1]:
        upper.tick_params(labelbottom=False)
    fig.axes[-1].set_xlabel("time")
    _importance(fig.add_subplot(grid[:, 1]), rise)
    return _save(fig, path)


def _importance(ax: Any, rise: dict[str, float] | None) -> None:
    """Horizontal bars of the RMSE rise per shuffled covariate, largest on top."""
    ax.set_title("shuffled one at a time", fontsize=9)
    if not rise:
        ax.text(0.5, 0.5, "not measured:\nrnnkit doctor RUN\nranks them", ha="center",
                va="center", fontsize=9, transform=ax.transAxes)
        ax.set_axis_off()
        return
    ranked = sorted(rise.items(), key=lambda kv: kv[1])
    ax.barh(range(len(ranked)), [100 * r for _, r in ranked], color=MODEL, alpha=0.7)
    for i, (_, r) in enumerate(ranked):
        ax.annotate(f"{r:+.1%}", (max(100 * r, 0), i), xytext=(3, 0), fontsize=8,
                    textcoords="offset points", va="center")
    ax.set_yticks(range(len(ranked)), [n for n, _ in ranked], fontsize=8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("held-out RMSE rise (%)")
