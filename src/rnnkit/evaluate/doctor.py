"""The doctor: says in plain words whether a run learned anything, and why not.

``diagnose(run)`` checks the run against what a working model looks like and returns a list of
:class:`Finding` (code, severity, one-sentence message, evidence figures, one-sentence fix):

| code | looks at |
|---|---|
| ``no-skill``, ``baseline-better`` | metrics vs the baselines; spread of the predictions |
| ``not-significant`` | the verdict's Diebold–Mariano p-value against the best baseline |
| ``saturation`` | output range of a bounded state vs the targets; units at the bounds |
| ``priming`` | error per step after a zero state, vs the warm-up the run declares |
| ``overfitting``, ``still-improving`` | the per-epoch train/validation losses |
| ``exploding-gradients``, ``vanishing-gradients`` | the per-epoch gradient norms |
| ``constant-series``, ``unscaled-data`` | the training data |
| ``trend-needs-diff``, ``season-longer-than-window`` | the pipeline's choices (series) |
| ``misaligned`` | a copy trained briefly on shuffled targets must do clearly worse |
| ``covariates``, ``idle-covariate`` | held-out RMSE with each covariate shuffled across windows |

Example::

    run = rnnkit.fit(seqs, target=sums, cell="rnn", activation="tanh", scaler="none")
    for f in run.diagnose():
        print(f.line())
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rnnkit.errors import DataError
from rnnkit.evaluate.findings.base import SEVERITIES, Finding, Subject
from rnnkit.evaluate.findings.control import check_control
from rnnkit.evaluate.findings.covariates import check_covariates
from rnnkit.evaluate.findings.data import check_data
from rnnkit.evaluate.findings.history import check_history
from rnnkit.evaluate.findings.model import check_priming, check_saturation
from rnnkit.evaluate.findings.skill import check_skill

Check = Callable[[Subject], list[Finding]]

# Root causes first: within one severity, findings keep this order, so a constant series or a
# saturated state is read before the poor scores it causes.
CHECKS: list[Check] = [check_data, check_saturation, check_priming, check_control, check_skill,
                       check_history, check_covariates]

__all__ = ["CHECKS", "Finding", "attach_data", "diagnose", "format_findings", "summary"]


def attach_data(run: Any, data: Any = None, target: Any = None) -> bool:
    """Give ``run`` its data for the checks that need it; returns whether it has data.

    data: the data to diagnose on, treated as the fitted data (same splits). Without it, a run
    keeps the data it was fitted on, and a run loaded from disk re-reads its source file.
    """
    if data is not None:
        if run.kind == "sequences" and run.pipeline.shape == "seq2one" and target is None:
            raise DataError("diagnosing a sequence-to-one run on new sequences needs their "
                            "targets too: pass target=, one value per sequence.")
        run.attach(data, target)
    elif run.data is None:
        source = run.config.get("source", {})
        if source.get("kind") == "file" and source.get("path"):
            try:
                run.attach(source["path"])
            except DataError:
                return False  # moved or changed since the fit: check what needs no data
    return run.data is not None


def diagnose(run: Any, data: Any = None, *, target: Any = None, control: bool = True
             ) -> list[Finding]:
    """Check ``run`` and return its findings, worst first.

    data: optional data to check against (default: the fitted data, or its source file).
    control: also train the shuffled-target control (a few seconds at most).
    """
    if run.kind == "panel":
        return _diagnose_panel(run, data)
    has_data = attach_data(run, data, target)
    stored = run.metrics
    if has_data and run.evaluation is None:
        fresh = run.evaluate()
        # a loaded run's metrics.json may hold problem-specific figures (demos) that a fresh
        # evaluation does not recompute: keep them beside the new scores
        run.metrics = {**(stored or {}), **fresh}
    subject = Subject(run, run.metrics)
    findings: list[Finding] = []
    for check in CHECKS:
        if control or check is not check_control:
            findings.extend(check(subject))
    if not has_data:
        findings.append(Finding(
            "no-data", "info", "the run's data is not at hand, so only its history and stored "
            "metrics were checked.", {}, "pass the data: rnnkit doctor RUN DATA, or "
            "run.diagnose(data)."))
    return _worst_first(_relate(findings))


def _diagnose_panel(run: Any, data: Any) -> list[Finding]:
    """The checks that apply to a pooled panel: skill against the baselines and the training
    history (the per-series data checks are for single-series runs)."""
    if data is not None or run.metrics is None:
        run.evaluate(data)
    subject = Subject(run, run.metrics)
    findings = _worst_first(check_skill(subject) + check_history(subject))
    if not any(f.code == "no-data" for f in findings):
        findings.append(Finding(
            "panel", "info", f"a global model over {len(run.config['panel']['ids'])} series: "
            "skill and history were checked; the data and state checks look at one series at "
            "a time.", {}, "fit one series alone to run those checks on it."))
    return findings


def _worst_first(findings: list[Finding]) -> list[Finding]:
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    return sorted(findings, key=lambda f: order[f.severity])


def _relate(findings: list[Finding]) -> list[Finding]:
    """Name a root cause once: with a saturated state, odd gradient norms are its symptom, and
    advice to change the optimiser would send the user the wrong way."""
    codes = {f.code for f in findings}
    if "saturation" not in codes:
        return findings
    out = []
    for f in findings:
        if f.code in ("exploding-gradients", "vanishing-gradients"):
            f = Finding(f.code, "info", f.message.rstrip(".") + ", a symptom of the saturation "
                        "above.", f.evidence, "fix the saturation first.")
        out.append(f)
    return out


def format_findings(findings: list[Finding]) -> str:
    """One line per finding, or a clear line when there is nothing to report."""
    lines = [f.line() for f in findings]
    if all(f.severity == "info" for f in findings):
        head = "no problems found: no check failed"
        lines.insert(0, head + (f"; {len(lines)} note{'s' if len(lines) > 1 else ''}:"
                                if lines else "."))
    return "\n".join(lines)


def summary(findings: list[Finding], run_folder: Any = None) -> str:
    """The short form printed after ``fit`` and ``demo``: warnings and errors, one line each."""
    serious = [f for f in findings if f.severity != "info"]
    notes = len(findings) - len(serious)
    where = f": rnnkit doctor {run_folder}" if run_folder is not None else ""
    if not serious:
        return "doctor: no problems found" + (
            f" ({notes} note{'s' if notes != 1 else ''}{where})" if notes else "")
    lines = [f"doctor: {f.line()}" for f in serious]
    if notes:
        lines.append(f"doctor: and {notes} note{'s' if notes != 1 else ''}{where}")
    return "\n".join(lines)
