"""Tests of rnnkit.train: seeded reproducibility, early stopping, the History, the learning-rate
schedule, divergence errors, and the objectives (masking, padding, closed loop)."""

from __future__ import annotations

import copy
import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.pairs import Pairs, continuation_pairs, next_step_pairs, pad_sequences
from rnnkit.data.read import read_table
from rnnkit.errors import TrainingError
from rnnkit.models.network import RecurrentNet
from rnnkit.runs import Run
from rnnkit.train import objectives
from rnnkit.train.loop import evaluate_loss, train

NILE = Path(__file__).parent / "data" / "nile_yearly.csv"
TARGET = "flow_1e8_m3"
KEYS = {"epoch", "train_loss", "val_loss", "lr", "grad_norm", "seconds"}


def _fit_nile(**options) -> Run:
    return rnnkit.fit(NILE, target=TARGET, quiet=True, hidden_size=16, **options)


def _without_time(history: list[dict]) -> list[tuple]:
    """Records as comparable tuples: wall-clock seconds dropped, NaN made equal to NaN."""
    return [tuple((k, "nan" if isinstance(v, float) and math.isnan(v) else v)
                  for k, v in sorted(r.items()) if k != "seconds") for r in history]


def _step_model(cell: str = "gru", hidden: int = 8, seed: int = 0, **kw) -> RecurrentNet:
    torch.manual_seed(seed)
    return RecurrentNet(ModelConfig(cell=cell, hidden_size=hidden, head="step", **kw))


def _sine_sequences(n: int, length: int, scale: float = 1.0) -> torch.Tensor:
    phase = np.linspace(0, 3, n)[:, None]
    t = np.arange(length)[None, :]
    return torch.tensor(scale * np.sin(0.4 * t + phase), dtype=torch.float32)[..., None]


# --- reproducibility -------------------------------------------------------------------------
def test_same_seed_gives_bit_identical_weights_and_history() -> None:
    a = _fit_nile(epochs=5, seed=3)
    b = _fit_nile(epochs=5, seed=3)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert list(sa) == list(sb)
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name
    assert _without_time(a.history) == _without_time(b.history)
    assert a.config["training"]["best_epoch"] == b.config["training"]["best_epoch"]


def test_different_seed_gives_different_weights() -> None:
    a = _fit_nile(epochs=2, seed=0)
    b = _fit_nile(epochs=2, seed=1)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert not all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["encoder.weight_hh_l0"], sb["encoder.weight_hh_l0"])


# --- early stopping and the History ----------------------------------------------------------
def test_early_stopping_restores_the_best_epoch_weights() -> None:
    run = _fit_nile(epochs=40, early_stopping=3, lr=0.1, guard=False)  # the network as trained
    training = run.config["training"]
    assert training["stop_reason"] == "early stopping: no improvement for 3 epochs"
    val = np.array([r["val_loss"] for r in run.history])
    best = int(np.argmin(val))
    assert training["best_epoch"] == best
    last = run.history[-1]["epoch"]
    assert last == best + 3 < 40
    assert val[-1] > val.min() + 1e-6  # the last epoch was worse, so restoring matters
    # the returned model is the best epoch's: its validation loss is the minimum
    pipe = run.pipeline
    val_pairs = pipe.pairs(pipe.encode(read_table(NILE, target=TARGET)), "val")
    loss = evaluate_loss(run.model, val_pairs, objectives.pick(run.config["objective"]))
    assert loss == pytest.approx(val.min(), abs=1e-6)


def test_history_records_every_epoch_from_zero() -> None:
    run = _fit_nile(epochs=5, early_stopping=0, lr=3e-3)
    history = run.history
    assert [r["epoch"] for r in history] == [0, 1, 2, 3, 4, 5]
    assert all(set(r) == KEYS for r in history)
    assert math.isnan(history[0]["grad_norm"])  # epoch 0 is the untrained model: no step yet
    for r in history:
        assert math.isfinite(r["train_loss"])
        assert math.isfinite(r["val_loss"])
        assert r["lr"] == 3e-3
    for r in history[1:]:
        assert math.isfinite(r["grad_norm"])
        assert r["grad_norm"] > 0
    seconds = [r["seconds"] for r in history]
    assert seconds == sorted(seconds)
    assert run.config["training"]["stop_reason"] == "max epochs"


def test_history_without_validation_monitors_the_training_loss() -> None:
    seqs = _sine_sequences(6, 12)
    pairs = next_step_pairs(seqs, warmup=2)
    model = _step_model()
    cfg = TrainConfig(epochs=3, batch_size=4, lr=1e-2, quiet=True)
    history = train(model, pairs, None, cfg, objectives.teacher)
    assert all(math.isnan(r["val_loss"]) for r in history.records)
    losses = [r["train_loss"] for r in history.records]
    assert history.best_epoch == int(np.argmin(losses))


