"""Run folders across releases (issue 14): the committed folders of earlier releases load
through the migrations and predict identically; a fresh save carries the current
``format_version``; a newer or malformed version is refused in one line, in the library and
on the command line; loading never writes into the folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers_cli import Call, files, one_line_error, run_all

import rnnkit
from rnnkit import CheckpointError
from rnnkit.persist import check_header
from rnnkit.run_format import FORMAT_VERSION, MIGRATIONS, migrate, upgrade, version_of

FOLDERS = Path(__file__).parent / "data" / "runs"
NILE = FOLDERS / "nile-0.1.0"
MACRO = FOLDERS / "macro3-0.1.0"


def macro_long(data_dir: Path, tmp_path: Path) -> Path:
    """The long table macro3-0.1.0 was fitted on, rebuilt as its README says."""
    wide = pd.read_csv(data_dir / "us_macro_quarterly.csv").tail(60)
    long = wide.melt(id_vars="quarter", value_vars=["realgdp", "cpi", "unemp"],
                     var_name="unique_id", value_name="y").rename(columns={"quarter": "ds"})
    path = tmp_path / "macro3_long.csv"
    long.to_csv(path, index=False)
    return path


def assert_same(got: pd.DataFrame, expected: Path) -> None:
    """``got`` equals the frame saved to ``expected`` at creation: the same columns, the same
    labels, and bit-identical floats (``%.17g`` round-trips float64 exactly)."""
    frame = got if isinstance(got.index, pd.RangeIndex) else got.reset_index()
    saved = pd.read_csv(expected)
    assert list(frame.columns) == list(saved.columns)
    assert len(frame) == len(saved)
    for col in saved.columns:
        if pd.api.types.is_float_dtype(saved[col]):
            assert np.array_equal(frame[col].to_numpy(np.float64), saved[col].to_numpy()), col
        else:
            assert frame[col].astype(str).tolist() == saved[col].astype(str).tolist(), col


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file's content hash and mtime: equal snapshots mean nothing was written."""
    hashes = files(folder)
    return {k: (h, (folder / k).stat().st_mtime_ns) for k, h in hashes.items()}


def with_config(tmp_path: Path, **changes: object) -> Path:
    """A copy of the nile folder whose config.json has ``changes`` (None removes a key)."""
    run = shutil.copytree(NILE, tmp_path / "run")
    cfg = json.loads((run / "config.json").read_text())
    for key, value in changes.items():
        cfg.pop(key, None)
        if value is not None:
            cfg[key] = value
    (run / "config.json").write_text(json.dumps(cfg))
    return run


def newer_folder(tmp_path: Path) -> Path:
    """A copy of the nile folder dressed as a later release's, one format_version ahead."""
    versions = json.loads((NILE / "config.json").read_text())["versions"] | {"rnnkit": "9.0.0"}
    return with_config(tmp_path, format=None, format_version=FORMAT_VERSION + 1,
                       versions=versions)


def newer_message(run: Path) -> str:
    return (f"{run / 'config.json'}: format_version {FORMAT_VERSION + 1} (written by rnnkit "
            f"9.0.0) is newer than rnnkit {rnnkit.__version__} can read (format_version "
            f"{FORMAT_VERSION} at most); upgrade rnnkit (pip install --upgrade rnnkit) to "
            "load it.")


# --- the committed folders of earlier releases -------------------------------------------------
@pytest.mark.parametrize("folder", [NILE, MACRO], ids=lambda p: p.name)
def test_an_earlier_release_folder_loads_and_predicts_identically(folder, data_dir, tmp_path):
    before = snapshot(folder)
    raw = json.loads((folder / "config.json").read_text())
    assert raw["format"] == 1 and "format_version" not in raw  # the layout before issue 14
    data = (data_dir / "nile_yearly.csv" if folder == NILE else macro_long(data_dir, tmp_path))
    run = rnnkit.load(folder)
    assert run.config["format_version"] == FORMAT_VERSION and "format" not in run.config
    assert_same(run.predict(data), folder / "expected_predict.csv")
    assert_same(run.forecast(12), folder / "expected_forecast.csv")
    assert snapshot(folder) == before  # loading and predicting wrote nothing there


def test_a_fresh_save_carries_the_current_format_version_and_round_trips(data_dir, tmp_path):
    run = rnnkit.fit(data_dir / "nile_yearly.csv", target="flow_1e8_m3", epochs=1, seed=0,
                     quiet=True)
    folder = run.save(tmp_path / "run", plots=False)
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["format_version"] == FORMAT_VERSION and "format" not in cfg
    meta = check_header(folder / "model.safetensors")["__metadata__"]
    assert meta == {"format_version": str(FORMAT_VERSION), "rnnkit": rnnkit.__version__}
    loaded = rnnkit.load(folder)
    assert loaded.config == run.config | {"versions": cfg["versions"],
                                          "format_version": FORMAT_VERSION}
    a, b = run.predict(data_dir / "nile_yearly.csv"), loaded.predict(data_dir / "nile_yearly.csv")
    assert a.index.equals(b.index) and np.array_equal(a.to_numpy(), b.to_numpy())
    assert np.array_equal(run.forecast(12).to_numpy(), loaded.forecast(12).to_numpy())


