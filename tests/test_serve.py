"""``rnnkit serve``: a real server process on a loopback port, talked to over HTTP (issue 14).

Answers must equal the library's (``Run.forecast``, ``Run.predict``, ``Run.stream``), every bad
request gets a 4xx with one line of JSON, the token is enforced, the tracked series survive a
graceful shutdown, and a kill -9 in the middle of updates never leaves a state file that does
not load (RELIABILITY.md rows 30 and 31).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import rnnkit
from tests.conftest import DATA_DIR, cli_env
from tests.helpers_panel import make_panel

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

TARGET = "flow_1e8_m3"
TOKEN = "s3cret-token"
START_TIMEOUT = 60.0


class Server:
    """``python -m rnnkit serve FOLDER ...`` on a free loopback port, its log in a file."""

    def __init__(self, folder: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.folder, self.port = folder, free_port()
        self.log = folder.parent / f"serve-{self.port}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rnnkit", "serve", str(folder), "--port",
                 str(self.port), *args], stdout=log, stderr=subprocess.STDOUT,
                env=cli_env(env))
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=self.url, timeout=30)
        self.wait()

    def wait(self) -> None:
        end = time.monotonic() + START_TIMEOUT
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.text()}")
            try:
                if self.client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.kill()
        raise AssertionError(f"server did not answer /health in {START_TIMEOUT} s")

    def post(self, path: str, body: object, **kw: object) -> httpx.Response:
        return self.client.post(path, json=body, **kw)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.client.close()
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)

    def kill(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def nile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    folder = tmp_path_factory.mktemp("serve") / "nile"
    rnnkit.fit(DATA_DIR / "nile_yearly.csv", target=TARGET, epochs=2, quiet=True, out=folder)
    values = pd.read_csv(DATA_DIR / "nile_yearly.csv")[TARGET].astype(float).tolist()
    return folder, values


@pytest.fixture(scope="module")
def server(nile: tuple[Path, list[float]]) -> Iterator[Server]:
    s = Server(nile[0], "--save-every", "1000")
    yield s
    s.kill()


def copy_of(folder: Path, name: str) -> Path:
    out = folder.parent / name
    shutil.copytree(folder, out, ignore=shutil.ignore_patterns("serve_state.json*", ".lock"))
    return out


def frame(values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({TARGET: values})


def assert_columns(got: dict, expected: pd.DataFrame, point: str, name: str = TARGET) -> None:
    """The JSON columns equal the library's frame, number for number."""
    assert got[point] == expected[name].tolist()
    for level in (80, 95):
        for side in ("lo", "hi"):
            assert got[f"{side}{level}"] == expected[f"{name}_{side}{level}"].tolist()


# --- answers equal the library's ---------------------------------------------------------------
def test_health_and_model_describe_the_run(server: Server, nile: tuple[Path, list[float]]):
    assert server.client.get("/health").json() == {"status": "ok"}
    model = server.client.get("/model").json()
    config = json.loads((nile[0] / "config.json").read_text())
    assert model["kind"] == "series" and model["targets"] == [TARGET]
    assert model["levels"] == [80, 95] and model["intervals"] == "adaptive"
    assert model["window"] == config["pipeline"]["window"]
    assert model["history_rows"] == {"forecast": model["window"], "predict": model["window"] + 1}
    assert model["config"]["pipeline"] == config["pipeline"]
    assert model["metrics"]["model"] == json.loads((nile[0] / "metrics.json").read_text())["model"]


def test_forecast_equals_the_run_forecast_with_and_without_history(
        server: Server, nile: tuple[Path, list[float]]):
    folder, values = nile
    run = rnnkit.load(folder)
    got = server.post("/forecast", {"steps": 5}).json()
    expected = run.forecast(5)
    assert got["index"] == [t.isoformat() for t in expected.index]
    assert_columns(got, expected, "forecast")
    history = values[:60]
    got = server.post("/forecast", {"steps": 4, "history": history}).json()
    assert got["index"] == [60, 61, 62, 63]
    assert_columns(got, run.forecast(4, data=frame(history)), "forecast")
    as_columns = server.post("/forecast", {"steps": 4, "history": {TARGET: history}}).json()
    assert as_columns == got


