"""Recurrent encoders: torch's fused modules where they exist, our own cell loop otherwise.

Both map inputs ``(B, T, F)`` and an optional state to outputs ``(B, T, H)`` and a new state.
The state of rnn/gru is ``h`` (L, B, H); of lstm the pair ``(h, c)``. The loop encoder keeps the
parameter names and shapes of ``nn.RNN`` (``weight_ih_l0`` ...), so weights copy across and the
parity tests can compare the two paths exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from rnnkit.config import ModelConfig
from rnnkit.errors import ConfigError, did_you_mean

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
FUSED_ACTIVATIONS = ("tanh", "relu")
_NOT_ELEMENTWISE = {"softmax", "log_softmax", "softmin", "glu", "normalize", "gumbel_softmax"}


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def resolve_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Find an elementwise activation by name in ``torch.nn.functional`` or ``torch``.

    ``identity`` (also ``linear``/``none``) is the identity. Raises ConfigError for unknown
    names and for functions that are not elementwise (softmax mixes units).
    """
    key = str(name).strip().lower()
    if key in ("identity", "linear", "none"):
        return _identity
    if key in _NOT_ELEMENTWISE:
        # checked first: "did you mean" would otherwise suggest the rejected name itself
        raise ConfigError(
            f"activation={name!r} mixes the hidden units (it is not elementwise); use an "
            "elementwise activation such as tanh, relu, identity, softplus, sigmoid or gelu."
        )
    fn = getattr(torch.nn.functional, key, None) or getattr(torch, key, None)
    known = [n for n in dir(torch.nn.functional) if not n.startswith("_")] + ["identity"]
    if fn is None or not callable(fn):
        raise ConfigError(
            f"activation={name!r} is not an elementwise torch activation; try tanh, relu, "
            "identity, softplus, sigmoid, gelu, elu, silu." + did_you_mean(key, known)
        )
    probe = torch.linspace(-3, 3, 12).reshape(3, 4)
    try:
        whole = fn(probe)
        part = fn(probe[:1, :2])
    except Exception as exc:  # any failure means the name is not a usable activation
        raise ConfigError(f"activation={name!r} cannot be applied elementwise: {exc}") from None
    if (
        not isinstance(whole, torch.Tensor)
        or whole.shape != probe.shape
        or not torch.allclose(whole[:1, :2], part)
    ):
        raise ConfigError(f"activation={name!r} is not elementwise; pick e.g. tanh or softplus.")
    return fn


class LoopRNN(nn.Module):
    """Elman RNN with any elementwise activation: ``h_t = act(W_ih x_t + b_ih + W_hh h + b_hh)``.

    The input projection of all steps is one matrix product; only the recurrence loops in
    Python, which is the part that cannot be batched over time.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float,
                 activation: str) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.dropout = dropout
        self.activation = activation
        self.act = resolve_activation(activation)
        k = 1.0 / math.sqrt(hidden_size)
        for layer in range(num_layers):
            fan_in = input_size if layer == 0 else hidden_size
            for name, shape in (("weight_ih", (hidden_size, fan_in)),
                                ("weight_hh", (hidden_size, hidden_size)),
                                ("bias_ih", (hidden_size,)), ("bias_hh", (hidden_size,))):
                p = nn.Parameter(torch.empty(shape).uniform_(-k, k))
                self.register_parameter(f"{name}_l{layer}", p)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape  # (B, T, F)
        if h0 is None:
            h0 = x.new_zeros(self.num_layers, b, self.hidden_size)
        layer_in, finals = x, []
        for layer in range(self.num_layers):
            w_ih = getattr(self, f"weight_ih_l{layer}")
            w_hh = getattr(self, f"weight_hh_l{layer}")
            bias = getattr(self, f"bias_ih_l{layer}") + getattr(self, f"bias_hh_l{layer}")
            proj = torch.nn.functional.linear(layer_in, w_ih, bias)  # (B, T, H)
            h = h0[layer]
            outs = []
            for step in range(t):
                h = self.act(torch.addmm(proj[:, step], h, w_hh.t()))
                outs.append(h)
            layer_in = torch.stack(outs, dim=1)  # (B, T, H)
            finals.append(h)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = torch.nn.functional.dropout(layer_in, self.dropout, training=True)
        return layer_in, torch.stack(finals, dim=0)


def make_encoder(cfg: ModelConfig) -> nn.Module:
    """The fastest exact encoder for ``cfg``: fused nn.RNN/LSTM/GRU, else the cell loop."""
    common = dict(input_size=cfg.input_size, hidden_size=cfg.units,
                  num_layers=cfg.num_layers, dropout=cfg.dropout, batch_first=True)
    if cfg.cell == "lstm":
        return nn.LSTM(**common)
    if cfg.cell == "gru":
        return nn.GRU(**common)
    act = str(cfg.activation).strip().lower()
    if act in FUSED_ACTIVATIONS:
        return nn.RNN(nonlinearity=act, **common)
    return LoopRNN(cfg.input_size, cfg.units, cfg.num_layers, cfg.dropout, act)


def zero_state(cfg: ModelConfig, batch: int, like: torch.Tensor | None = None) -> State:
    """The initial (all-zero) state for ``batch`` independent sequences."""
    dev = like.device if like is not None else None
    # match the model's dtype too, so a float64 model can step from init_state
    dtype = like.dtype if like is not None else None
    h = torch.zeros(cfg.num_layers, batch, cfg.units, device=dev, dtype=dtype)
    return (h, h.clone()) if cfg.cell == "lstm" else h
