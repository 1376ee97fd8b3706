"""The doctor: every finding is provoked by a small real fit, and a healthy run does not raise it.

Fits are tiny (a few epochs, a few units) and shared per module; the whole file runs in
seconds. The full-size demos are checked in the slow test at the end (``-m slow``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnkit
from rnnkit.evaluate import doctor
from rnnkit.evaluate.findings.base import Finding, Subject
from rnnkit.evaluate.findings.history import check_history
from rnnkit.evaluate.findings.model import priming_curve


def codes(findings: list[Finding], severity: str | None = None) -> set[str]:
    return {f.code for f in findings if severity is None or f.severity == severity}


def serious(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings if f.severity != "info"}


def adder_data(n: int = 300, seed: int = 7) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(1, 11, size=int(rng.integers(2, 8))).astype(float) for _ in range(n)]
    return seqs, np.array([s.sum() for s in seqs])


def seeded_data(n: int = 400, shuffled: bool = False) -> np.ndarray:
    rng = np.random.default_rng(11)
    x = np.zeros((n, 10))
    x[:, :5] = rng.uniform(-1, 1, (n, 5))
    for i in range(5, 10):
        x[:, i] = x[:, i - 1] + 0.5 * x[:, 3]
    if shuffled:  # every prompt paired with another sequence's continuation
        x[:, 5:] = x[np.random.default_rng(12).permutation(n), 5:]
    return x


def sine(n: int = 600) -> np.ndarray:
    return np.sin(0.1 * np.arange(n))


ADDER = dict(cell="rnn", hidden_size=1, scaler="none", epochs=30, lr=1e-2, batch_size=32,
             quiet=True)
SEEDED = dict(shape="continuation", prompt_length=5, cell="lstm", hidden_size=12, epochs=12,
              lr=1e-2, batch_size=32, quiet=True)
SINE = dict(shape="next", cell="rnn", hidden_size=16, window=30, warmup=10, transform="none",
            epochs=30, lr=1e-2, split=(0.8, 0.2, 0.0), quiet=True)


@pytest.fixture(scope="module")
def adder_tanh():
    seqs, sums = adder_data()
    run = rnnkit.fit(seqs, target=sums, activation="tanh", **{**ADDER, "epochs": 60, "lr": 3e-2})
    return run, run.diagnose()


@pytest.fixture(scope="module")
def adder_identity():
    seqs, sums = adder_data()
    run = rnnkit.fit(seqs, target=sums, activation="identity", **ADDER)
    return run, run.diagnose()


@pytest.fixture(scope="module")
def seeded_real():
    run = rnnkit.fit(seeded_data(), **SEEDED)
    return run, run.diagnose()


@pytest.fixture(scope="module")
def seeded_shuffled():
    run = rnnkit.fit(seeded_data(shuffled=True), **SEEDED)
    return run, run.diagnose()


@pytest.fixture(scope="module")
def sine_run():
    run = rnnkit.fit(sine(), **SINE)
    return run, run.diagnose(control=False)


# --- saturation: the adder with tanh ------------------------------------------------------------
def test_tanh_adder_is_saturated(adder_tanh):
    _, findings = adder_tanh
    sat = next(f for f in findings if f.code == "saturation")
    assert sat.severity == "error"
    assert sat.evidence["output_max"] < sat.evidence["target_max"]
    assert sat.evidence["targets_out_of_reach"] > 0.1
    assert "identity" in sat.fix
    assert findings[0].code == "saturation"  # worst first


def test_identity_adder_is_healthy(adder_identity):
    _, findings = adder_identity
    assert "saturation" not in codes(findings)
    assert serious(findings) == set(), doctor.format_findings(findings)


# --- misalignment and no skill: the seeded problem with shuffled continuations -------------------
def test_shuffled_seeded_learned_nothing_real(seeded_shuffled):
    _, findings = seeded_shuffled
    mis = next(f for f in findings if f.code == "misaligned")
    assert mis.severity == "error"
    assert mis.evidence["ratio"] >= 0.8
    assert "learned nothing real" in mis.message
    skill = next(f for f in findings if f.code == "no-skill")
    assert skill.evidence["prediction_variance_ratio"] < 0.05  # a flat line


def test_real_seeded_is_aligned(seeded_real):
    run, findings = seeded_real
    assert not codes(findings) & {"misaligned", "no-skill"}, doctor.format_findings(findings)
    assert run.metrics["findings"] == [f.to_json() for f in findings]


# --- priming: a sine model, primed and unprimed ---------------------------------------------------
def test_priming_is_a_note_when_the_warmup_covers_it(sine_run):
    run, findings = sine_run
    f = next(f for f in findings if f.code == "priming")
    assert f.severity == "info"
    assert 1 <= f.evidence["needed_warmup"] <= run.pipeline.warmup
    assert str(f.evidence["needed_warmup"]) in f.fix


def test_priming_warns_when_evaluated_without_priming(sine_run):
    run, _ = sine_run
    run.pipeline.warmup = 0  # the same model, declared to be used from a zero state
    try:
        findings = doctor.diagnose(run, control=False)
    finally:
        run.pipeline.warmup = SINE["warmup"]
    f = next(f for f in findings if f.code == "priming")
    assert f.severity == "warning"
    n = f.evidence["needed_warmup"]
    assert f"--warmup {n}" in f.fix
    assert f.evidence["first_step_vs_settled"] > 10


def test_priming_curve_settles(sine_run):
    run, _ = sine_run
    pc = priming_curve(Subject(run, run.metrics))
    assert pc is not None and pc.curve[0] > 10 * pc.steady
    assert np.all(pc.curve[pc.needed : len(pc.curve) // 2] <= pc.tolerance)


def test_a_linear_baseline_beating_an_accurate_model_is_a_note(sine_run, adder_identity):
    _, findings = sine_run  # a sine is exactly linear: AR(30) is perfect, the model nearly
    f = next(f for f in findings if f.code == "baseline-better")
    assert f.severity == "info" and "linear AR" in f.message
    assert "baseline-better" not in codes(adder_identity[1])


def test_window_models_have_no_priming_finding(adder_identity):
    assert priming_curve(Subject(adder_identity[0], {})) is None


# --- data smells --------------------------------------------------------------------------------
def _fit_series(y: np.ndarray, **opts):
    base = dict(cell="gru", hidden_size=4, epochs=4, quiet=True)
    return rnnkit.fit(np.asarray(y, dtype=float), **{**base, **opts})


def test_unscaled_data():
    y = 5000 + 1000 * sine(300)
    found = _fit_series(y, scaler="none", window=12, transform="none").diagnose(control=False)
    assert "unscaled-data" in codes(found, "warning")
    sat = next(f for f in found if f.code == "saturation")  # huge inputs pin the GRU's units
    assert sat.severity == "warning" and sat.evidence["hidden_stuck_fraction"] > 0.9
    assert "--scaler standard" in sat.fix
    healthy = _fit_series(y, window=12, transform="none").diagnose(control=False)
    assert serious(healthy) == set(), doctor.format_findings(healthy)


def test_constant_series():
    found = _fit_series(np.full(200, 3.0), window=8).diagnose(control=False)
    assert "constant-series" in codes(found, "error")
    steps = np.repeat(np.arange(20.0), 10)  # 90% of steps repeat the previous value
    near = _fit_series(steps + 0.0, window=8, transform="none").diagnose(control=False)
    assert "constant-series" in codes(near, "warning")


def test_trend_fed_as_levels():
    rng = np.random.default_rng(0)
    y = 0.5 * np.arange(300) + rng.normal(0, 2, 300)
    found = _fit_series(y, window=8, transform="none").diagnose(control=False)
    f = next(f for f in found if f.code == "trend-needs-diff")
    assert f.severity == "warning" and f.evidence["later_rows_outside_training_range"] > 0.5
    assert "diff" in f.fix
    healthy = _fit_series(y, window=8).diagnose(control=False)  # auto picks diff
    assert "trend-needs-diff" not in codes(healthy)


def test_season_longer_than_window():
    rng = np.random.default_rng(1)
    pattern = rng.normal(0, 1, 24)
    y = np.tile(pattern, 20) + rng.normal(0, 0.05, 480)
    found = _fit_series(y, window=6, period=24, transform="none").diagnose(control=False)
    f = next(f for f in found if f.code == "season-longer-than-window")
    assert f.severity == "warning" and "--window 24" in f.fix
    healthy = _fit_series(y, window=24, period=24, transform="none").diagnose(control=False)
    assert "season-longer-than-window" not in codes(healthy)


def test_white_noise_has_no_skill():
    y = np.random.default_rng(2).normal(0, 1, 300)
    found = _fit_series(y, window=8, transform="none").diagnose()
    assert "no-skill" in serious(found), doctor.format_findings(found)
    assert "misaligned" in codes(found, "error")  # nothing real to learn, and it says so


# --- training history ---------------------------------------------------------------------------
def test_overfitting(sine_run):
    y = np.random.default_rng(3).normal(0, 1, 160)
    run = _fit_series(y, window=8, cell="lstm", hidden_size=48, epochs=60, lr=1e-2,
                      early_stopping=0, lr_patience=0, linear_path=False, transform="none")
    f = next(f for f in run.diagnose(control=False) if f.code == "overfitting")
    assert f.evidence["val_loss_late"] > 1.2 * f.evidence["val_loss_best"]
    assert f.evidence["best_epoch"] < 60
    assert "overfitting" not in codes(sine_run[1])


def test_one_unstable_epoch_is_not_overfitting(sine_run):
    losses = [1.0, 0.5, 0.3, 0.2] + [0.1] * 10 + [5.0] + [0.09] * 10  # a spike, then recovery
    assert "overfitting" not in codes(_history_only(sine_run[0], "early", 24, 14,
                                                    losses=losses))


def test_still_improving(sine_run):
    run = _fit_series(sine(), window=20, epochs=3, linear_path=False, transform="none")
    f = next(f for f in run.diagnose(control=False) if f.code == "still-improving")
    assert "--epochs" in f.fix
    assert "still-improving" not in codes(_history_only(sine_run[0], "max epochs", 30, 10))


def _history_only(run, stop: str, epochs: int, best: int, grads=None, losses=None):
    """A copy of ``run``'s facts with a given history: for thresholds on exact numbers."""
    hist = []
    for e in range(epochs + 1):
        loss = losses[e] if losses is not None else 1.0 / (1 + e if e <= best else 1 + best)
        hist.append({"epoch": e, "train_loss": loss, "val_loss": loss,
                     "grad_norm": float("nan") if e == 0 else (grads[e - 1] if grads else 1.0)})
    clone = rnnkit.Run(run.model, run.pipeline, {**run.config, "training": {
        "stop_reason": stop, "best_epoch": best}}, hist)
    return check_history(Subject(clone, run.metrics))


