"""Hostile and malformed files in every slot rnnkit reads (RELIABILITY.md rows 15 and 16).

A planted pickle whose unpickling would create a marker file must be refused with a one-line
error and leave no marker; malformed safetensors and JSON must give a one-line CheckpointError,
allocate nothing huge and never build a model from an absurd config.

The tables (every slot, both kinds of bomb, every malformation) go through the CLI's entry
function ``rnnkit.cli.main.main`` in this process: argv in, exit status and stderr out, with a
spy that fails the test if a model is built. ``test_refused_by_a_real_process`` then runs one
case of each kind as a real ``python -m rnnkit`` process (tests/helpers_cli.py): exit 2, one
stderr line and no traceback, no marker, the run folder byte for byte as it was, and a peak
memory no higher than a healthy ``rnnkit forecast`` of the same run.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import resource
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import helpers_cli
import pytest
import torch
from helpers_cli import Call, Result, files, run_all, succeeded
from helpers_faults import (
    TINY,
    Bomb,
    interrupted_run,
    quiet_module,  # noqa: F401 - fixture: one thread, no plots in this module
    scratch,
    tmp_path,  # noqa: F401 - a fixture: tmp_path on tmpfs
    write_sine,
)
from safetensors.torch import save

import rnnkit
from rnnkit.cli.main import main
from rnnkit.errors import CheckpointError
from rnnkit.train import checkpoint
from rnnkit.train.checkpoint import read_checkpoint

OPTIONS = {**TINY, "epochs": 6, "checkpoint_every": 1}
SRC = Path(rnnkit.__file__).parent


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    with scratch("rnnkit-hostile-") as folder:
        yield folder


@pytest.fixture(scope="module")
def sine(work: Path) -> Path:
    return write_sine(work / "sine.csv")


@pytest.fixture(scope="module")
def saved(sine: Path, work: Path) -> Path:
    """A finished run folder (what ``rnnkit.load`` reads)."""
    rnnkit.fit(sine, out=work / "saved", **{**OPTIONS, "checkpoint_every": 0})
    return work / "saved"


@pytest.fixture(scope="module")
def unfinished(sine: Path, work: Path) -> Path:
    """An interrupted run folder (what ``rnnkit fit --resume`` reads): two checkpoints."""
    interrupted_run(sine, work / "unfinished", "2:end", **OPTIONS)
    return work / "unfinished"


def bomb_bytes(kind: str, marker: Path) -> bytes:
    """A file whose unpickling runs ``open(marker, "w")``: plain pickle or torch.save's zip."""
    if kind == "pickle":
        return pickle.dumps(Bomb(marker))
    path = marker.with_name("bomb.pt")
    torch.save(Bomb(marker), path)
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
def test_the_bombs_are_live(tmp_path: Path, kind: str) -> None:
    """Guard against a test that passes because its bomb was a dud."""
    marker = tmp_path / "exploded"
    data = bomb_bytes(kind, marker)
    if kind == "pickle":
        pickle.loads(data).close()  # the point: unpickling runs code (open)
    else:
        (tmp_path / "b.pt").write_bytes(data)
        torch.load(tmp_path / "b.pt", weights_only=False).close()
    assert marker.exists()


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture, code: int = 2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error: ") and err.count("\n") == 1, err
    return err.strip()


# --- row 15: pickle in every slot ---------------------------------------------------------------
LOAD_SLOTS = {  # file planted in a finished run -> what the error says
    "model.safetensors": "model.safetensors: is a pickle or torch.save file",
    "model.pt": "found model.pt, a pickle-based file, which rnnkit refuses to load",
    "config.json": "config.json: not valid JSON",
    "metrics.json": "metrics.json: not valid JSON",
    "history.csv": "history.csv: not the CSV of numbers rnnkit writes",
}


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
@pytest.mark.parametrize("slot", sorted(LOAD_SLOTS))
def test_pickle_in_a_run_folder_is_refused_unopened(saved: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture, slot: str,
                                                    kind: str) -> None:
    run = shutil.copytree(saved, tmp_path / "run")
    marker = tmp_path / "exploded"
    (run / slot).write_bytes(bomb_bytes(kind, marker))
    if slot == "model.pt":
        (run / "model.safetensors").unlink()
    err = one_line_error(["forecast", str(run), "--steps", "2"], capsys)
    assert LOAD_SLOTS[slot] in err
    assert not marker.exists()


def _all_checkpoints(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("ckpt-*"))


