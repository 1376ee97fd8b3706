"""The network: recurrent encoder + linear head, with an optional linear path beside them.

Heads, chosen by ``ModelConfig.head``:
- ``step``: one output per time step, ``y_t = head(h_t) + linear(x_t)``;
- ``last``: ``horizon`` outputs from the last real step, ``y = head(h_last) + linear(window)``.

The linear path lets the model be at least as good as a least-squares linear autoregression
over the same window (it is initialised to that fit), with the recurrent path learning what the
linear map cannot.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnkit.config import ModelConfig
from rnnkit.models.cells import State, make_encoder, zero_state


class RecurrentNet(nn.Module):
    """Encoder + head. Inputs are ``(B, T, F)``, outputs ``(B, T, O)`` (step head) or
    ``(B, horizon, O)`` (last head)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = make_encoder(cfg)
        o = cfg.output_size
        if cfg.head == "step":
            self.head = nn.Linear(cfg.hidden_size, o)
            self.linear = nn.Linear(cfg.input_size, o, bias=False) if cfg.linear_path else None
        else:
            self.head = nn.Linear(cfg.hidden_size, cfg.horizon * o)
            self.linear = (
                nn.Linear(cfg.window * cfg.input_size, cfg.horizon * o)
                if cfg.linear_path else None
            )

    # --- whole sequences -------------------------------------------------------------------
    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None,
                state: State | None = None) -> tuple[torch.Tensor, State]:
        out, state = self.encoder(x, state)  # (B, T, H)
        if self.cfg.head == "step":
            y = self.head(out)  # (B, T, O)
            if self.linear is not None:
                y = y + self.linear(x)
            return y, state
        b = x.shape[0]
        # (B, H): the last real step of each row; padding comes after it
        last = out[:, -1] if lengths is None else out[torch.arange(b), lengths - 1]
        y = self.head(last)  # (B, horizon * O)
        if self.linear is not None:
            y = y + self.linear(x.reshape(b, -1))
        return y.view(b, self.cfg.horizon, self.cfg.output_size), state

    # --- explicit state (step heads) -------------------------------------------------------
    def init_state(self, batch: int) -> State:
        """All-zero state for ``batch`` independent sequences (no leak between them)."""
        return zero_state(self.cfg, batch, like=self.head.weight)

    def step(self, x: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        """One time step: x (B, F) -> prediction of the next value (B, O) and the new state."""
        y, state = self.forward(x[:, None, :], state=state)
        return y[:, 0], state

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