def test_gradient_thresholds(sine_run):
    run = sine_run[0]
    steady = [1.0] * 40
    assert not codes(_history_only(run, "early", 40, 40, grads=steady))
    grow = list(np.geomspace(1, 1e3, 40))
    assert "exploding-gradients" in codes(_history_only(run, "early", 40, 40, grads=grow))
    spike = [1.0] * 20 + [500.0] + [1.0] * 19
    assert "exploding-gradients" in codes(_history_only(run, "early", 40, 40, grads=spike))
    dying = list(np.geomspace(1, 1e-5, 40))
    flat = [1.0] + [0.9] * 40
    found = _history_only(run, "early", 40, 0, grads=dying, losses=flat)
    assert "vanishing-gradients" in codes(found)
    converged = list(np.geomspace(1, 1e-5, 40))  # tiny gradients of a model that learned
    falling = list(np.geomspace(1, 1e-6, 41))
    assert "vanishing-gradients" not in codes(
        _history_only(run, "early", 40, 40, grads=converged, losses=falling))


def test_exploding_gradients_with_a_high_learning_rate():
    y = sine(300) + 0.2 * np.random.default_rng(4).normal(size=300)
    opts = dict(window=10, cell="rnn", activation="relu", hidden_size=8, epochs=15,
                early_stopping=0, linear_path=False, transform="none")
    found = _fit_series(y, lr=0.3, **opts).diagnose(control=False)
    f = next(f for f in found if f.code == "exploding-gradients")
    assert f.severity == "warning" and "--lr" in f.fix
    calm = _fit_series(y, lr=1e-2, **opts).diagnose(control=False)
    assert not codes(calm) & {"exploding-gradients", "vanishing-gradients"}