def rewrite(ckpt: Path, tensors: bytes | None = None, meta: dict | None = None) -> None:
    """Replace a checkpoint's files and keep its checksum consistent, as an attacker would."""
    if tensors is not None:
        (ckpt / "state.safetensors").write_bytes(tensors)
    data = (ckpt / "state.safetensors").read_bytes()
    meta = meta if meta is not None else checkpoint.loads(ckpt / "state.json")
    meta["state.safetensors"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (ckpt / "state.json").write_bytes(checkpoint.dumps(meta))


RESUME_SLOTS = {  # where the bomb goes in an unfinished run -> what the error says
    "run.json": "checkpoints/run.json: not valid JSON",
    "state.json": "state.json: not valid JSON",
    "state.safetensors": "bytes, but state.json records",
    "state.safetensors with a matching checksum": "state.safetensors: is a pickle or torch.save",
}


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
@pytest.mark.parametrize("slot", sorted(RESUME_SLOTS))
def test_pickle_in_a_checkpoint_is_refused_unopened(unfinished: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture, slot: str,
                                                    kind: str) -> None:
    run = shutil.copytree(unfinished, tmp_path / "run")
    marker = tmp_path / "exploded"
    bomb = bomb_bytes(kind, marker)
    if slot == "run.json":
        (run / "checkpoints" / "run.json").write_bytes(bomb)
    for ckpt in _all_checkpoints(run) if slot != "run.json" else []:
        if slot == "state.json":
            (ckpt / "state.json").write_bytes(bomb)
        elif slot == "state.safetensors":
            (ckpt / "state.safetensors").write_bytes(bomb)
        else:
            rewrite(ckpt, tensors=bomb)
    err = one_line_error(["fit", "--resume", str(run)], capsys)
    assert RESUME_SLOTS[slot] in err
    assert not marker.exists()


def test_pickle_in_latest_is_never_read(unfinished: Path, tmp_path: Path) -> None:
    """LATEST is a pointer for people and tools; resume picks checkpoints by their own checks."""
    run = shutil.copytree(unfinished, tmp_path / "run")
    marker = tmp_path / "exploded"
    (run / "checkpoints" / "LATEST").write_bytes(bomb_bytes("pickle", marker))
    assert main(["fit", "--resume", str(run)]) == 0
    assert not marker.exists() and (run / "model.safetensors").is_file()


def test_no_unpickling_anywhere_in_the_package() -> None:
    """No pickle.load(s), no torch.load without weights_only=True, no numpy allow_pickle."""
    banned = re.compile(r"\bpickle\.loads?\(|\bimport (c?pickle|dill|joblib)\b|from (c?pickle|"
                        r"dill|joblib) import|allow_pickle\s*=\s*True|\bUnpickler\b")
    sources = sorted(SRC.rglob("*.py"))
    assert len(sources) > 20
    for path in sources:
        text = path.read_text()
        assert not banned.search(text), f"{path}: {banned.search(text)}"
        for call in re.finditer(r"torch\.load\s*\(", text):
            args = text[call.end(): text.find(")", call.end()) + 1]
            assert "weights_only=True" in args, f"{path}: torch.load without weights_only=True"


# --- row 16: malformed safetensors and JSON -----------------------------------------------------
@pytest.fixture()
def no_model_built(monkeypatch: pytest.MonkeyPatch) -> list:
    """Fail the test if a model is built from the config being loaded."""
    built: list = []

    def refuse(cfg: object) -> None:
        built.append(cfg)
        raise AssertionError("a model was built from a malformed config")

    monkeypatch.setattr("rnnkit.runs.RecurrentNet", refuse)
    monkeypatch.setattr("rnnkit.api.RecurrentNet", refuse)
    return built


def _header(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8: 8 + n]), raw[8 + n:]


