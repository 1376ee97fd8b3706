"""K differently initialised members trained side by side in one pass, then averaged.

Members of ``h`` units each are packed into one recurrent layer of ``K * h`` units whose
recurrent weights (and, above the first layer, input weights) are block diagonal: member k's
units read only member k's units, so the packed layer computes K independent networks with the
same fused kernel (oneDNN, cuDNN) a single model uses. Small models are bound by per-step
overhead, so K members cost far less than K fits (``benchmarks/run.py``, case ensemble).
A gradient mask keeps the blocks apart while training: the zero weights get zero gradients,
and Adam leaves a zero weight with zero gradients at zero.

Each member starts exactly as the single model of seed ``seed + k`` would (its own
least-squares linear path included), and each is scored on its own error while training
(``objectives.members``); early stopping watches the error of their average. The saved model
is the average: ``collapse`` writes it into an ordinary ``RecurrentNet`` of ``K * h`` units,
so forecasts, intervals, streaming, the guard and saved runs need nothing new.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnkit.config import ModelConfig
from rnnkit.data.pairs import Pairs
from rnnkit.models.least_squares import LINEAR_LR_SCALE, least_squares, least_squares_start
from rnnkit.models.network import RecurrentNet


def member_config(cfg: ModelConfig) -> ModelConfig:
    """One member: the same network with ``hidden_size`` units and no ensemble."""
    return ModelConfig(**{**cfg.__dict__, "ensemble": 1})


def _blocks(rows: int, cols: int, k: int) -> torch.Tensor:
    """(rows, cols) mask: row block i (of rows / k) may read column block i (of cols / k),
    each gate's rows (rows = gates x units) split the same way."""
    gates = rows // cols
    unit = torch.arange(cols) // (cols // k)  # member of each unit
    row_member = unit.repeat(gates)
    return (row_member[:, None] == unit[None, :]).float()


SCORE_BATCH = 4096  # pairs per scoring call


class Members(nn.Module):
    """The packed members, for training: ``forward`` gives every member's outputs,
    (B, K, horizon, O)."""

    def __init__(self, cfg: ModelConfig, seed: int, train_pairs: Pairs | None) -> None:
        super().__init__()
        self.cfg, k = cfg, cfg.ensemble
        # every member's linear path starts at the same least-squares fit: solved once
        fit = (least_squares(train_pairs) if train_pairs is not None and len(train_pairs)
               and cfg.linear_path and cfg.head == "last" else None)
        nets = []
        for m in range(k):
            torch.manual_seed(seed + m)  # member m starts as the fit of seed + m would
            net = RecurrentNet(member_config(cfg))
            if fit is not None:
                least_squares_start(net, train_pairs, fit=fit)
            nets.append(net)
        net = RecurrentNet(cfg)  # the averaged model; its encoder is trained here
        self.encoder = net.encoder
        self._net = [net]  # a list: not registered twice as a submodule
        self.masks: dict[str, torch.Tensor] = {}
        self._pack_encoder(nets)
        h, out = cfg.hidden_size, cfg.horizon * cfg.output_size
        # (K, out, h): member m's head
        self.heads = nn.Parameter(torch.stack([n.head.weight.detach() for n in nets]))
        self.head_bias = nn.Parameter(torch.stack([n.head.bias.detach() for n in nets]))
        self.linear = (nn.Parameter(torch.stack([n.linear.weight.detach() for n in nets]))
                       if nets[0].linear is not None else None)  # (K, out, W*F)
        self._out, self._h = out, h

    def _pack_encoder(self, nets: list[RecurrentNet]) -> None:
        k, h = self.cfg.ensemble, self.cfg.hidden_size
        enc = self.encoder
        with torch.no_grad():
            for name, p in enc.named_parameters():
                parts = [dict(n.encoder.named_parameters())[name] for n in nets]
                if name.startswith("bias"):
                    gates = p.shape[0] // (k * h)
                    p.copy_(torch.stack([q.view(gates, h) for q in parts], 1).reshape(-1))
                    continue
                gates = p.shape[0] // (k * h)
                rows = torch.stack([q.view(gates, h, -1) for q in parts], 1)  # (G, K, h, in)
                if name.startswith("weight_ih_l0"):
                    p.copy_(rows.reshape(p.shape))  # every member reads the same input
                    continue
                mask = _blocks(p.shape[0], p.shape[1], k)
                dense = torch.zeros(gates, k, h, k, h)
                for m in range(k):
                    dense[:, m, :, m, :] = rows[:, m]
                p.copy_(dense.reshape(p.shape))
                self.masks[name] = mask
                p.register_hook(lambda g, m=mask: g * m.to(g.device, g.dtype))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None,
                state: object = None) -> tuple[torch.Tensor, None]:
        out, _ = self.encoder(x, state)  # (B, T, K*h)
        b, k = x.shape[0], self.cfg.ensemble
        last = out[:, -1] if lengths is None else out[torch.arange(b, device=out.device),
                                                      lengths.to(out.device) - 1]
        hidden = last.view(b, k, self._h)
        y = torch.einsum("bkh,koh->bko", hidden, self.heads) + self.head_bias
        if self.linear is not None:
            y = y + torch.einsum("bw,kow->bko", x.reshape(b, -1), self.linear)
        return y.view(b, k, self.cfg.horizon, self.cfg.output_size), None

    @torch.no_grad()
    def collapse(self) -> RecurrentNet:
        """The average of the members as one ``RecurrentNet`` (K * h units)."""
        net, k = self._net[0], self.cfg.ensemble
        # member m's head reads its own h units; the average divides by K
        net.head.weight.copy_(self.heads.permute(1, 0, 2).reshape(self._out, -1) / k)
        net.head.bias.copy_(self.head_bias.mean(dim=0))
        if self.linear is not None:
            net.linear.weight.copy_(self.linear.mean(dim=0))
            net.linear.bias.zero_()
        return net

    def param_groups(self, lr: float) -> list[dict]:
        """Like ``least_squares.param_groups``: the linear paths, started at their least-squares
        optimum, learn at ``lr * LINEAR_LR_SCALE``."""
        rest = [p for p in self.parameters() if p is not self.linear]
        if self.linear is None:
            return [{"params": rest}]
        return [{"params": rest}, {"params": [self.linear], "lr": lr * LINEAR_LR_SCALE}]

    @torch.no_grad()
    def scores(self, pairs: Pairs) -> dict:
        """Validation MSE (model units) of each member and of their average."""
        self.eval()
        each, average, count = 0.0, 0.0, 0
        # in batches of gathered pairs: a panel's pairs are views over its whole buffer, and
        # its covariates are joined to each batch as it is gathered
        for s in range(0, len(pairs), SCORE_BATCH):
            b = pairs.rows(s, s + SCORE_BATCH)
            pred, _ = self(b.inputs, lengths=b.lengths)  # (B, K, H, O)
            target = b.targets[:, None]
            each = each + ((pred - target) ** 2).mean(dim=(2, 3)).sum(dim=0)
            average += float(((pred.mean(dim=1, keepdim=True) - target) ** 2).mean(
                dim=(1, 2, 3)).sum())
            count += len(b.inputs)
        each = each / max(count, 1)
        return {"members": [round(float(v), 6) for v in each],
                "average": round(average / max(count, 1), 6)}