def test_a_migrated_folder_saved_again_is_current_and_predicts_the_same(data_dir, tmp_path):
    folder = rnnkit.load(NILE).save(tmp_path / "again", plots=False)
    assert json.loads((folder / "config.json").read_text())["format_version"] == FORMAT_VERSION
    again = rnnkit.load(folder)
    assert_same(again.predict(data_dir / "nile_yearly.csv"), NILE / "expected_predict.csv")
    assert_same(again.forecast(12), NILE / "expected_forecast.csv")


# --- refused folders ---------------------------------------------------------------------------
def test_a_newer_format_version_is_refused_naming_both_versions(tmp_path):
    run = newer_folder(tmp_path)
    before = snapshot(run)
    with pytest.raises(CheckpointError) as info:
        rnnkit.load(run)
    assert str(info.value) == newer_message(run)
    assert snapshot(run) == before
    unsigned = with_config(tmp_path / "unsigned", format=None, versions=None,
                           format_version=FORMAT_VERSION + 1)
    with pytest.raises(CheckpointError, match=rf"format_version {FORMAT_VERSION + 1} is newer "
                                              rf"than rnnkit \S+ can read"):
        rnnkit.load(unsigned)


@pytest.mark.parametrize("value", ["2", 2.0, -1, 0, True, None, [2], {"v": 2}, "x" * 500],
                         ids=["string", "float", "negative", "zero", "bool", "null", "list",
                              "object", "long string"])
def test_a_malformed_format_version_is_refused_in_one_line(tmp_path, value):
    run = shutil.copytree(NILE, tmp_path / "run")
    cfg = json.loads((run / "config.json").read_text()) | {"format_version": value}
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as info:
        rnnkit.load(run)
    message = str(info.value)
    assert message.startswith(f"{run / 'config.json'}: format_version must be a positive "
                              "integer, got ")
    assert "\n" not in message and len(message) < 300
    assert message.endswith("restore it from a copy of the run folder.")


@pytest.mark.parametrize("legacy", [None, 2, "1", True])
def test_a_config_with_no_version_it_knows_is_not_a_run_config(tmp_path, legacy):
    run = with_config(tmp_path, format=legacy)
    with pytest.raises(CheckpointError, match=r"not an rnnkit run config \(no format_version"):
        rnnkit.load(run)


def test_the_command_line_refuses_a_newer_or_malformed_folder_in_one_line(tmp_path):
    newer = newer_folder(tmp_path / "a")
    bad = with_config(tmp_path / "b", format_version=-1)
    before = {newer: snapshot(newer), bad: snapshot(bad)}
    results = run_all([Call.of("evaluate", newer), Call.of("forecast", newer, "--steps", "3"),
                       Call.of("forecast", bad, "--steps", "3")])
    for result in results[:2]:
        assert one_line_error(result, code=2) == f"rnnkit: error: {newer_message(newer)}"
    assert "format_version must be a positive integer, got -1 (int)" in one_line_error(
        results[2], code=2)
    assert {newer: snapshot(newer), bad: snapshot(bad)} == before


# --- the migration chain -----------------------------------------------------------------------
def test_the_chain_applies_every_step_in_order_and_leaves_its_input_alone():
    def step(n: int):
        return lambda cfg: {**cfg, "trail": [*cfg["trail"], n], "format_version": n + 1}

    chain = {1: step(1), 2: step(2), 3: step(3)}
    start = {"trail": [], "format_version": 1}
    assert upgrade(start, 1, chain, latest=4) == {"trail": [1, 2, 3], "format_version": 4}
    assert upgrade(start | {"format_version": 2}, 2, chain, latest=4)["trail"] == [2, 3]
    assert upgrade(start, 4, chain, latest=4) is start  # already current: nothing to do
    assert start == {"trail": [], "format_version": 1}


def test_every_earlier_version_has_one_step_to_the_next():
    assert set(MIGRATIONS) == set(range(1, FORMAT_VERSION))
    assert version_of({"format": 1}, "x") == 1
    for n, step in MIGRATIONS.items():
        cfg = {"kind": "series", "format_version": n} if n > 1 else {"kind": "series",
                                                                     "format": 1}
        out = step(cfg)
        assert version_of(out, "x") == n + 1 and out["kind"] == "series"


def test_version_1_becomes_version_2_by_renaming_its_key_only():
    v1 = {"kind": "series", "model": {"hidden_size": 4}, "format": 1}
    assert migrate(v1, "config.json") == {"kind": "series", "model": {"hidden_size": 4},
                                          "format_version": 2}
    assert v1["format"] == 1  # pure: the loaded dict is not changed in place
    current = {"kind": "series", "format_version": FORMAT_VERSION}
    assert migrate(current, "config.json") == current