def test_predict_equals_the_run_predict(server: Server, nile: tuple[Path, list[float]]):
    folder, values = nile
    got = server.post("/predict", {"history": values[:30]}).json()
    expected = rnnkit.load(folder).predict(frame(values[:30]))
    assert got["index"] == expected.index.tolist()
    assert_columns(got, expected, "prediction")


def test_update_then_forecast_by_series_equals_a_local_stream(
        server: Server, nile: tuple[Path, list[float]]):
    folder, values = nile
    run = rnnkit.load(folder)
    stream = run.stream()
    for chunk in (values[:7], values[7:40], values[40:45]):
        got = server.post("/update", {"series": "gauge-1", "values": chunk}).json()
        for v in chunk:
            nxt = stream.update(v)
    assert got == {"series": "gauge-1", "seen": 45, "next": float(nxt[0])}
    fc = server.post("/forecast", {"series": "gauge-1", "steps": 3}).json()
    assert fc["index"] == [45, 46, 47]
    assert_columns(fc, run.forecast(3, data=frame(values[:45])), "forecast")
    assert fc["forecast"][0] == got["next"]
    pred = server.post("/predict", {"series": "gauge-1"}).json()
    assert_columns(pred, run.predict(frame(values[:45])), "prediction")


def test_concurrent_forecasts_all_succeed_with_identical_answers(server: Server):
    answers: list[tuple[int, str]] = []

    def client() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            for _ in range(25):
                r = c.post("/forecast", json={"steps": 6})
                answers.append((r.status_code, r.text))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 200
    assert {status for status, _ in answers} == {200}
    assert len({text for _, text in answers}) == 1


