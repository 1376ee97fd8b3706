"""report.html: one self-contained page per run folder (checked by parsing, and in Chromium)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import rnnkit


class Page(HTMLParser):
    """Collects what the tests look at: tags, image sources, every link-like attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.imgs: list[str] = []
        self.links: list[str] = []
        self.classes: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        d = dict(attrs)
        if tag == "img":
            self.imgs.append(d.get("src") or "")
        self.links += [v for k, v in attrs if k in ("src", "href", "action") and v]
        self.classes += (d.get("class") or "").split()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def series_folder(tmp_path_factory):
    y = 10 + np.sin(2 * np.pi * np.arange(300) / 20)
    folder = tmp_path_factory.mktemp("series")
    rnnkit.fit(y, window=20, hidden_size=4, epochs=3, transform="none", quiet=True, out=folder)
    return folder


@pytest.fixture(scope="module")
def adder_folder(tmp_path_factory):
    rng = np.random.default_rng(7)
    seqs = [rng.integers(1, 11, size=int(rng.integers(2, 8))).astype(float) for _ in range(200)]
    folder = tmp_path_factory.mktemp("adder")
    rnnkit.fit(seqs, target=[s.sum() for s in seqs], cell="rnn", activation="tanh",
               hidden_size=1, scaler="none", epochs=10, lr=3e-2, quiet=True, out=folder)
    return folder


def test_report_is_self_contained(series_folder):
    path = series_folder / "report.html"
    page = parse(path)
    raw = path.read_text(encoding="utf-8")
    assert "table" in page.tags and "metrics" in page.classes
    pngs = sorted(series_folder.glob("*.png"))
    names = {p.name for p in pngs}
    assert {"loss.png", "predictions.png", "residuals.png", "forecast.png",
            "backtest.png"} <= names
    assert len(page.imgs) == len(pngs)
    for src in page.imgs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(link.startswith("data:") for link in page.links)
    assert not re.search(r"https?://", raw)  # nothing to fetch, ever
    assert "script" not in page.tags and "link" not in page.tags
    text = " ".join(page.text)
    for word in ("Doctor", "RMSE", "last value", "Rolling-origin backtest", "Configuration"):
        assert word in text
    assert "verdict" in page.classes  # the sentence, then the test behind it
    assert "Diebold-Mariano test of the model against the" in text and "test points" in text


def test_report_shows_the_findings(adder_folder):
    page = parse(adder_folder / "report.html")
    assert "finding" in page.classes and "error" in page.classes
    assert "saturation" in " ".join(page.text)


def test_report_without_findings_says_so(tmp_path):
    from rnnkit.html_report import render

    y = 10 + np.sin(2 * np.pi * np.arange(200) / 20)
    run = rnnkit.fit(y, window=20, hidden_size=4, epochs=1, transform="none", quiet=True)
    run.findings = []
    html = render(run, tmp_path)
    assert "No problems found" in html and "<img" not in html  # an empty folder: no plots


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_report_opens_in_chromium(series_folder, tmp_path):
    path = (series_folder / "report.html").resolve()
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
           path.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert '<table class="metrics">' in dom
    assert dom.count('src="data:image/png;base64,') == len(list(series_folder.glob("*.png")))
    assert "rnnkit run:" in dom