def test_reduce_on_plateau_halves_the_learning_rate() -> None:
    # lr=1e-5 moves the loss by far less than the scheduler's 1e-4 relative threshold: a plateau
    run = _fit_nile(epochs=6, lr=1e-5, lr_patience=1, early_stopping=0)
    lrs = [r["lr"] for r in run.history]
    assert lrs[:2] == [1e-5, 1e-5]
    assert lrs == sorted(lrs, reverse=True)
    assert 5e-6 in lrs
    assert lrs[-1] < 5e-6
    assert all(b in (a, a / 2) for a, b in itertools.pairwise(lrs))
    steady = _fit_nile(epochs=6, lr=1e-5, lr_patience=0, early_stopping=0)
    assert [r["lr"] for r in steady.history] == [1e-5] * 7


# --- failures --------------------------------------------------------------------------------
def test_huge_learning_rate_raises_training_error_with_context() -> None:
    seqs = _sine_sequences(8, 41, scale=100.0)  # large values, no scaler
    pairs = next_step_pairs(seqs, warmup=2)
    model = _step_model(cell="rnn", activation="identity", hidden=16)
    probe = copy.deepcopy(model)
    cfg = TrainConfig(lr=9.9, clip=None, epochs=5, batch_size=2, quiet=True)
    with pytest.raises(TrainingError) as info:
        train(model, pairs, None, cfg, objectives.teacher)
    text = str(info.value)
    assert text.startswith("training diverged at epoch 1, step 2: the loss became nan;")
    assert "lower learning rate (--lr 0.99)" in text
    assert "gradient clipping (--clip 1)" in text
    # the last finite loss is that of step 1: the same batch the loop drew with the same seed
    perm = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(cfg.seed))
    probe.train()
    first = float(objectives.teacher(probe, pairs.take(perm[:2])).detach())
    found = re.search(r"last finite loss ([-+.e\d]+)\.", text)
    assert found is not None
    assert found.group(1) == f"{first:.6g}"


def test_huge_learning_rate_through_fit_raises_training_error() -> None:
    series = 1000 + 100 * np.sin(0.3 * np.arange(300))
    with pytest.raises(TrainingError, match=r"epoch \d+, step \d+.*last finite loss [\d.e+]+\. "
                                            r"Try a lower learning rate"):
        rnnkit.fit(series, cell="rnn", activation="identity", lr=9.9, clip=None,
                   scaler="none", epochs=5, quiet=True)


def test_model_that_outputs_inf_raises_training_error() -> None:
    pairs = next_step_pairs(_sine_sequences(4, 10), warmup=0)
    model = _step_model()
    with torch.no_grad():
        model.head.weight.fill_(1e30)  # (y - t)^2 overflows float32
    cfg = TrainConfig(epochs=2, batch_size=4, quiet=True)
    with pytest.raises(TrainingError) as info:
        train(model, pairs, None, cfg, objectives.teacher)
    text = str(info.value)
    assert "epoch 1, step 1: the loss became inf" in text
    assert "no finite loss before it" in text
    assert "lower learning rate" in text


def test_empty_training_set_raises_training_error() -> None:
    empty = Pairs(torch.zeros(0, 5, 1), torch.zeros(0, 5, 1), torch.zeros(0, 5, dtype=torch.bool))
    with pytest.raises(TrainingError, match="training split is empty"):
        train(_step_model(), empty, None, TrainConfig(epochs=1, quiet=True), objectives.teacher)


# --- objectives ------------------------------------------------------------------------------
def test_masked_mse_ignores_masked_steps() -> None:
    gen = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 5, 3, generator=gen, dtype=torch.float64)  # (B, T, O)
    target = torch.randn(2, 5, 3, generator=gen, dtype=torch.float64)
    mask = torch.tensor([[False, True, True, False, True], [True, False, False, True, True]])
    loss = objectives.masked_mse(pred, target, mask)
    manual = ((pred - target) ** 2)[mask].mean()  # (scored steps, O) -> mean
    torch.testing.assert_close(loss, manual, atol=1e-12, rtol=0)
    changed = target.clone()
    changed[~mask] = 1e6
    assert torch.equal(objectives.masked_mse(pred, changed, mask), loss)
    assert torch.equal(objectives.masked_mse(pred, target, None), ((pred - target) ** 2).mean())
    nothing = objectives.masked_mse(pred, target, torch.zeros(2, 5, dtype=torch.bool))
    assert nothing.item() == 0.0  # no scored step: zero, not NaN


@torch.no_grad()
def test_teacher_objective_ignores_warm_up_and_padding() -> None:
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((n, 1)) for n in (9, 5, 7)]
    padded, lengths = pad_sequences(seqs)  # (N, 9, 1), zeros after each length
    pairs = next_step_pairs(padded, warmup=2, lengths=lengths)
    model = _step_model().eval()
    loss = objectives.teacher(model, pairs)
    # padding: any values after each row's length change nothing (causal model, masked loss)
    pad_changed = padded.clone()
    for i, n in enumerate(lengths.tolist()):
        pad_changed[i, n:] = 50.0
    torch.testing.assert_close(
        objectives.teacher(model, next_step_pairs(pad_changed, warmup=2, lengths=lengths)),
        loss, atol=1e-7, rtol=0)
    # warm-up: the targets of the first two outputs are never scored
    targets = pairs.targets.clone()
    targets[:, :2] = -50.0
    warm = Pairs(pairs.inputs, targets, pairs.mask, pairs.lengths)
    assert torch.equal(objectives.teacher(model, warm), loss)
    # ...while a scored target does count
    targets[0, 2] += 1.0
    assert not torch.isclose(objectives.teacher(model, warm), loss)
    # the loss is the plain MSE over each row's scored steps, computed row by row
    errs = []
    for i, n in enumerate(lengths.tolist()):
        y, _ = model(padded[i : i + 1, : n - 1])  # (1, n - 1, O): inputs x[0..n-2]
        errs.append(((y - padded[i : i + 1, 1:n]) ** 2)[0, 2:])
    torch.testing.assert_close(loss, torch.cat(errs).mean(), atol=1e-6, rtol=0)