# --- output -------------------------------------------------------------------------------------
def test_lines_and_summary(adder_tanh, adder_identity):
    _, bad = adder_tanh
    text = doctor.format_findings(bad)
    assert text.splitlines()[0].startswith("[error] saturation: ")
    assert " -> " in text and "(output_max=" in text
    assert doctor.format_findings([]).startswith("no problems found")
    note = doctor.format_findings([Finding("priming", "info", "a note.")]).splitlines()
    assert note[0].endswith("; 1 note:") and note[1] == "[info] priming: a note."
    short = doctor.summary(bad, "runs/x")
    assert short.startswith("doctor: [error] saturation")
    assert all(line.startswith("doctor: [") for line in short.splitlines())
    note = Finding("priming", "info", "a note.")
    assert doctor.summary([], "runs/x") == "doctor: no problems found"
    assert doctor.summary([note], "runs/x") == (
        "doctor: no problems found (1 note: rnnkit doctor runs/x)")
    assert doctor.summary([*bad, note], "runs/x").endswith("and 1 note: rnnkit doctor runs/x")


def test_findings_round_trip_through_metrics_json(tmp_path, adder_tanh):
    run, findings = adder_tanh
    folder = run.save(tmp_path / "adder", plots=False)
    stored = json.loads((folder / "metrics.json").read_text())["findings"]
    assert [Finding.from_json(f) for f in stored] == findings


