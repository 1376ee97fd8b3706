"""Tests of explicit state: warm_up/step/generate on step heads, independent rows, init_state,
and the streaming predictor of a fitted Run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.config import ModelConfig
from rnnkit.models.network import RecurrentNet
from rnnkit.runs import Run

F, HIDDEN, LAYERS = 2, 6, 2
STEP_CELLS = [("lstm", "tanh"), ("gru", "tanh"), ("rnn", "identity")]
IDS = [c if c != "rnn" else f"rnn-{a}" for c, a in STEP_CELLS]


def _step_model(cell: str, activation: str) -> RecurrentNet:
    torch.manual_seed(0)
    cfg = ModelConfig(cell=cell, activation=activation, hidden_size=HIDDEN, num_layers=LAYERS,
                      input_size=F, output_size=F, head="step")
    return RecurrentNet(cfg).eval()


def _inputs(b: int, t: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, t, F, generator=torch.Generator().manual_seed(seed))  # (B, T, F)


@pytest.mark.parametrize("k", [1, 4, 9])
@pytest.mark.parametrize(("cell", "activation"), STEP_CELLS, ids=IDS)
@torch.no_grad()
def test_forward_equals_warm_up_then_steps(cell: str, activation: str, k: int) -> None:
    model = _step_model(cell, activation)
    x = _inputs(3, 10)
    whole, final = model(x)  # (B, T, O)
    preds, state = model.warm_up(x[:, :k])
    torch.testing.assert_close(preds, whole[:, :k], atol=1e-6, rtol=0)
    for t in range(k, x.shape[1]):
        y, state = model.step(x[:, t], state)  # (B, O)
        torch.testing.assert_close(y, whole[:, t], atol=1e-6, rtol=0)
    for got, want in zip(state if cell == "lstm" else (state,),
                         final if cell == "lstm" else (final,), strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


@pytest.mark.parametrize(("cell", "activation"), STEP_CELLS, ids=IDS)
@torch.no_grad()
def test_generate_batched_equals_one_prompt_at_a_time(cell: str, activation: str) -> None:
    model = _step_model(cell, activation)
    prompts = _inputs(5, 4)  # (5, P, F)
    steps = 6
    batched = model.generate(prompts, steps)
    assert batched.shape == (5, steps, F)
    alone = torch.cat([model.generate(prompts[i : i + 1], steps) for i in range(5)])
    torch.testing.assert_close(batched, alone, atol=1e-6, rtol=0)
    # generation = the last warm-up prediction, then each prediction fed back as the input
    preds, state = model.warm_up(prompts)
    y = preds[:, -1]
    manual = [y]
    for _ in range(steps - 1):
        y, state = model.step(y, state)
        manual.append(y)
    torch.testing.assert_close(batched, torch.stack(manual, dim=1), atol=1e-6, rtol=0)


@pytest.mark.parametrize(("cell", "activation"), STEP_CELLS, ids=IDS)
@torch.no_grad()
def test_rows_of_a_batch_do_not_share_state(cell: str, activation: str) -> None:
    model = _step_model(cell, activation)
    x = _inputs(4, 8)
    y, _ = model(x)
    changed = x.clone()
    changed[[0, 1, 3]] = _inputs(3, 8, seed=2)  # every row but row 2
    y2, _ = model(changed)
    torch.testing.assert_close(y2[2], y[2], atol=1e-7, rtol=0)
    assert not torch.allclose(y2[0], y[0])
    # the same holds when the rows are stepped with an explicit state
    s1, s2 = model.init_state(4), model.init_state(4)
    for t in range(8):
        a, s1 = model.step(x[:, t], s1)
        b, s2 = model.step(changed[:, t], s2)
        torch.testing.assert_close(a[2], b[2], atol=1e-7, rtol=0)


@pytest.mark.parametrize(("cell", "activation"), STEP_CELLS, ids=IDS)
@torch.no_grad()
def test_init_state_structure_and_zeros(cell: str, activation: str) -> None:
    model = _step_model(cell, activation)
    state = model.init_state(3)
    if cell == "lstm":
        assert isinstance(state, tuple)
        assert len(state) == 2
        assert state[0] is not state[1]
    else:
        assert isinstance(state, torch.Tensor)
    for h in state if cell == "lstm" else (state,):
        assert h.shape == (LAYERS, 3, HIDDEN)
        assert h.dtype == torch.float32
        assert torch.count_nonzero(h) == 0
    # a zero state is the same as no state
    x = _inputs(3, 1)[:, 0]
    assert torch.equal(model.step(x, state)[0], model.step(x, None)[0])


@torch.no_grad()
def test_init_state_follows_the_model_dtype() -> None:
    model = _step_model("gru", "tanh").double()
    state = model.init_state(2)
    assert state.dtype == torch.float64
    x = _inputs(2, 1)[:, 0].double()
    assert torch.equal(model.step(x, state)[0], model.step(x, None)[0])


# --- streaming a fitted run -------------------------------------------------------------------
SINE = np.sin(0.1 * np.arange(600))


@pytest.fixture(scope="module")
def next_run() -> Run:
    return rnnkit.fit(SINE, shape="next", cell="rnn", window=30, warmup=5, epochs=3, quiet=True)


@pytest.fixture(scope="module")
def window_run() -> Run:
    return rnnkit.fit(SINE, window=12, epochs=2, quiet=True)


def test_stream_of_a_step_model_equals_the_whole_sequence(next_run: Run) -> None:
    pipe = next_run.pipeline
    assert pipe.shape == "next"
    assert not pipe.diff  # a sine has no trend: the stream sees scaled levels
    values = SINE[:120]
    stream = next_run.stream()
    got = np.array([stream.update(v) for v in values])  # (T, O)
    with torch.inference_mode():
        y, _ = next_run.model(pipe.tensor(values[:, None])[None])  # (1, T, O)
    want = pipe.scaler.inverse(y[0].numpy(), slice(0, 1))
    assert got.shape == want.shape == (120, 1)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_stream_reset_restarts_from_a_zero_state(next_run: Run) -> None:
    pipe = next_run.pipeline
    stream = next_run.stream()
    first = np.array([stream.update(v) for v in SINE[:40]])
    assert stream.state is not None
    stream.reset()
    assert stream.state is None
    again = np.array([stream.update(v) for v in SINE[:40]])
    np.testing.assert_array_equal(again, first)
    # the first prediction after reset is one step from the all-zero state
    with torch.inference_mode():
        x = torch.from_numpy(pipe.scaler.transform(SINE[:1]))[None, :]  # (1, F)
        y, _ = next_run.model.step(x, next_run.model.init_state(1))
    np.testing.assert_allclose(again[0], pipe.scaler.inverse(y.numpy()[0], slice(0, 1)),
                               atol=1e-6, rtol=0)


def test_stream_of_a_window_model_waits_then_matches_predict(window_run: Run) -> None:
    pipe = window_run.pipeline
    assert pipe.shape == "window"
    assert pipe.window == 12
    assert not pipe.diff
    values = SINE[:60]
    stream = window_run.stream()
    got = np.array([stream.update(v) for v in values])  # row k forecasts value k + 1
    need = pipe.window
    assert np.isnan(got[: need - 1]).all()
    assert np.isfinite(got[need - 1 :]).all()
    predicted = window_run.predict(values)  # indexed by the row it forecasts
    assert list(predicted.index) == list(range(need, len(values)))
    np.testing.assert_allclose(got[need - 1 : -1, 0], predicted.to_numpy()[:, 0], atol=1e-6,
                               rtol=0)


def test_stream_of_a_trending_step_model_matches_the_whole_sequence():
    """With diff, the first observation only sets the level: predictions then match the model
    run over the whole differenced sequence."""
    import numpy as np

    import rnnkit

    t = np.arange(400, dtype=float)
    series = 0.05 * t + np.sin(0.2 * t)
    run = rnnkit.fit(series, shape="next", cell="gru", window=20, warmup=3, transform="diff",
                     epochs=2, hidden_size=8, quiet=True)
    s = run.stream()
    first = s.update(series[0])
    assert np.isnan(first).all()
    streamed = np.array([s.update(v)[0] for v in series[1:]])
    pipe = run.pipeline
    work = pipe.tensor(series[:, None].astype(np.float32))[None]
    with torch.no_grad():
        out, _ = run.model(work)
    whole = pipe.to_levels(out[0].numpy()[:, None, :], series[:, None], np.arange(1, 400))
    np.testing.assert_allclose(streamed, whole[:, 0, 0], rtol=0, atol=1e-4)