@torch.no_grad()
def test_last_objective_scores_the_last_real_step_of_each_row() -> None:
    rng = np.random.default_rng(1)
    seqs = [rng.standard_normal((n, 2)) for n in (6, 3, 4)]
    padded, lengths = pad_sequences(seqs)  # (N, 6, 2)
    targets = torch.tensor(rng.standard_normal((3, 1, 1)), dtype=torch.float32)
    torch.manual_seed(0)
    model = RecurrentNet(ModelConfig(cell="lstm", hidden_size=5, input_size=2, head="last",
                                     linear_path=False)).eval()
    batch = Pairs(padded, targets, None, lengths)
    loss = objectives.last(model, batch)
    rows = [model(padded[i : i + 1, :n])[0] for i, n in enumerate(lengths.tolist())]
    torch.testing.assert_close(loss, ((torch.cat(rows) - targets) ** 2).mean(), atol=1e-6,
                               rtol=0)
    changed = padded.clone()
    for i, n in enumerate(lengths.tolist()):
        changed[i, n:] = -7.0
    torch.testing.assert_close(objectives.last(model, Pairs(changed, targets, None, lengths)),
                               loss, atol=1e-7, rtol=0)


def test_closed_loop_feeds_back_its_predictions() -> None:
    prompt = 4
    batch = continuation_pairs(_sine_sequences(3, 12), prompt_length=prompt)
    model = _step_model(seed=2)
    loss = objectives.pick("closed_loop", prompt)(model, batch)
    teacher = objectives.teacher(model, batch)  # scores the same steps, true inputs
    assert torch.isfinite(loss)
    assert not torch.isclose(loss, teacher)
    with torch.no_grad():
        tf_pred, _ = model(batch.inputs)
        cl_pred = objectives.closed_loop_predictions(model, batch.inputs, prompt, 12 - prompt)
    # the first continuation step still sees only true inputs; later ones see predictions
    torch.testing.assert_close(cl_pred[:, 0], tf_pred[:, prompt - 1], atol=1e-6, rtol=0)
    assert not torch.allclose(cl_pred[:, 1:], tf_pred[:, prompt:], atol=1e-3)

    # gradient flows through the fed-back predictions: cutting the feedback with detach()
    # keeps the loss value but changes the gradient
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert all(g.abs().sum() > 0 for g in grads.values())
    model.zero_grad()
    preds, state = model.warm_up(batch.inputs[:, :prompt])
    y, outs = preds[:, -1], [preds[:, -1]]
    for _ in range(12 - prompt - 1):
        y, state = model.step(y.detach(), state)
        outs.append(y)
    cut = objectives.masked_mse(torch.stack(outs, 1), batch.targets[:, prompt - 1 :], None)
    torch.testing.assert_close(cut, loss, atol=1e-6, rtol=0)
    cut.backward()
    assert not torch.allclose(model.head.weight.grad, grads["head.weight"], atol=1e-6)


def test_epochs_and_patience_follow_the_optimizer_steps() -> None:
    from rnnkit.train import budget

    def got(windows: int, **kw) -> tuple:
        c = budget.resolve(TrainConfig(**kw), windows)
        return c.epochs, c.early_stopping, c.lr_patience

    assert got(54) == (200, 20, 8)  # the Nile: one step an epoch, the old flat defaults
    assert got(3240) == (98, 19, 7)  # 51 steps an epoch
    assert got(100_000) == (10, 5, 2)  # 1,563 steps an epoch: the floors
    assert got(100_000, windows_per_epoch=640) == (200, 20, 8)  # an epoch is 10 steps
    assert got(3240, epochs=7, early_stopping=0) == (7, 0, 7)  # the user's values stay


def test_a_long_series_stops_after_a_data_sized_patience() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=4000)  # noise: nothing to learn after the start, so patience decides
    run = rnnkit.fit(y, window=8, quiet=True, transform="none", batch_size=16)
    t = run.config["train"]
    steps = -(-len(run.pipeline.origins("train", len(y))) // 16)  # 175 steps an epoch
    assert t["early_stopping"] == max(5, 1000 // steps) < 20 and t["epochs"] == 5000 // steps
    assert run.config["training"]["stop_reason"] == (
        f"early stopping: no improvement for {t['early_stopping']} epochs")
    assert len(run.history) - 1 < 20 + run.config["training"]["best_epoch"]
