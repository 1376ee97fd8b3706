"""Tests of rnnkit.models: one conformance test for every cell x head, the maths of the cell
loop (parity with nn.RNN, gradcheck), option errors and the least-squares linear path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rnnkit.config import ModelConfig
from rnnkit.data.pairs import series_windows
from rnnkit.errors import ConfigError
from rnnkit.models.cells import LoopRNN, resolve_activation
from rnnkit.models.least_squares import least_squares_start as init_linear_path
from rnnkit.models.network import RecurrentNet
from rnnkit.persist import load_weights, save_weights

B, T, F, OUT, HORIZON, HIDDEN = 3, 6, 2, 2, 3, 5
CELLS = [("lstm", "tanh"), ("gru", "tanh"), ("rnn", "tanh"), ("rnn", "relu"),
         ("rnn", "identity"), ("rnn", "softplus")]
HEADS = [("step", True), ("step", False), ("last", True), ("last", False)]
ENCODERS = {"lstm": nn.LSTM, "gru": nn.GRU, "tanh": nn.RNN, "relu": nn.RNN,
            "identity": LoopRNN, "softplus": LoopRNN}


def _config(cell: str, activation: str, head: str, linear: bool, layers: int) -> ModelConfig:
    return ModelConfig(cell=cell, activation=activation, hidden_size=HIDDEN, num_layers=layers,
                       input_size=F, output_size=OUT, head=head,
                       horizon=HORIZON if head == "last" else 1,
                       window=T if head == "last" else None, linear_path=linear)


def _built(cfg: ModelConfig, seed: int) -> RecurrentNet:
    torch.manual_seed(seed)
    return RecurrentNet(cfg)


# --- conformance: every cell x head x depth --------------------------------------------------
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize(("head", "linear"), HEADS, ids=[f"{h}-linear{int(w)}" for h, w in HEADS])
@pytest.mark.parametrize(("cell", "activation"), CELLS, ids=[f"{c}-{a}" for c, a in CELLS])
def test_conformance(cell: str, activation: str, head: str, linear: bool, layers: int,
                     tmp_path) -> None:
    cfg = _config(cell, activation, head, linear, layers)
    model = _built(cfg, seed=7)
    assert type(model.encoder) is ENCODERS[cell if cell != "rnn" else activation]
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(B, T, F, generator=gen)  # (B, T, F)

    # shapes of outputs and state
    y, state = model(x)
    assert y.shape == ((B, T, OUT) if head == "step" else (B, HORIZON, OUT))
    hs = state if cell == "lstm" else (state,)
    assert len(hs) == (2 if cell == "lstm" else 1)
    assert all(h.shape == (layers, B, HIDDEN) for h in hs)

    # seeded determinism: same seed -> bit-identical parameters and outputs
    twin = _built(cfg, seed=7)
    sd, sd_twin = model.state_dict(), twin.state_dict()
    assert list(sd) == list(sd_twin)
    assert all(torch.equal(sd[k], sd_twin[k]) for k in sd)
    assert torch.equal(twin(x)[0], y)
    other = _built(cfg, seed=8)
    assert not torch.equal(other(x)[0], y)

    # backward: every parameter gets a finite gradient
    target = torch.randn(y.shape, generator=gen)
    nn.functional.mse_loss(y, target).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())

    # safetensors round trip into a differently initialised model -> identical outputs
    path = tmp_path / "model.safetensors"
    save_weights(path, model.state_dict())
    fresh = _built(cfg, seed=123)
    assert not torch.equal(fresh(x)[0], y)
    fresh.load_state_dict(load_weights(path, fresh.state_dict()))
    assert torch.equal(fresh(x)[0], y)

    # one Adam step on the fixed batch lowers the loss
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    opt.zero_grad()
    before = nn.functional.mse_loss(model(x)[0], target)
    before.backward()
    opt.step()
    with torch.no_grad():
        after = nn.functional.mse_loss(model(x)[0], target)
    assert after < before


# --- the maths of the cell loop --------------------------------------------------------------
@pytest.mark.parametrize(("dtype", "atol"), [(torch.float32, 1e-6), (torch.float64, 1e-12)],
                         ids=["float32", "float64"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_loop_rnn_matches_nn_rnn(activation: str, layers: int, dtype: torch.dtype,
                                 atol: float) -> None:
    torch.manual_seed(0)
    loop = LoopRNN(3, 4, layers, 0.0, activation).to(dtype)
    fused = nn.RNN(3, 4, layers, nonlinearity=activation, batch_first=True).to(dtype)
    fused.load_state_dict(loop.state_dict())  # strict: same parameter names and shapes
    x = torch.randn(2, 7, 3, dtype=dtype, requires_grad=True)  # (B, T, F)
    h0 = torch.randn(layers, 2, 4, dtype=dtype)  # (L, B, H)
    out, h = loop(x, h0)
    ref_out, ref_h = fused(x, h0)
    torch.testing.assert_close(out, ref_out, atol=atol, rtol=0)
    torch.testing.assert_close(h, ref_h, atol=atol, rtol=0)
    # gradients agree too, for the input and for every copied weight
    (grad_x,) = torch.autograd.grad((out**2).sum() + h.sum(), x)
    (ref_grad_x,) = torch.autograd.grad((ref_out**2).sum() + ref_h.sum(), x)
    torch.testing.assert_close(grad_x, ref_grad_x, atol=10 * atol, rtol=0)
    # no initial state means zeros, as in nn.RNN
    torch.testing.assert_close(loop(x)[0], fused(x)[0], atol=atol, rtol=0)


@pytest.mark.parametrize("activation", ["identity", "softplus"])
def test_loop_rnn_gradcheck(activation: str) -> None:
    torch.manual_seed(0)
    loop = LoopRNN(2, 3, 2, 0.0, activation).double()
    names = [n for n, _ in loop.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in loop.parameters())
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)  # (B, T, F)
    h0 = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)  # (L, B, H)

    def run(x: torch.Tensor, h0: torch.Tensor, *ps: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.func.functional_call(loop, dict(zip(names, ps, strict=True)), (x, h0))

    assert torch.autograd.gradcheck(run, (x, h0, *params))


# --- option errors ---------------------------------------------------------------------------
@pytest.mark.parametrize(("options", "needles"), [
    ({"cell": "lstm", "activation": "relu"}, ["activation='relu'", "cell='rnn'", "lstm"]),
    ({"dropout": 0.2, "num_layers": 1}, ["dropout=0.2", "num_layers >= 2", "dropout=0"]),
    ({"hidden_size": 10**9}, ["hidden_size=1000000000", "<= 65536"]),
    ({"hidden_size": -4}, ["hidden_size=-4", "integer >= 1"]),
], ids=["relu-lstm", "dropout-1-layer", "huge-hidden", "negative-hidden"])
def test_unsupported_options_raise_config_error(options: dict, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        ModelConfig(head="step", **options)
    for needle in needles:
        assert needle in str(info.value)


def test_unknown_activation_suggests_nearest_name() -> None:
    with pytest.raises(ConfigError) as info:
        RecurrentNet(ModelConfig(cell="rnn", activation="tanhh", head="step"))
    text = str(info.value)
    assert "activation='tanhh'" in text
    assert "Did you mean 'tanh'?" in text


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_non_elementwise_activation_is_refused(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_activation(name)
    text = str(info.value)
    assert f"activation={name!r}" in text
    assert "not elementwise" in text
    assert "Did you mean" not in text  # it would only suggest the refused name back
    with pytest.raises(ConfigError):
        RecurrentNet(ModelConfig(cell="rnn", activation=name, head="step"))


@pytest.mark.parametrize(("name", "reference"), [
    ("identity", lambda x: x),
    ("softplus", nn.functional.softplus),
    ("gelu", nn.functional.gelu),
    ("sigmoid", torch.sigmoid),
    ("elu", nn.functional.elu),
    (" GELU ", nn.functional.gelu),
])
def test_resolve_activation_accepts_elementwise_functions(name: str, reference) -> None:
    fn = resolve_activation(name)
    x = torch.linspace(-4, 4, 17)
    assert torch.equal(fn(x), reference(x))
    model = RecurrentNet(ModelConfig(cell="rnn", activation=name, head="step", hidden_size=3))
    assert isinstance(model.encoder, LoopRNN)
    assert model(torch.zeros(1, 2, 1))[0].shape == (1, 2, 1)


# --- the linear path starts at least squares -------------------------------------------------
def _ar2(n: int = 240) -> np.ndarray:
    """Noise-free AR(2) with an intercept: a sustained oscillation around an offset level."""
    a, b, c = 2 * np.cos(0.7), -1.0, 0.5
    y = np.zeros(n)
    y[0], y[1] = 1.0, 0.3
    for t in range(2, n):
        y[t] = a * y[t - 1] + b * y[t - 2] + c
    return y


@pytest.mark.parametrize(("window", "horizon"), [(2, 1), (5, 3)])
def test_init_linear_path_equals_least_squares(window: int, horizon: int) -> None:
    y = _ar2()
    data = torch.tensor(y, dtype=torch.float32)[:, None]  # (rows, F)
    pairs = series_windows(data, 1, window, horizon, np.arange(window - 1, len(y) - horizon))
    model = _built(ModelConfig(cell="gru", head="last", window=window, horizon=horizon,
                               hidden_size=4), seed=0)
    assert init_linear_path(model, pairs)
    with torch.no_grad():
        pred = model(pairs.inputs)[0].reshape(len(pairs), -1).double().numpy()  # (N, H)
    design = np.hstack([pairs.inputs.reshape(len(pairs), -1).double().numpy(),
                        np.ones((len(pairs), 1))])
    truth = pairs.targets.reshape(len(pairs), -1).double().numpy()
    coef, *_ = np.linalg.lstsq(design, truth, rcond=None)
    np.testing.assert_allclose(pred, design @ coef, atol=1e-4, rtol=0)
    np.testing.assert_allclose(pred, truth, atol=1e-4, rtol=0)  # AR(2) is recovered
    # the untrained recurrent path contributes nothing until it is trained
    assert torch.count_nonzero(model.head.weight) == 0


def test_init_linear_path_skips_models_without_it() -> None:
    y = torch.tensor(_ar2(40), dtype=torch.float32)[:, None]
    pairs = series_windows(y, 1, 4, 1, np.arange(3, 39))
    step = _built(ModelConfig(head="step"), seed=0)
    plain = _built(ModelConfig(head="last", window=4, linear_path=False), seed=0)
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    assert not init_linear_path(step, pairs)
    assert not init_linear_path(plain, pairs)
    assert all(torch.equal(before[k], v) for k, v in plain.state_dict().items())
