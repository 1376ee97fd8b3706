"""``report.html``: one self-contained page per run folder.

The page holds the verdict, the doctor's findings, the metrics table with the baselines, the
rolling-origin backtest (series), the problem's own figures, the configuration and every plot
of the folder. Images are embedded as base64 data URIs and the CSS is inline: the file opens
from anywhere, offline, and never fetches anything.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from rnnkit.evaluate import learned
from rnnkit.evaluate.backtest import shown_steps
from rnnkit.evaluate.findings.base import Finding, fmt
from rnnkit.evaluate.metrics import METRICS
from rnnkit.evaluate.scoring import significance_note, verdict
from rnnkit.persist import atomic_write_bytes

# Known plots, in the order a reader wants them, with what to look for in each.
CAPTIONS = {
    "loss.png": "Training and validation loss per epoch (the dashed line is the epoch kept) "
                "and the mean gradient norm.",
    "predictions.png": "Predictions on held-out data against the truth, with the strongest "
                       "baseline beside the model.",
    "residuals.png": "Residuals: what the model gets wrong, next to the baselines.",
    "forecast.png": "Forecast past the end of the data, with the history before it.",
    "panel_series.png": "A few series of the panel: truth and the global model's one-step "
                        "forecasts on each series' held-out rows.",
    "covariates.png": "The covariates under the target on the held-out rows, and how much "
                      "the held-out RMSE rises when each one is shuffled (the doctor's "
                      "check): a covariate that costs nothing when shuffled adds nothing.",
    "backtest.png": "Rolling-origin backtest: multi-step forecasts from several origins.",
    "continuations.png": "Generated continuations of held-out sequences against the truth.",
    "priming_curve.png": "Priming: error at each step after a fresh (zero) state.",
    "priming.png": "Predictions at the start of an unseen range, primed and unprimed.",
    "doubled_test.png": "The adder on a doubled test set (values 2..20, sums beyond any seen "
                        "in training): predicted vs true sum.",
}

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px
solid #ddd;padding-bottom:.2em}.sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#f4f4f4}
tr.model td{background:#eef4fb;font-weight:600}td.best{color:#0a6b2d;font-weight:700}
.verdict{font-size:1.05em;padding:.6em .8em;background:#f7f7f7;border-left:4px solid #888}
.finding{margin:.4em 0;padding:.5em .8em;border-left:4px solid #888;background:#fafafa}
.finding.error{border-color:#c62828;background:#fdecea}
.finding.warning{border-color:#ef8f00;background:#fff6e5}
.finding.info{border-color:#1e6fb8;background:#eef4fb}
.sev{font-weight:700;text-transform:uppercase;font-size:.8em;margin-right:.5em}
.code{font-family:monospace;font-weight:600}.ev{color:#555;font-size:.85em;margin-top:.2em}
.fix{margin-top:.2em}.ok{color:#0a6b2d;font-weight:600}
figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}.cfg{display:flex;gap:1.5em;flex-wrap:wrap}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else _e(v)


def _metrics_table(metrics: dict) -> str:
    rows = [("model", metrics.get("model") or {}),
            *list((metrics.get("baselines") or {}).items())]
    best = {}
    for m in METRICS:
        vals = [r.get(m) for _, r in rows if isinstance(r.get(m), int | float)
                and not math.isnan(r.get(m))]
        best[m] = min(vals) if vals else None
    head = "".join(f"<th>{m.upper()}</th>" for m in METRICS)
    body = []
    for name, r in rows:
        cells = "".join(
            f"<td{' class=best' if r.get(m) is not None and r.get(m) == best[m] else ''}>"
            f"{_num(r.get(m))}</td>" for m in METRICS)
        cls = ' class="model"' if name == "model" else ""
        body.append(f"<tr{cls}><td>{_e(name)}</td>{cells}</tr>")
    return (f'<table class="metrics"><thead><tr><th></th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _findings(findings: list[Finding]) -> str:
    if not findings:
        return '<p class="ok">No problems found: no check failed.</p>'
    out = []
    for f in findings:
        ev = ", ".join(f"{_e(k)} = {_e(fmt(v))}" for k, v in f.evidence.items())
        out.append(f'<div class="finding {_e(f.severity)}"><span class="sev">{_e(f.severity)}'
                   f'</span><span class="code">{_e(f.code)}</span>: {_e(f.message)}'
                   + (f'<div class="ev">evidence: {ev}</div>' if ev else "")
                   + (f'<div class="fix">&rarr; {_e(f.fix)}</div>' if f.fix else "") + "</div>")
    return "\n".join(out)


def _interval_table(metrics: dict) -> str:
    """Coverage, mean width and interval score of each level, the model's next to the naive
    last-value interval's."""
    head = "<tr><th>level</th><th>forecaster</th><th>coverage</th><th>mean width</th>" \
           "<th>interval score</th></tr>"
    rows = "".join(f"<tr><td>{_e(level)}%</td><td>{_e(name)}</td>"
                   f"<td>{100 * s['coverage']:.1f}%</td><td>{_e(fmt(s['width']))}</td>"
                   f"<td>{_e(fmt(s['winkler']))}</td></tr>"
                   for level, row in metrics["intervals"].items() for name, s in row.items())
    return f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>"


def _kv_table(title: str, d: dict) -> str:
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(_plain(v))}</td></tr>" for k, v in d.items())
    return f'<table><thead><tr><th colspan="2">{_e(title)}</th></tr></thead>' \
           f"<tbody>{rows}</tbody></table>"


def _plain(v: Any) -> str:
    if isinstance(v, float):
        return fmt(v)
    if isinstance(v, list):
        return ", ".join(_plain(x) for x in v)
    return str(v)


