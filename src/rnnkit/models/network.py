"""The network: recurrent encoder + linear head, with an optional linear path beside them.

Heads, chosen by ``ModelConfig.head``:
- ``step``: one output per time step, ``y_t = head(h_t) + linear(x_t)``;
- ``last``: ``horizon`` outputs from the last real step, ``y = head(h_last) + linear(window)``.

With a probabilistic loss (``ModelConfig.loss``) a second linear head beside the first gives the
distribution's other parameters (``rnnkit.models.distributions``); ``forward(..., params=True)``
returns them, every other use sees the point forecast alone.

The linear path lets the model be at least as good as a least-squares linear autoregression
over the same window (it is initialised to that fit), with the recurrent path learning what the
linear map cannot.

Categorical static inputs (a panel's ``--static`` text columns, ``ModelConfig.categories``)
arrive as the last inputs of every step, each a code ``(code + 0.5) / categories`` in (0, 1)
(``data/statics.py``). The encoder reads each through an ``nn.Embedding`` (a learned vector per
category, joined to the step's other inputs); the linear path reads the inputs as they are.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from rnnkit.config import ModelConfig
from rnnkit.errors import ConfigError
from rnnkit.models.cells import LoopRNN, State, make_encoder, zero_state
from rnnkit.models.distributions import extra_outputs

FUSED_STEP_BATCH = 512  # measured: lstm_cell wins below a few hundred rows, the fused LSTM above
_CELL_FNS = {"gru": torch.gru_cell, "tanh": torch.rnn_tanh_cell, "relu": torch.rnn_relu_cell}


class RecurrentNet(nn.Module):
    """Encoder + head. Inputs are ``(B, T, F)``, outputs ``(B, T, O)`` (step head) or
    ``(B, horizon, O)`` (last head)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embeddings = _embeddings(cfg)
        self.encoder = make_encoder(replace(cfg, input_size=encoder_inputs(cfg))
                                    if self.embeddings is not None else cfg)
        o = cfg.output_size
        if cfg.head == "step":
            self.head = nn.Linear(cfg.units, o)
            self.linear = nn.Linear(cfg.input_size, o, bias=False) if cfg.linear_path else None
        else:
            self.head = nn.Linear(cfg.units, cfg.horizon * o)
            self.linear = (
                nn.Linear(cfg.window * cfg.input_size, cfg.horizon * o)
                if cfg.linear_path else None
            )
        self.extra_per_value = extra_outputs(cfg.loss, cfg.quantiles)
        steps = 1 if cfg.head == "step" else cfg.horizon
        self.extra = (nn.Linear(cfg.units, steps * o * self.extra_per_value)
                      if self.extra_per_value else None)

    # --- whole sequences -------------------------------------------------------------------
    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None,
                state: State | None = None, params: bool = False) -> tuple:
        """(y, state): y (B, T, O) or (B, horizon, O), the point forecasts. With ``params``
        (a probabilistic loss): (y, state, extra), extra (.., O, P) the distribution's other
        parameters, raw (see ``rnnkit.models.distributions``)."""
        out, state = self.encoder(self.embedded(x), state)  # (B, T, H)
        o = self.cfg.output_size
        if self.cfg.head == "step":
            y = self.head(out)  # (B, T, O)
            if self.linear is not None:
                y = y + self.linear(x)
            if params:
                return y, state, self._extra(out, (*y.shape, self.extra_per_value))
            return y, state
        b = x.shape[0]
        # (B, H): the last real step of each row; padding comes after it
        last = out[:, -1] if lengths is None else out[torch.arange(b, device=out.device),
                                                      lengths.to(out.device) - 1]
        y = self.head(last)  # (B, horizon * O)
        if self.linear is not None:
            y = y + self.linear(x.reshape(b, -1))
        y = y.view(b, self.cfg.horizon, o)
        if params:
            return y, state, self._extra(last, (*y.shape, self.extra_per_value))
        return y, state

    def embedded(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's inputs: ``x`` (..., F) with its categorical codes (the last inputs)
        replaced by their embeddings, (..., F - C + sum of the embedding sizes)."""
        if self.embeddings is None:
            return x
        c = len(self.embeddings)
        sizes = torch.as_tensor(self.cfg.categories, device=x.device, dtype=x.dtype)
        # each code sits in the middle of its bucket of (0, 1): floor reads it back exactly
        codes = torch.floor(x[..., -c:] * sizes).long()
        codes = torch.minimum(codes.clamp_min(0), (sizes - 1).long())
        parts = [x[..., :-c], *(e(codes[..., j]) for j, e in enumerate(self.embeddings))]
        return torch.cat(parts, dim=-1)

    def _extra(self, hidden: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        if self.extra is None:
            raise ValueError("this model has no distribution head (loss='mse').")
        return self.extra(hidden).view(shape)

    # --- explicit state (step heads) -------------------------------------------------------
    def init_state(self, batch: int) -> State:
        """All-zero state for ``batch`` independent sequences (no leak between them)."""
        return zero_state(self.cfg, batch, like=self.head.weight)

    def step(self, x: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        """One time step: x (B, F) -> prediction of the next value (B, O) and the new state.

        Calls torch's cell kernels (``lstm_cell``, ``gru_cell``, ``rnn_tanh_cell``, ...) on the
        encoder's own weights: the same maths as ``forward`` on a one-step sequence without the
        fused module's per-call set-up, which dominates when stepping one value at a time.
        """
        cfg, enc = self.cfg, self.encoder
        if x.shape[0] >= FUSED_STEP_BATCH and not isinstance(enc, LoopRNN):
            # many rows at once: the fused kernel's per-call set-up is now the smaller cost
            y, state = self.forward(x[:, None, :], state=state)
            return y[:, 0], state
        if state is None:
            state = self.init_state(x.shape[0])
        lstm = cfg.cell == "lstm"
        h_all, c_all = state if lstm else (state, None)
        inp, hs, cs = self.embedded(x), [], []
        for layer in range(cfg.num_layers):
            w_ih, w_hh = getattr(enc, f"weight_ih_l{layer}"), getattr(enc, f"weight_hh_l{layer}")
            b_ih, b_hh = getattr(enc, f"bias_ih_l{layer}"), getattr(enc, f"bias_hh_l{layer}")
            if lstm:
                h, c = torch.lstm_cell(inp, (h_all[layer], c_all[layer]), w_ih, w_hh, b_ih, b_hh)
                cs.append(c)
            elif isinstance(enc, LoopRNN):
                proj = torch.nn.functional.linear(inp, w_ih, b_ih + b_hh)
                h = enc.act(torch.addmm(proj, h_all[layer], w_hh.t()))
            else:
                h = _CELL_FNS[cfg.cell if cfg.cell == "gru" else enc.nonlinearity](
                    inp, h_all[layer], w_ih, w_hh, b_ih, b_hh)
            hs.append(h)
            inp = h
            if cfg.dropout and self.training and layer < cfg.num_layers - 1:
                inp = torch.nn.functional.dropout(inp, cfg.dropout, training=True)
        y = torch.nn.functional.linear(inp, self.head.weight, self.head.bias)
        if self.linear is not None:
            y = y + torch.nn.functional.linear(x, self.linear.weight, self.linear.bias)
        new_h = hs[0].unsqueeze(0) if len(hs) == 1 else torch.stack(hs)  # (L, B, H)
        if lstm:
            return y, (new_h, cs[0].unsqueeze(0) if len(cs) == 1 else torch.stack(cs))
        return y, new_h

    def warm_up(self, prompt: torch.Tensor, state: State | None = None
                ) -> tuple[torch.Tensor, State]:
        """Prime the state on ``prompt`` (B, P, F); returns the per-step predictions (B, P, O)
        and the primed state. The last prediction is the forecast of the step after the prompt."""
        return self.forward(prompt, state=state)

    def generate(self, prompt: torch.Tensor, steps: int, state: State | None = None
                 ) -> torch.Tensor:
        """Warm up on ``prompt`` (B, P, F) then feed predictions back for ``steps`` steps.

        Needs F == O (the model predicts its own next input). Returns (B, steps, O).
        """
        preds, state = self.warm_up(prompt, state)
        y = preds[:, -1]
        outs = [y]
        for _ in range(steps - 1):
            y, state = self.step(y, state)
            outs.append(y)
        return torch.stack(outs, dim=1)


def encoder_inputs(cfg: ModelConfig) -> int:
    """Inputs per step the encoder reads: the codes of categorical columns give way to their
    embeddings."""
    return cfg.input_size - len(cfg.categories) + sum(cfg.embedding_sizes)


def _embeddings(cfg: ModelConfig) -> nn.ModuleList | None:
    """One embedding per categorical static column, or None without."""
    if not cfg.categories:
        return None
    if len(cfg.categories) != len(cfg.embedding_sizes) or len(cfg.categories) > cfg.input_size:
        raise ConfigError(f"categories={list(cfg.categories)} needs one embedding size each "
                          f"(got {list(cfg.embedding_sizes)}) among input_size="
                          f"{cfg.input_size} inputs; they come from the data: do not set them.")
    if cfg.ensemble > 1:
        raise ConfigError(f"ensemble={cfg.ensemble} packs members that read the inputs as they "
                          "are, and categorical static columns need the network's embeddings; "
                          "drop --ensemble, or give the static columns as numbers.")
    return nn.ModuleList(nn.Embedding(int(n), int(d))
                         for n, d in zip(cfg.categories, cfg.embedding_sizes, strict=True))