def _with_header(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def malformed_weights(case: str, path: Path) -> bytes:
    """model.safetensors of a saved run, damaged in one way."""
    weights = rnnkit.load(path.parent).model.state_dict()
    header, body = _header(path)
    name = sorted(k for k in header if k != "__metadata__")[0]
    if case == "header bigger than file":  # same size as before, only the length is a lie
        return struct.pack("<Q", 10**12) + path.read_bytes()[8:]
    if case == "bad offsets":
        header[name]["data_offsets"] = [0, 10**9]
        return _with_header(header, body)
    if case == "wrong shape":
        weights[name] = torch.zeros(3, 3)
    elif case == "nan weights":
        weights[name] = torch.full_like(weights[name], float("nan"))
    elif case == "missing tensor":
        del weights[name]
    return save({k: v.contiguous() for k, v in weights.items()})


WEIGHT_CASES = {
    "header bigger than file": "header claims 1000000000000 bytes but the file has",
    "bad offsets": "offsets 0..1000000000 lie outside the",
    "wrong shape": "has shape (3, 3) torch.float32, the model needs",
    "nan weights": "holds NaN or infinite weights",
    "missing tensor": "weights do not match the model (missing",
}


@pytest.mark.parametrize("case", sorted(WEIGHT_CASES))
def test_malformed_model_file_is_a_one_line_error(saved: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture, case: str) -> None:
    run = shutil.copytree(saved, tmp_path / "run")
    weights = run / "model.safetensors"
    weights.write_bytes(malformed_weights(case, weights))
    err = one_line_error(["forecast", str(run), "--steps", "2"], capsys)
    assert str(weights) in err and WEIGHT_CASES[case] in err


CONFIG_CASES = {  # edit of config.json["model"] -> what the error says
    "absurd hidden_size": ({"hidden_size": 10**9}, "hidden_size=1000000000 is absurdly large"),
    "huge but allowed model": ({"hidden_size": 65536, "num_layers": 64},
                               "describes a model of at least 1099512152064 bytes of weights"),
    "huge window": ({"window": 10**12, "linear_path": True, "head": "last"},
                    "describes a model of at least 40000000000"),
    "negative size": ({"hidden_size": -4}, "hidden_size=-4 must be an integer >= 1"),
    "wrong type": ({"num_layers": "2"}, "num_layers='2' must be an integer >= 1"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_absurd_config_never_builds_a_model(saved: Path, tmp_path: Path, no_model_built: list,
                                            capsys: pytest.CaptureFixture, case: str) -> None:
    run = shutil.copytree(saved, tmp_path / "run")
    edit, expected = CONFIG_CASES[case]
    config = json.loads((run / "config.json").read_text())
    config["model"].update(edit)
    (run / "config.json").write_text(json.dumps(config))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    err = one_line_error(["forecast", str(run), "--steps", "2"], capsys)
    assert "config.json" in err and expected in err
    assert no_model_built == []
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
    assert grown_mb < 64


@pytest.mark.parametrize("text", ['{"format": 1, "model": ', "\x00\x01binary", "[1, 2]",
                                  '{"format": 1, "kind": "series"}'])
def test_malformed_config_json_is_a_one_line_error(saved: Path, tmp_path: Path, text: str,
                                                   capsys: pytest.CaptureFixture) -> None:
    run = shutil.copytree(saved, tmp_path / "run")
    (run / "config.json").write_text(text)
    err = one_line_error(["forecast", str(run), "--steps", "2"], capsys)
    assert str(run / "config.json") in err


def _edit_state(case: str, ckpt: Path) -> None:
    snap = read_checkpoint(ckpt)
    tensors, meta = dict(snap.tensors), snap.meta
    name = "model.head.weight"
    if case == "wrong shape":
        tensors[name] = torch.zeros(7, 7)
    elif case == "nan weights":
        tensors[name] = torch.full_like(tensors[name], float("nan"))
    elif case == "nan optimizer state":
        key = next(k for k in tensors if k.endswith(".exp_avg"))
        tensors[key] = torch.full_like(tensors[key], float("inf"))
    elif case == "bad data order":
        meta["position"].update({"done": False, "step": 3})
    elif case == "absurd step":
        meta["position"]["step"] = 10**12
    elif case == "records not a list":
        meta["loop"]["records"] = "x"
    rewrite(ckpt, save({k: v.contiguous() for k, v in tensors.items()}), meta)


STATE_CASES = {
    "wrong shape": "tensor model.head.weight has shape (7, 7)",
    "nan weights": "tensor model.head.weight holds NaN or infinite values",
    "nan optimizer state": "non-finite values",
    "bad data order": "the data order (loop.perm) is not a permutation",
    "absurd step": "position epoch=2 step=1000000000000 is not valid",
    "records not a list": "the history records are not a list",
}


@pytest.mark.parametrize("case", sorted(STATE_CASES))
def test_malformed_checkpoint_is_a_one_line_error(unfinished: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture, case: str) -> None:
    run = shutil.copytree(unfinished, tmp_path / "run")
    newest = _all_checkpoints(run)[-1]
    for ckpt in _all_checkpoints(run):
        _edit_state(case, ckpt)
    err = one_line_error(["fit", "--resume", str(run)], capsys)
    assert str(newest) in err and STATE_CASES[case] in err
    assert not (run / "model.safetensors").exists()


RECORD_CASES = {
    "absurd hidden_size": ({"hidden_size": 10**9}, "hidden_size=1000000000 is absurdly large"),
    "huge but allowed model": ({"hidden_size": 65536, "num_layers": 64},
                               "the model it describes needs at least 1099512152064 bytes"),
}


@pytest.mark.parametrize("case", sorted(RECORD_CASES))
def test_absurd_run_record_never_builds_a_model(unfinished: Path, tmp_path: Path,
                                                no_model_built: list, case: str,
                                                capsys: pytest.CaptureFixture) -> None:
    run = shutil.copytree(unfinished, tmp_path / "run")
    record = checkpoint.loads(run / "checkpoints" / "run.json")
    edit, expected = RECORD_CASES[case]
    record["model"].update(edit)
    record["options"].update(edit)
    (run / "checkpoints" / "run.json").write_bytes(checkpoint.dumps(record))
    err = one_line_error(["fit", "--resume", str(run)], capsys)
    assert "run.json" in err and expected in err
    assert no_model_built == []


@pytest.mark.parametrize("text", ['{"position": NaN}', '{"a": Infinity}', "[", "\xff\xfe"])
def test_state_json_must_be_strict_json(unfinished: Path, tmp_path: Path, text: str) -> None:
    run = shutil.copytree(unfinished, tmp_path / "run")
    path = _all_checkpoints(run)[-1] / "state.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: not valid JSON")):
        read_checkpoint(path.parent)


# --- one case of each kind, from a real `python -m rnnkit` process ------------------------------
REAL = {  # case -> (the command, what the error says)
    "torch.save bomb as model.safetensors": ("forecast", LOAD_SLOTS["model.safetensors"]),
    "pickle bomb as checkpoint tensors, checksum matching": (
        "resume", RESUME_SLOTS["state.safetensors with a matching checksum"]),
    "a terabyte model in config.json": ("forecast", CONFIG_CASES["huge but allowed model"][1]),
}


@pytest.fixture(scope="module")
def real(saved: Path, unfinished: Path, work: Path) -> dict[str, tuple[Result, Path, dict]]:
    """Each case of REAL planted in its own copy of a run, plus a healthy forecast of ``saved``
    (the memory baseline), all run as processes in one batch: case -> (result, marker, the
    run folder's files before)."""
    planted: dict[str, tuple[Path, Path]] = {}
    for number, case in enumerate(REAL):
        folder = work / f"real-{number}"
        folder.mkdir()
        marker = folder / "exploded"
        command = REAL[case][0]
        run = shutil.copytree(saved if command == "forecast" else unfinished, folder / "run")
        if case.startswith("torch.save bomb"):
            (run / "model.safetensors").write_bytes(bomb_bytes("torch.save", marker))
        elif case.startswith("pickle bomb"):
            for ckpt in _all_checkpoints(run):
                rewrite(ckpt, tensors=bomb_bytes("pickle", marker))
        else:
            config = json.loads((run / "config.json").read_text())
            config["model"].update(CONFIG_CASES["huge but allowed model"][0])
            (run / "config.json").write_text(json.dumps(config))
        planted[case] = (run, marker)
    before = {case: files(run) for case, (run, _) in planted.items()}
    calls = [Call.of("forecast", run, "--steps", "2") if REAL[case][0] == "forecast"
             else Call.of("fit", "--resume", run) for case, (run, _) in planted.items()]
    *results, healthy = run_all([*calls, Call.of("forecast", saved, "--steps", "2")])
    succeeded(healthy)
    out = {case: (result, planted[case][1], before[case])
           for case, result in zip(REAL, results, strict=True)}
    out["healthy"] = (healthy, Path(), {})
    return out


@pytest.mark.parametrize("case", list(REAL))
def test_refused_by_a_real_process(real: dict, case: str) -> None:
    result, marker, before = real[case]
    run = Path(result.call.args[-1] if REAL[case][0] == "resume" else result.call.args[1])
    message = helpers_cli.one_line_error(result, 2)
    assert REAL[case][1] in message
    assert not marker.exists()  # the bomb never went off
    assert files(run) == before  # nothing written, nothing saved lost
    grown_mb = (result.maxrss_kib - real["healthy"][0].maxrss_kib) / 1024
    assert grown_mb < 64, f"peak memory {grown_mb:.0f} MB above a healthy forecast"