def test_doctor_on_a_run_loaded_from_disk(tmp_path, cli, capsys):
    csv = tmp_path / "flat.csv"
    csv.write_text("t,y\n" + "".join(f"{i},{5.0 if i % 25 else 6.0}\n" for i in range(120)))
    code, out, err = cli("fit", csv, "--target", "y", "--epochs", "2", "--hidden-size", "4",
                         "--window", "8", "--out", tmp_path / "run", "--quiet")
    assert code == 0, err
    assert "doctor: " in out
    code, out, err = cli("doctor", tmp_path / "run", "--no-control")
    assert code == 0, err
    assert "[warning] constant-series" in out  # re-read from the source file
    from rnnkit.cli.main import main

    assert main(["doctor", str(tmp_path / "run"), "--json", "--no-control"]) == 0
    got = json.loads(capsys.readouterr().out)["findings"]
    assert "constant-series" in {f["code"] for f in got}


def test_new_data_for_a_seq2one_run_needs_its_targets(adder_identity):
    run, _ = adder_identity
    with pytest.raises(rnnkit.DataError, match="target="):
        run.diagnose([[1.0, 2.0]], control=False)
    seqs, sums = adder_data(60, seed=3)
    found = run.diagnose(seqs, target=sums, control=False)
    assert serious(found) == set()


def test_doctor_without_data_checks_history_only(tmp_path):
    run = _fit_series(sine(200), window=8)
    run.save(tmp_path / "inline", plots=False)
    loaded = rnnkit.load(tmp_path / "inline")
    found = loaded.diagnose()
    assert "no-data" in codes(found, "info")


# --- the demos themselves (full size: slow) ------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name, opts, expect", [
    ("adder", {}, set()),
    ("seeded", {}, set()),
    ("sine", {}, set()),
    ("sunspots", {}, set()),
    ("adder", {"activation": "tanh"}, {"saturation"}),
    ("seeded", {"shuffle_targets": True}, {"misaligned", "no-skill"}),
    ("sine", {"warmup": 0}, {"priming"}),
])
def test_demo_folders(tmp_path, name, opts, expect):
    from rnnkit.demos import run_demo

    res = run_demo(name, out=tmp_path / name, quiet=True, **opts)
    findings = rnnkit.load(res["folder"]).diagnose()
    assert serious(findings) == expect, doctor.format_findings(findings)


def test_overfitting_is_never_answered_with_train_longer(data_dir):
    # the Nile with the old default size and no guard: 4,500 parameters on 54 training
    # windows, test RMSE far above the simple models (issue 13)
    run = rnnkit.fit(data_dir / "nile_yearly.csv", target="flow_1e8_m3", hidden_size=32,
                     guard=False, quiet=True)
    advice = [f for f in run.diagnose(control=False) if f.code in ("no-skill", "baseline-better")]
    assert advice, [f.code for f in run.diagnose(control=False)]
    for f in advice:
        assert "over-fits" in f.fix and "parameters for 54 training windows" in f.fix, f.fix
        assert "train longer" not in f.fix and "more epochs will not help" in f.fix