# --- refusals ----------------------------------------------------------------------------------
BAD = [  # (what, path, body: bytes or JSON, status, a phrase of the message)
    ("not JSON", "/forecast", b"{steps: 3", 400, "malformed JSON at line 1"),
    ("empty body", "/forecast", b"", 400, "empty request body"),
    ("nested too deeply", "/forecast", b"[" * 100_000, 400, "nested too deeply"),
    ("not UTF-8", "/forecast", b'{"steps": "\xff"}', 400, "not UTF-8"),
    ("a list", "/forecast", [1, 2], 422, "request body is a JSON list"),
    ("unknown field", "/forecast", {"stpes": 3}, 422, "Did you mean 'steps'?"),
    ("no steps", "/forecast", {}, 422, "steps is missing"),
    ("steps 0", "/forecast", {"steps": 0}, 422, "steps=0 must be at least 1"),
    ("steps huge", "/forecast", {"steps": 10**12}, 422, "more than 10000"),
    ("steps text", "/forecast", {"steps": "3"}, 422, "not a whole number"),
    ("steps bool", "/forecast", {"steps": True}, 422, "not a whole number"),
    ("short history", "/forecast", {"steps": 2, "history": [1.0, 2.0, 3.0]}, 422,
     "forecast needs at least 16 past values, got 3"),
    ("short for predict", "/predict", {"history": [1.0] * 16}, 422,
     "predict needs at least 17 rows"),
    ("NaN", "/forecast", b'{"steps": 2, "history": [1, NaN, 3]}', 422, "history[1] is NaN"),
    ("infinity", "/forecast", b'{"steps": 2, "history": [1, -Infinity]}', 422,
     "history[1] is -Infinity"),
    ("overflow", "/forecast", b'{"steps": 2, "history": [1, 1e400]}', 422,
     "history[1] is Infinity"),
    ("beyond float32", "/predict", {"history": [1.0, 1e39]}, 422, "beyond float32 range"),
    ("a string", "/forecast", {"steps": 2, "history": [1, "2", 3]}, 422,
     "history[1] is \"2\", which is not a number"),
    ("null", "/predict", {"history": [1, None]}, 422, "history[1] is null"),
    ("a bool", "/update", {"series": "a", "values": [1, True]}, 422,
     "values[1] is true, which is not a number"),
    ("empty history", "/predict", {"history": []}, 422, "non-empty list of numbers"),
    ("text in a column", "/predict", {"history": {TARGET: [1.0] * 20 + ["abc"]}}, 422,
     f"history: column '{TARGET}' row 21 has 'abc'"),
    ("ragged columns", "/predict", {"history": {TARGET: [1.0, 2.0], "x": [1.0]}}, 422,
     "history columns differ in length"),
    ("wrong column", "/predict", {"history": {"flow": [1.0] * 20}}, 422,
     f"column '{TARGET}' not found in history"),
    ("history and series", "/forecast", {"steps": 1, "history": [1.0], "series": "a"}, 422,
     "send history or series, not both"),
    ("no history", "/predict", {}, 422, "history is missing"),
    ("unknown series", "/forecast", {"steps": 1, "series": "nobody"}, 404,
     "series 'nobody' is not tracked"),
    ("series not text", "/update", {"series": 7, "values": [1.0]}, 422, "series=7"),
    ("no values", "/update", {"series": "a"}, 422, "values is missing"),
    ("too many values", "/update", {"series": "a", "values": [1.0] * 10_001}, 422,
     "more than the 10000"),
    ("too large", "/update", {"series": "a", "values": [1.0] * 400_000}, 413,
     "request body over 1,000,000 bytes"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_a_bad_request_gets_a_4xx_and_one_line(server: Server, case: tuple):
    _, path, body, status, phrase = case
    if isinstance(body, bytes):
        r = server.client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        r = server.post(path, body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert list(r.json()) == ["error"]
    message = r.json()["error"]
    assert phrase in message
    assert "\n" not in message and "Traceback" not in r.text


def test_a_body_too_large_without_a_declared_length_is_cut_off(server: Server):
    def chunks() -> Iterator[bytes]:  # chunked transfer: no Content-Length to refuse early
        yield b'{"series": "big", "values": ['
        for _ in range(300):
            yield b"1.0," * 1000
        yield b"1.0]}"

    r = server.client.post("/update", content=chunks())
    assert r.status_code == 413 and "request body over" in r.json()["error"]


def test_an_unexpected_error_is_a_500_in_one_line(nile: tuple[Path, list[float]]):
    from rnnkit.serving import create_app

    run = rnnkit.load(nile[0])
    app = create_app(run)
    del run.config["tail"]  # a run broken behind the server's back: a bug, not bad input

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as c:
            return await c.post("/forecast", json={"steps": 2})

    r = asyncio.run(ask())
    assert r.status_code == 500
    assert r.json() == {"error": "internal error: KeyError: 'tail' (see the server log; set "
                                 "RNNKIT_DEBUG=1 for the traceback)."}


def test_unknown_paths_and_methods_answer_in_json(server: Server):
    r = server.client.get("/nowhere")
    assert r.status_code == 404 and "no endpoint GET /nowhere" in r.json()["error"]
    r = server.client.get("/forecast")
    assert r.status_code == 405 and "GET is not allowed on /forecast" in r.json()["error"]
    assert "Traceback" not in r.text


def test_the_server_listens_on_loopback_only_by_default(server: Server):
    assert f"Uvicorn running on http://127.0.0.1:{server.port}" in server.text()
    table = Path("/proc/net/tcp")
    if table.exists():  # Linux: the listening socket's own address, 0100007F = 127.0.0.1
        listening = [line.split()[1] for line in table.read_text().splitlines()[1:]
                     if line.split()[3] == "0A"]
        assert f"0100007F:{server.port:04X}" in listening
        assert f"00000000:{server.port:04X}" not in listening


# --- the token ---------------------------------------------------------------------------------
def test_the_token_is_required_everywhere_but_health(nile: tuple[Path, list[float]]):
    # --token wins over the environment's token (which keeps it out of ps)
    s = Server(nile[0], "--token", TOKEN, env={"RNNKIT_SERVE_TOKEN": "from-env"})
    try:
        assert s.client.get("/health").status_code == 200
        right = {"Authorization": f"Bearer {TOKEN}"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                        {"Authorization": "Bearer from-env"},
                        {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": f"Bearer {TOKEN}x"}):
            for r in (s.client.get("/model", headers=headers),
                      s.post("/forecast", {"steps": 1}, headers=headers),
                      s.client.get("/nowhere", headers=headers)):
                assert r.status_code == 401, (headers, r.text)
                assert "token" in r.json()["error"] and "Traceback" not in r.text
                assert r.headers["www-authenticate"] == "Bearer"
        assert s.client.get("/model", headers=right).status_code == 200
        assert s.post("/forecast", {"steps": 1}, headers=right).status_code == 200
        assert s.client.get("/nowhere", headers=right).status_code == 404
    finally:
        s.kill()
    assert TOKEN not in s.text()  # the token is never logged


# --- the state file ----------------------------------------------------------------------------
def test_a_graceful_shutdown_keeps_the_tracked_series(nile: tuple[Path, list[float]]):
    folder, values = nile
    folder = copy_of(folder, "graceful")
    run = rnnkit.load(folder)
    s = Server(folder, "--save-every", "1000")
    s.post("/update", {"series": "a", "values": values[:50]})
    before = s.post("/forecast", {"series": "a", "steps": 3}).json()
    # uvicorn shuts down gracefully, then ends by the signal it caught, as the shell expects
    assert s.stop(signal.SIGTERM) in (-signal.SIGTERM, 128 + signal.SIGTERM)
    saved = json.loads((folder / "serve_state.json").read_text())
    assert saved["format_version"] == 1 and saved["series"]["a"]["seen"] == 50
    s = Server(folder, "--save-every", "1000")
    assert s.client.get("/model").json()["tracked_series"] == 1
    assert s.post("/forecast", {"series": "a", "steps": 3}).json() == before
    nxt = s.post("/update", {"series": "a", "values": values[50:70]}).json()["next"]
    assert s.stop(signal.SIGINT) == 0  # uvicorn ends a Ctrl-C quietly
    s = Server(folder, "--save-every", "1000")
    try:
        stream = run.stream()
        expected = [stream.update(v)[0] for v in values[:70]][-1]
        assert nxt == expected
        got = s.post("/forecast", {"series": "a", "steps": 3}).json()
        assert_columns(got, run.forecast(3, data=frame(values[:70])), "forecast")
    finally:
        s.kill()


def test_kill_9_during_updates_never_leaves_a_state_file_that_fails_to_load(
        nile: tuple[Path, list[float]]):
    folder, values = nile
    folder = copy_of(folder, "killed")
    s = Server(folder, "--save-every", "0", "--quiet")  # written after every update
    landed = False  # a kill cut a write short (its temp file left, never published)
    for _ in range(4):
        # aimed at a write (while a temp file exists) until one is cut short, then at random
        aimed = not landed
        s, cut = kill_and_restart(s, values, aimed)
        landed = landed or (aimed and cut)
        if landed and not aimed:
            break
    s.kill()
    assert landed


def kill_and_restart(s: Server, values: list[float], aimed: bool) -> tuple[Server, bool]:
    """SIGKILL ``s`` in a burst of updates; check its state file and that a new server on
    the same folder takes it. Returns the new server and whether the kill left a temp file."""
    folder, state = s.folder, s.folder / "serve_state.json"
    done = burst(s, values, after=50, series=40)
    if aimed:
        assert wait_for(lambda: any(folder.glob(".serve_state.json.*.tmp")))
    s.kill()
    done.wait(timeout=30)
    leftovers = bool(list(folder.glob(".serve_state.json.*.tmp")))
    saved = json.loads(state.read_text())  # written after each of the updates answered
    assert saved["format_version"] == 1 and len(saved["series"]) == 40
    s = Server(folder, "--save-every", "0", "--quiet")
    assert "ignored" not in s.text() and not (folder / "serve_state.json.bad").exists()
    assert s.client.get("/model").json()["tracked_series"] == 40
    assert s.post("/forecast", {"series": "s0", "steps": 2}).status_code == 200
    assert not list(folder.glob(".serve_state.json.*.tmp"))  # leftovers cleared at start
    return s, leftovers


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
    return False


def burst(s: Server, values: list[float], after: int, series: int = 2) -> threading.Event:
    """Post updates to ``series`` series from a thread until the server dies; the event is
    set once ``after`` updates have been answered (and again when the thread ends)."""
    ready, finished = threading.Event(), threading.Event()

    def loop() -> None:
        with httpx.Client(base_url=s.url, timeout=10) as c:
            for i in range(100_000):
                try:
                    c.post("/update", json={"series": f"s{i % series}",
                                            "values": values[i % 50:][:20]})
                except httpx.TransportError:
                    break
                if i == after:
                    ready.set()
        ready.set()
        finished.set()

    threading.Thread(target=loop, daemon=True).start()
    ready.wait(timeout=60)
    return finished


def test_a_corrupt_state_file_is_moved_aside_not_fatal(nile: tuple[Path, list[float]]):
    from rnnkit.serving import create_app
    from rnnkit.serving.state import fingerprint

    folder = copy_of(nile[0], "corrupt")
    state, aside = folder / "serve_state.json", folder / "serve_state.json.bad"
    torn = '{"format_version": 1, "fingerp'  # a torn write, as no atomic publish leaves
    state.write_text(torn)
    s = Server(folder)
    try:
        assert s.client.get("/model").json()["tracked_series"] == 0
        assert "ignored" in s.text() and "moved it to serve_state.json.bad" in s.text()
    finally:
        s.kill()
    assert aside.read_text() == torn and not state.exists()

    mark = fingerprint(rnnkit.load(folder))

    def saved(recent: list, buffer: list, mark: str = mark, version: int = 1) -> str:
        return json.dumps({"format_version": version, "fingerprint": mark, "series": {"a": {
            "seen": 20, "recent": recent,
            "stream": {"state": None, "last": None, "buffer": buffer}}}})

    def row(values: list, dtype: str = "float64") -> dict:
        return {"array": values, "shape": [len(values)], "dtype": dtype}

    state.write_text(saved([[1.0]] * 20, [row([1.0])] * 16))
    create_app(folder)  # a good file loads and stays
    assert state.exists()
    for text in (saved([[1.0]] * 20, [row([1.0])] * 16, mark="other weights"),
                 saved([[1.0]] * 20, [row([1.0])] * 16, version=2),  # a newer release's
                 saved([[1.0, 2.0]], []),  # two columns for a run of one
                 saved([[1.0]] * 20, [row([1.0, 2.0, 3.0])] * 16),  # a buffer that cannot be
                 saved([[1.0]] * 20, [row([1.0], "int8")]),
                 saved([[1.0]] * 20, [row([1.0])] * 17),  # more than the window
                 "\x00" * 64, "[]"):
        state.write_text(text)
        create_app(folder)  # reads the state file and refuses it, without raising
        assert aside.read_text() == text and not state.exists()


def test_serve_refuses_a_missing_run_folder_in_one_line(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "rnnkit", "serve", str(tmp_path / "none")],
                          capture_output=True, text=True, env=cli_env(), timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "not a run folder" in proc.stderr


# --- panels ------------------------------------------------------------------------------------
def test_a_panel_forecast_comes_back_in_long_format(tmp_path: Path):
    df = make_panel(3, 60)
    folder = tmp_path / "panel"
    run = rnnkit.fit(df, window=12, epochs=2, quiet=True, out=folder)
    s = Server(folder)
    try:
        got = s.post("/forecast", {"steps": 2}).json()
        expected = run.forecast(2)
        assert got["unique_id"] == expected["unique_id"].tolist()
        assert got["ds"] == [t.isoformat() for t in expected["ds"]]
        assert_columns(got, expected, "forecast", "y")
        recent = df.groupby("unique_id").tail(30)
        history = {"unique_id": recent.unique_id.tolist(),
                   "ds": [t.date().isoformat() for t in recent.ds], "y": recent.y.tolist()}
        got = s.post("/forecast", {"steps": 2, "history": history}).json()
        assert_columns(got, run.forecast(2, data=recent), "forecast", "y")
        r = s.post("/forecast", {"steps": 2, "history": [1.0] * 20})
        assert r.status_code == 422 and '"unique_id": [...]' in r.json()["error"]
    finally:
        s.kill()


def test_a_panel_series_is_tracked_from_its_end_and_kept_across_a_restart(tmp_path: Path):
    """/update feeds one of the panel's series past the end of the fitted data; /forecast by
    that series then equals the run's forecast of the table with those rows appended, and the
    tracked state is written on shutdown and read back by the next server."""
    df = make_panel(3, 60)
    folder = tmp_path / "panel"
    run = rnnkit.fit(df, window=12, epochs=2, quiet=True, out=folder)
    new = [950.0, 1010.0, 990.0, 1020.0]
    stream = run.stream(series="s0001")
    expected_next = [float(stream.update(v)[0]) for v in new]
    s = Server(folder)
    try:
        untouched = s.post("/forecast", {"series": "s0002", "steps": 3}).json()
        alone = run.forecast(3)
        alone = alone[alone.unique_id == "s0002"]
        assert untouched["forecast"] == alone["y"].tolist()
        assert untouched["ds"] == [t.isoformat() for t in alone["ds"]]
        nexts = [s.post("/update", {"series": "s0001", "values": [v]}).json()["next"]
                 for v in new]
        assert nexts == pytest.approx(expected_next, rel=1e-9)
        got = s.post("/forecast", {"series": "s0001", "steps": 3}).json()
        r = s.post("/update", {"series": "s0009", "values": [1.0]})
        assert r.status_code == 404 and "s0009" in r.json()["error"]
        assert s.stop() in (-signal.SIGTERM, 128 + signal.SIGTERM)
    finally:
        s.kill()
    own = df[df.unique_id == "s0001"]
    appended = pd.concat([own, pd.DataFrame({
        "unique_id": "s0001", "y": new,
        "ds": pd.date_range(own.ds.max(), periods=len(new) + 1, freq="MS")[1:]})])
    expected = run.forecast(3, data=appended)
    assert got["unique_id"] == ["s0001"] * 3
    assert got["ds"] == [t.isoformat() for t in expected["ds"]]
    assert got["forecast"] == pytest.approx(expected["y"].tolist(), rel=1e-9)
    again = Server(folder)
    try:
        assert again.post("/forecast", {"series": "s0001", "steps": 3}).json() == got
    finally:
        again.kill()


# --- a run with calendar features --------------------------------------------------------------
def test_a_calendar_run_dates_tracked_values_and_wants_dates_with_a_history(tmp_path: Path):
    """Each value fed to /update is dated one day after the one before, from the end of the
    fitted data, so its calendar features are right; a history sent without its dates is
    refused in one line."""
    days = pd.date_range("2020-01-01", periods=400, freq="D")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"ds": days, "y": 10 + 4 * (days.day_of_week >= 5)
                       + rng.normal(size=400)})
    folder = tmp_path / "weekly"
    run = rnnkit.fit(df, target="y", window=3, calendar="weekday", epochs=3, quiet=True,
                     out=folder)
    new = [11.0, 14.5, 13.9, 10.2]
    s = Server(folder)
    try:
        nexts = s.post("/update", {"series": "shop", "values": new}).json()
        got = s.post("/forecast", {"series": "shop", "steps": 3}).json()
        r = s.post("/forecast", {"steps": 3, "history": new * 2})
        assert r.status_code == 422 and "needs its dates" in r.json()["error"]
    finally:
        s.kill()
    appended = pd.DataFrame({"ds": pd.date_range("2021-02-04", periods=4, freq="D"), "y": new})
    expected = run.forecast(3, data=appended)
    assert got["index"] == [t.isoformat() for t in expected.index]
    assert got["forecast"] == pytest.approx(expected["y"].tolist(), rel=1e-9)
    stream = run.stream()
    assert nexts["next"] == pytest.approx(float([stream.update(v) for v in new][-1][0]))


def test_a_run_with_future_features_takes_their_coming_values_in_the_body(tmp_path: Path):
    days = pd.date_range("2021-01-01", periods=300, freq="D")
    rng = np.random.default_rng(1)
    promo = (rng.random(306) < 0.2).astype(float)
    df = pd.DataFrame({"ds": days, "y": 20 + 5 * promo[:300] + rng.normal(size=300),
                       "promo": promo[:300]})
    folder = tmp_path / "sales"
    run = rnnkit.fit(df, target="y", future_features=["promo"], calendar="none", epochs=3,
                     quiet=True, out=folder)
    plan = {"ds": [d.date().isoformat() for d in pd.date_range("2021-10-28", periods=6)],
            "promo": promo[300:].tolist()}
    s = Server(folder)
    try:
        got = s.post("/forecast", {"steps": 6, "future": plan}).json()
        missing = s.post("/forecast", {"steps": 6})
        short = s.post("/forecast", {"steps": 6, "future": {k: v[:3] for k, v in plan.items()}})
    finally:
        s.kill()
    expected = run.forecast(6, future=pd.DataFrame(plan))
    assert got["forecast"] == pytest.approx(expected["y"].tolist(), rel=1e-9)
    assert missing.status_code == 422 and "future features ['promo']" in missing.json()["error"]
    assert short.status_code == 422
    assert short.json()["error"].startswith("future: no row for date 2021-10-31")


def test_update_takes_the_future_features_coming_values_and_keeps_them_across_a_restart(
        tmp_path: Path):
    """Each /update sends the promotions of the rows after its values (the first also its
    first value's own); the answers equal a local stream's, a forecast by series equals the
    run's forecast of the table with those rows, missing values are a 422 in one line, and
    the values ahead the stream kept survive a restart."""
    days = pd.date_range("2021-01-01", periods=310, freq="D")
    rng = np.random.default_rng(1)
    promo = (rng.random(310) < 0.2).astype(float)
    y = (20 + 5 * promo + rng.normal(size=310)).astype(np.float32).astype(float)
    df = pd.DataFrame({"ds": days, "y": y, "promo": promo})
    folder = tmp_path / "sales"
    run = rnnkit.fit(df.iloc[:300], target="y", future_features=["promo"], calendar="none",
                     window=4, epochs=2, quiet=True, seed=0, out=folder)
    new, plan = y[300:].tolist(), promo[300:].tolist()
    stream = run.stream()
    local = [float(stream.update(v, future={"promo": plan[j + int(j > 0) : j + 2]})[0])
             for j, v in enumerate(new[:6])]
    s = Server(folder)
    try:
        first = s.post("/update", {"series": "shop", "values": new[:4], "future":
                                   {"promo": plan[:5]}}).json()  # 4 values + own + 1 ahead
        missing = s.post("/update", {"series": "shop", "values": new[4:5]})
        short = s.post("/update", {"series": "shop", "values": new[4:5], "future":
                                   {"promo": plan[5:7]}})
        second = s.post("/update", {"series": "shop", "values": new[4:5], "future":
                                    {"promo": plan[5:6]}}).json()
        ahead = {"ds": [d.date().isoformat() for d in days[305:307]], "promo": plan[5:7]}
        fc = s.post("/forecast", {"series": "shop", "steps": 2, "future": ahead}).json()
        assert s.stop() in (-signal.SIGTERM, 128 + signal.SIGTERM)
    finally:
        s.kill()
    assert first == {"series": "shop", "seen": 4, "next": local[3]}
    assert second["next"] == local[4]
    assert missing.status_code == 422 and missing.json()["error"] == (
        "future is missing; this value needs 1 coming value of each future feature (promo), in "
        "order: the row after each value.")
    assert short.status_code == 422 and short.json()["error"].startswith(
        "future['promo'] has 2 values; this value needs 1")
    expected = run.forecast(2, data=df.iloc[300:305], future=pd.DataFrame(ahead))
    assert fc.get("index") == [t.isoformat() for t in expected.index], fc
    assert fc["forecast"] == pytest.approx(expected["y"].tolist(), rel=1e-9)
    assert fc["forecast"][0] == second["next"]
    again = Server(folder)
    try:  # the restarted server knows row 305's promotion from the update before the stop
        third = again.post("/update", {"series": "shop", "values": new[5:6], "future":
                                       {"promo": plan[6:7]}}).json()
    finally:
        again.kill()
    assert third == {"series": "shop", "seen": 6, "next": local[5]}


def test_a_panel_series_with_future_features_is_updated_with_their_values(tmp_path: Path):
    from tests.test_panel_covariates import promo_panel

    data, plan = promo_panel(4, 120, 5)
    folder = tmp_path / "shops"
    run = rnnkit.fit(data, future_features=["promo"], calendar="none", window=5, epochs=2,
                     quiet=True, seed=0, out=folder)
    sid, ahead = "shop01", plan[plan.unique_id == "shop01"].reset_index(drop=True)
    new = [float(v) for v in data[data.unique_id == sid].y.iloc[-2:] * 1.02]
    stream = run.stream(series=sid)
    local = [float(stream.update(new[0], future={"promo": ahead.promo[:2].tolist()})[0]),
             float(stream.update(new[1], future={"promo": ahead.promo[2:3].tolist()})[0])]
    s = Server(folder)
    try:
        got = s.post("/update", {"series": sid, "values": new,
                                 "future": {"promo": ahead.promo[:3].tolist()}}).json()
        later = {"unique_id": [sid] * 2, "ds": [d.date().isoformat() for d in ahead.ds[2:4]],
                 "promo": ahead.promo[2:4].tolist()}
        fc = s.post("/forecast", {"series": sid, "steps": 2, "future": later}).json()
        wrong = s.post("/update", {"series": sid, "values": [1.0], "future": {"promos": [1]}})
        assert s.stop() in (-signal.SIGTERM, 128 + signal.SIGTERM)
    finally:
        s.kill()
    again = Server(folder)
    try:
        assert again.post("/forecast", {"series": sid, "steps": 2, "future": later}).json() == fc
        assert "ignored" not in again.text()  # the state file loaded
    finally:
        again.kill()
    assert got["next"] == pytest.approx(local[1], rel=1e-9)
    rows = pd.concat([data[data.unique_id == sid], pd.DataFrame(
        {"unique_id": sid, "ds": ahead.ds[:2], "y": new, "promo": ahead.promo[:2]})])
    expected = run.forecast(2, data=rows, future=pd.DataFrame(later))
    assert fc["forecast"] == pytest.approx(expected["y"].tolist(), rel=1e-9)
    assert wrong.status_code == 422 and wrong.json()["error"].startswith(
        "future['promos'] is not a future feature of the run; send 'promo' only")
