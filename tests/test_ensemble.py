"""Ensembles (models/ensemble.py): K members packed side by side, trained in one pass, saved
as their average."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.config import ModelConfig
from rnnkit.data.pairs import Pairs
from rnnkit.errors import ConfigError
from rnnkit.models.ensemble import Members, member_config
from rnnkit.models.least_squares import least_squares_start
from rnnkit.models.network import RecurrentNet
from rnnkit.train import objectives

DATA = Path(__file__).parent / "data"


def pairs(n: int = 96, window: int = 10, horizon: int = 2, seed: int = 0) -> Pairs:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, window, 1, generator=g)
    y = x[:, -2:, :1].flip(1)[:, :horizon] * 0.5 + 0.1 * torch.randn(n, horizon, 1, generator=g)
    return Pairs(x, y)


@pytest.mark.parametrize("cell, layers", [("lstm", 1), ("gru", 2), ("rnn", 1)])
def test_members_start_as_their_single_fits_and_average_when_collapsed(cell, layers) -> None:
    cfg = ModelConfig(cell=cell, hidden_size=6, num_layers=layers, window=10, horizon=2,
                      ensemble=3)
    p = pairs()
    members = Members(cfg, seed=5, train_pairs=p)
    members.eval()
    with torch.no_grad():
        each, _ = members(p.inputs)  # (B, K, H, O)
        for m in range(3):  # member m is the single model of seed 5 + m, least squares and all
            torch.manual_seed(5 + m)
            single = RecurrentNet(member_config(cfg))
            least_squares_start(single, p)
            # the head starts at zero: perturb it so that the recurrent part shows
            single.head.weight.normal_()
            members.heads[m].copy_(single.head.weight)
            each, _ = members(p.inputs)
            np.testing.assert_allclose(each[:, m].numpy(), single(p.inputs)[0].numpy(),
                                       rtol=1e-5, atol=1e-5)
        averaged = members.collapse().eval()
        np.testing.assert_allclose(averaged(p.inputs)[0].numpy(), each.mean(dim=1).numpy(),
                                   rtol=1e-5, atol=1e-5)


def test_training_keeps_the_members_apart() -> None:
    cfg = ModelConfig(cell="lstm", hidden_size=4, num_layers=2, window=10, horizon=2,
                      ensemble=3)
    p = pairs()
    members = Members(cfg, seed=0, train_pairs=p)
    opt = torch.optim.Adam(members.param_groups(0.05), lr=0.05, weight_decay=1e-3)
    members.train()
    for _ in range(5):
        opt.zero_grad()
        objectives.members(members, p).backward()
        opt.step()
    for name, mask in members.masks.items():
        weight = dict(members.encoder.named_parameters())[name]
        assert (weight[mask == 0] == 0).all(), name  # no member reads another's units
    assert members.masks  # both layers' recurrent weights, and layer 1's input weights
    assert {"weight_hh_l0", "weight_hh_l1", "weight_ih_l1"} <= set(members.masks)
    # changing member 1's own weights leaves member 0's output alone
    members.eval()
    with torch.no_grad():
        before, _ = members(p.inputs)
        members.encoder.weight_hh_l0[4:8].add_(1.0)  # gate i rows of member 1
        after, _ = members(p.inputs)
    np.testing.assert_array_equal(before[:, 0].numpy(), after[:, 0].numpy())
    assert not torch.equal(before[:, 1], after[:, 1])


def test_fit_saves_the_average_and_it_loads(tmp_path: Path) -> None:
    run = rnnkit.fit(DATA / "nile_yearly.csv", target="flow_1e8_m3", ensemble=4, epochs=15,
                     quiet=True, guard=False, out=tmp_path / "run")
    record = run.config["ensemble"]
    assert len(record["members"]) == 4 and len(set(record["members"])) == 4
    # the average's squared error is never above the members' mean (Jensen)
    assert record["average"] <= np.mean(record["members"]) + 1e-9
    assert run.config["model"]["ensemble"] == 4 and run.model.cfg.units == 4 * 4
    loaded = rnnkit.load(tmp_path / "run")
    np.testing.assert_array_equal(loaded.forecast(5).to_numpy(), run.forecast(5).to_numpy())
    np.testing.assert_array_equal(loaded.predict(DATA / "nile_yearly.csv").to_numpy(),
                                  run.predict(DATA / "nile_yearly.csv").to_numpy())
    findings = {f.code: f for f in loaded.diagnose(control=False)}
    said = findings.get("ensemble") or findings["members-disagree"]
    assert f"the 4 ensemble members' validation losses range from {min(record['members']):.4g}" \
        in said.message
    stream = loaded.stream()  # the explicit-state API works on the packed network too
    out = [stream.update(v) for v in (900.0, 950.0, 870.0) * 8]
    assert np.isfinite(out[-1]).all()  # a window model answers once its window is full


def test_ensemble_refuses_what_it_does_not_train(cli, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ensemble=3 trains window forecasts with loss mse"):
        rnnkit.fit(DATA / "nile_yearly.csv", target="flow_1e8_m3", ensemble=3, loss="gaussian",
                   epochs=1, quiet=True)
    code, _, err = cli("fit", DATA / "nile_yearly.csv", "--target", "flow_1e8_m3",
                         "--ensemble", "0", "--quiet", cwd=tmp_path)
    errors = [line for line in err.splitlines() if line.startswith("rnnkit: error:")]
    assert code == 2 and errors == ["rnnkit: error: ensemble=0 must be an integer >= 1."], err
    code, _, err = cli("fit", DATA / "nile_yearly.csv", "--target", "flow_1e8_m3",
                         "--ensemble", "3", "--epochs", "2", "--quiet", "--out", "r",
                         cwd=tmp_path)
    assert code == 0, err


def test_a_panel_ensemble_reads_its_covariates_and_refuses_text_statics() -> None:
    from test_panel_covariates import promo_panel

    data, plan = promo_panel(series=6, n=160)
    sizes = data.groupby("unique_id")["y"].transform("mean").round()
    data = data.assign(size=sizes, region=np.where(sizes > 100, "big", "small"))
    opts = {"future_features": ["promo"], "calendar": "none", "quiet": True, "seed": 0,
            "epochs": 6, "hidden_size": 8}
    run = rnnkit.fit(data.drop(columns=["region"]), static=["size"], ensemble=3, **opts)
    assert len(run.config["ensemble"]["members"]) == 3  # each member scored on validation
    fc = run.forecast(10, future=plan)
    on = plan.groupby("unique_id").head(10)["promo"].to_numpy() == 1
    assert np.isfinite(fc["y"]).all() and len(fc) == 60
    # the members learned the promotion through the covariate (+30% on a level of 10..1000)
    rel = fc["y"].to_numpy() / fc.groupby("unique_id")["y"].transform("mean").to_numpy()
    assert rel[on].mean() > rel[~on].mean() + 0.1
    with pytest.raises(ConfigError, match="categorical static columns need the network's "
                                          "embeddings; drop --ensemble"):
        rnnkit.fit(data, static=["size", "region"], ensemble=3, **opts)