def _extras(metrics: dict) -> dict:
    """Problem-specific scalar figures (the demos add them) worth a row each."""
    skip = {"model", "baselines", "split", "findings", "backtest", "intervals",
            "probabilistic"}
    return {k: v for k, v in metrics.items()
            if k not in skip and isinstance(v, int | float | str) and not isinstance(v, bool)}


def _backtest_table(bt: Any) -> str:
    names = list(bt.per_step)
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    rows = []
    shown = [(str(h), [bt.per_step[n][h - 1]["rmse"] for n in names])
             for h in shown_steps(bt.steps)]
    for label, vals in [*shown, ("all", [bt.overall[n]["rmse"] for n in names])]:
        good = [v for v in vals if v is not None and not math.isnan(v)]
        low = min(good) if good else None
        cells = "".join(f"<td{' class=best' if v == low else ''}>{_num(v)}</td>" for v in vals)
        rows.append(f"<tr><td>{label}</td>{cells}</tr>")
    return (f"<p>RMSE at each step ahead, {len(bt.origins)} origins over the {_e(bt.split)} "
            f"split ({_e(bt.labels[0])} .. {_e(bt.labels[-1])}).</p>"
            f'<table class="backtest"><thead><tr><th>step</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _figures(folder: Path) -> str:
    files = sorted(folder.glob("*.png"), key=lambda p: (
        list(CAPTIONS).index(p.name) if p.name in CAPTIONS else len(CAPTIONS), p.name))
    out = []
    for p in files:
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        caption = CAPTIONS.get(p.name, p.stem.replace("_", " ").capitalize() + ".")
        out.append(f'<figure><img alt="{_e(p.stem)}" src="data:image/png;base64,{data}">'
                   f"<figcaption>{_e(caption)}</figcaption></figure>")
    return "\n".join(out)


def _inputs(cfg: dict) -> str:
    """What the model reads besides the targets' past, by role, and what the fit noted (the
    calendar features kept or left out, the window chosen, rows sorted or filled...)."""
    pipe = cfg.get("pipeline") or {}
    known = pipe.get("known") or {}
    rows = {"past-observed features": ", ".join(pipe.get("features") or []) or "none",
            "future-known features": ", ".join(known.get("future") or []) or "none",
            "calendar features": ", ".join(known.get("calendar") or []) or "none",
            "public holidays": known.get("holidays") or "none"}
    notes = "".join(f"<li>{_e(n)}</li>" for n in cfg.get("notes") or [])
    return _kv_table("inputs", rows) + (f"<ul>{notes}</ul>" if notes else "")


def render(run: Any, folder: Path, backtest: Any = None) -> str:
    """The report page as a string (see :func:`write_report`)."""
    cfg, metrics = run.config, run.metrics or {}
    findings = run.findings if run.findings is not None else [
        Finding.from_json(f) for f in metrics.get("findings", [])]
    training = cfg.get("training", {})
    source = cfg.get("source", {})
    what = source.get("name") or source.get("path") or source.get("kind", "")
    split = metrics.get("split", {})
    sub = (f"{cfg.get('kind', '')} run, shape {cfg.get('data', {}).get('shape', '')}, "
           f"{cfg.get('model', {}).get('cell', '')} with {cfg.get('model', {}).get('hidden_size')}"
           f" hidden units; data: {what}; scored on the {split.get('evaluated_on', '?')} split; "
           f"best epoch {training.get('best_epoch', '?')} (stopped: "
           f"{training.get('stop_reason', '?')}, {training.get('seconds', '?')} s)")
    parts = [f"<h1>rnnkit run: {_e(Path(folder).resolve().name)}</h1>", f'<p class="sub">{_e(sub)}'
             "</p>"]
    v = verdict(metrics) if metrics.get("model") else ""
    if v:
        parts.append(f'<p class="verdict">{_e(v)}</p>')
        note = significance_note(metrics)
        if note:
            parts.append(f'<p class="sub">{_e(note)}</p>')
    parts += ["<h2>Doctor</h2>", _findings(findings)]
    parts += ["<h2>Metrics (original units) next to the baselines</h2>", _metrics_table(metrics)]
    if cfg.get("kind") == "series":
        parts += ["<h2>Inputs and the fit's choices</h2>", _inputs(cfg)]
    if metrics.get("intervals"):
        parts += ["<h2>Prediction intervals (test part)</h2>", _interval_table(metrics)]
    scores = learned.format_scores(metrics)
    if scores:  # the forecast distribution the model learned: its CRPS or pinball loss
        parts.append(f'<p class="sub">{_e(scores)}</p>')
    if backtest is not None:
        parts += ["<h2>Rolling-origin backtest</h2>", _backtest_table(backtest)]
    extras = _extras(metrics)
    if extras:
        parts += ["<h2>Problem figures</h2>", _kv_table("figure", extras)]
    tables = [_kv_table(k, cfg[k]) for k in ("data", "model", "train") if isinstance(
        cfg.get(k), dict)]
    if split:
        tables.append(_kv_table("split", split))
    parts += ["<h2>Configuration</h2>", f'<div class="cfg">{"".join(tables)}</div>']
    parts += ["<h2>Plots</h2>", _figures(Path(folder))]
    versions = cfg.get("versions", {})
    if versions:
        parts.append('<p class="sub">' + _e(", ".join(f"{k} {v}" for k, v in versions.items()))
                     + "</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>rnnkit report: {_e(Path(folder).resolve().name)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def write_report(run: Any, folder: str | Path, backtest: Any = None) -> Path:
    """Write ``report.html`` into the run folder (after its plots) and return its path, with
    the rolling-origin ``backtest`` (``rnnkit.evaluate.backtest.Backtest``) when given."""
    path = Path(folder) / "report.html"
    atomic_write_bytes(path, render(run, folder, backtest).encode("utf-8"))
    return path
