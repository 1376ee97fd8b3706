"""The ``rnnkit`` command: parse, call the library, print. No logic of its own.

Exit codes: 0 success, 1 failure at run time, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any

from rnnkit import __version__
from rnnkit.cli.export import add_export
from rnnkit.cli.options import (
    add_checkpoint_options,
    add_covariate_options,
    add_panel_options,
    add_training_options,
    collect,
)
from rnnkit.cli.serve import EXAMPLE as serve_example
from rnnkit.cli.serve import add_serve
from rnnkit.cli.tune import add_tune
from rnnkit.errors import RnnkitError

DEMOS = ("sine", "adder", "seeded", "sunspots")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own usage errors exit 2 too
        self.print_usage(sys.stderr)
        print(f"rnnkit: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _jsonable(o: Any) -> Any:
    from rnnkit.persist import json_ready  # here: persist loads torch; --help must not

    return json_ready(o)


def _emit(args: argparse.Namespace, payload: dict, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(_jsonable(payload), indent=2))
    else:
        print(text)


def _default_out(data: str, target: str | None) -> str:
    stem = os.path.splitext(os.path.basename(data))[0] or "run"
    return os.path.join("runs", f"{stem}-{target}" if target else stem)


def _warning_line(message: Warning | str, category: type[Warning], filename: str,
                  lineno: int, file: Any = None, line: str | None = None) -> None:
    print(f"rnnkit: warning: {message}", file=sys.stderr)


def cmd_fit(args: argparse.Namespace) -> int:
    import warnings

    if args.nproc is not None and "WORLD_SIZE" not in os.environ:
        from rnnkit.cli.launch import launch

        return launch(args)
    if args.max_restarts is not None and args.nproc is None and "WORLD_SIZE" not in os.environ:
        from rnnkit.errors import ConfigError

        raise ConfigError("--max-restarts restarts torchrun's workers; use it with --nproc N.")
    from rnnkit.api import fit, resume
    from rnnkit.errors import ConfigError
    from rnnkit.train.distributed import main_process
    from rnnkit.train.signals import Interrupted

    target = args.target.split(",") if args.target and "," in args.target else args.target
    features = args.features.split(",") if args.features else None
    with warnings.catch_warnings():
        # warnings (e.g. a corrupt checkpoint skipped on resume) as one line each
        warnings.simplefilter("default")
        warnings.showwarning = _warning_line
        try:
            if args.resume:
                given = [o for o in ("target", "features", "time", "out") if getattr(args, o)]
                if given:
                    raise ConfigError(f"--resume continues the run with its own settings; drop "
                                      f"{', '.join('--' + o for o in given)}.")
                folder = args.resume
                run = resume(folder, data=args.data, **collect(args))
            elif args.data is None:
                raise ConfigError("fit needs DATA (a CSV or Parquet file), or --resume RUN to "
                                  "continue an interrupted run.")
            else:
                folder = args.out or _default_out(args.data, args.target)
                run = fit(args.data, target=target, features=features, time=args.time,
                          out=folder, **collect(args))
        except Interrupted as exc:
            if main_process():
                print(exc, file=sys.stderr)
            return exc.exit_code
    if not main_process():
        return 0  # under torchrun, rank 0 reports for every process
    notes = run.config.get("notes") or []
    t = run.config["training"]
    if t.get("resumed_from"):
        notes = [*notes, f"resumed from checkpoint {t['resumed_from']}"]
    text = "\n".join([*notes, "", run.table(), "",
                      f"trained {t['best_epoch']} epochs kept (stopped: {t['stop_reason']}) in "
                      f"{t['seconds']:.1f} s", f"run saved to {folder}"])
    text += "\n" + _doctor_summary(run, folder)
    _emit(args, {"run": str(folder), "metrics": run.metrics, "notes": notes}, text)
    return 0


def _doctor_summary(run: Any, folder: Any) -> str:
    """The doctor's short verdict printed after fit and demo: warnings and errors only."""
    from rnnkit.evaluate import doctor

    findings = run.findings if run.findings is not None else run.diagnose()
    return doctor.summary(findings, folder)


def cmd_evaluate(args: argparse.Namespace) -> int:
    import rnnkit

    run = rnnkit.load(args.run)
    data = args.data
    if data is None and run.config.get("source", {}).get("kind") == "file":
        data = run.config["source"]["path"]
    if data is None and run.config.get("source", {}).get("kind") == "demo":
        from rnnkit import demos

        run = demos.reattach(run)
    metrics = run.evaluate(data) if data is not None or run.data is not None else run.metrics
    text = run.table() if metrics else "no metrics stored for this run"
    if args.backtest is not None:
        from rnnkit.evaluate.backtest import backtest, format_backtest

        bt = backtest(run, k=args.backtest, steps=args.steps, data=data)
        metrics = {**(metrics or {}), "backtest": bt.to_json()}
        text += "\n\n" + format_backtest(bt)
    _emit(args, metrics or {}, text)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    import rnnkit
    from rnnkit.evaluate import doctor

    run = rnnkit.load(args.run)
    if args.data is None and run.config.get("source", {}).get("kind") == "demo":
        from rnnkit import demos

        run = demos.reattach(run)  # a demo's data is regenerated from its seed
    findings = run.diagnose(args.data, control=not args.no_control)
    _emit(args, {"run": args.run, "findings": [f.to_json() for f in findings]},
          doctor.format_findings(findings))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import rnnkit

    run = rnnkit.load(args.run)
    pred = run.predict(args.data)
    return _write_frame(args, pred)


def cmd_forecast(args: argparse.Namespace) -> int:
    from pathlib import Path

    import rnnkit
    from rnnkit.errors import ConfigError

    run = rnnkit.load(args.run)
    if args.plot and run.kind != "series":
        raise ConfigError(f"--plot draws a series run's forecast; {args.run} is a {run.kind} "
                          "run: leave --plot out and plot its CSV.")
    frame = run.forecast(args.steps, args.data, future=args.future)
    if args.plot:
        from rnnkit.run_plots import forecast_plot

        drawn = forecast_plot(run, frame, Path(args.plot), args.data, args.future)
        print(f"wrote the plot to {drawn}", file=sys.stderr)  # stdout may be the CSV or JSON
    return _write_frame(args, frame)


def _write_frame(args: argparse.Namespace, frame: Any) -> int:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(frame.reshape(len(frame), -1))
    long = bool(frame.attrs.get("long_format"))  # panels: id and time are columns already
    if args.out:
        if long:
            frame.to_csv(args.out, index=False)
        else:
            frame.to_csv(args.out, index_label=frame.index.name or "index")
        print(f"wrote {len(frame)} rows to {args.out}")
    elif args.json:
        print(json.dumps(_jsonable({"index": [str(i) for i in frame.index],
                                    "columns": list(frame.columns),
                                    "values": frame.to_numpy().tolist()}), indent=2))
    else:
        print(frame.to_string(index=not long))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import rnnkit

    try:
        prompt = [float(x) for x in args.prompt.split(",")]
    except ValueError:
        from rnnkit.errors import DataError

        raise DataError(f"--prompt {args.prompt!r}: expected numbers separated by commas, "
                        "e.g. --prompt 0.1,0.5,-0.3") from None
    run = rnnkit.load(args.run)
    out = run.generate(prompt, args.steps)
    values = [float(v) for v in out.reshape(len(out), -1)[:, 0]]
    _emit(args, {"prompt": prompt, "generated": values},
          "generated: " + ", ".join(f"{v:.6g}" for v in values))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from rnnkit import demos

    extra = {"shuffle_targets": True} if args.shuffle_targets else {}
    result = demos.run_demo(args.name, out=args.out, **collect(args), **extra)
    _emit(args, result["metrics"],
          result["text"] + "\n" + _doctor_summary(result["run"], result["folder"]))
    return 0


EXAMPLES = {
    "fit": "rnnkit fit sunspots.csv --target sunspot_number --out runs/sun\n"
           "         rnnkit fit --resume runs/sun      # after Ctrl-C, a kill or a crash",
    "evaluate": "rnnkit evaluate runs/sun            # or: rnnkit evaluate runs/sun new.csv\n"
                "         rnnkit evaluate runs/sun --backtest 10 --steps 12",
    "doctor": "rnnkit doctor runs/sun              # findings, evidence and what to try",
    "predict": "rnnkit predict runs/sun new.csv --out predictions.csv",
    "forecast": "rnnkit forecast runs/sun --steps 24 --out forecast.csv",
    "generate": "rnnkit generate runs/seeded --prompt 0.1,0.5,-0.3,0.9,0.2 --steps 5",
    "demo": "rnnkit demo adder --activation tanh   # see why tanh cannot add",
    "tune": "rnnkit tune sun.csv --target sunspot_number --trials 20 --epochs 30 --out tuned\n"
            "         (the same command again continues the study: 20 more trials)",
    "serve": serve_example,
    "export": "rnnkit export runs/sun --format onnx --steps 12 --out sun.onnx\n"
              "         rnnkit export runs/sun --stateful --out sun-step.onnx",
}


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rnnkit", description="Recurrent neural networks that learn sequences and "
                "just work.", epilog="example: " + EXAMPLES["fit"])
    p.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in (_add_fit, _add_evaluate, _add_doctor, _add_predictions, _add_demo):
        add(sub)
    add_tune(sub, _command)  # rnnkit/cli/tune.py: the search with Optuna
    add_serve(sub, _command)  # rnnkit/cli/serve.py: HTTP JSON service (FastAPI, uvicorn)
    add_export(sub, _command)  # rnnkit/cli/export.py: the forecasting loop as ONNX
    return p


def _command(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    c = sub.add_parser(name, help=help_text, description=help_text,
                       epilog="example: " + EXAMPLES[name],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--json", action="store_true", help="machine-readable output")
    return c


def _add_fit(sub: Any) -> None:
    c = _command(sub, "fit", "Train a model on a CSV/Parquet series and save the run folder.")
    c.add_argument("data", nargs="?", help="CSV or Parquet file")
    c.add_argument("--target", help="column(s) to predict, comma-separated")
    c.add_argument("--features", help="extra input columns, comma-separated")
    c.add_argument("--time", help="time column (default: detected)")
    c.add_argument("--out", help="run folder (default runs/<file>-<target>)")
    add_training_options(c)
    add_covariate_options(c)
    add_checkpoint_options(c)
    add_panel_options(c)
    c.set_defaults(func=cmd_fit)


def _add_evaluate(sub: Any) -> None:
    c = _command(sub, "evaluate", "Metrics of a saved run next to the baselines.")
    c.add_argument("run")
    c.add_argument("data", nargs="?", help="data to evaluate on (default: the fitted data)")
    c.add_argument("--backtest", type=int, metavar="K", help="also re-forecast from K origins "
                   "over the test split, with errors per step ahead (series runs)")
    c.add_argument("--steps", type=int, help="rows forecast from each backtest origin (default: "
                   "the horizon, or one season up to 24)")
    c.set_defaults(func=cmd_evaluate)


def _add_doctor(sub: Any) -> None:
    c = _command(sub, "doctor", "Say in plain words whether a run learned anything, and why not.")
    c.add_argument("run")
    c.add_argument("data", nargs="?", help="data to check against (default: the fitted data)")
    c.add_argument("--no-control", action="store_true", help="skip the shuffled-target control "
                   "(a copy trained briefly on shuffled targets)")
    c.set_defaults(func=cmd_doctor)


def _add_predictions(sub: Any) -> None:
    c = _command(sub, "predict", "One-step predictions for every row of a table.")
    c.add_argument("run")
    c.add_argument("data")
    c.add_argument("--out", help="write a CSV here instead of printing")
    c.set_defaults(func=cmd_predict)

    c = _command(sub, "forecast", "Continue the series past its end.")
    c.add_argument("run")
    c.add_argument("--steps", type=int, required=True)
    c.add_argument("--data", help="history to continue (default: the fitted series)")
    c.add_argument("--future", metavar="CSV", help="the coming values of the run's future "
                   "features, one row per date ahead, with the data's time column")
    c.add_argument("--out", help="write a CSV here instead of printing")
    c.add_argument("--plot", metavar="PNG", help="also draw the forecast after its history, "
                   "with its intervals and the future features it was given")
    c.set_defaults(func=cmd_forecast)

    c = _command(sub, "generate", "Continue a sequence from seed values.")
    c.add_argument("run")
    c.add_argument("--prompt", required=True, help="seed values, comma-separated")
    c.add_argument("--steps", type=int, required=True)
    c.set_defaults(func=cmd_generate)


def _add_demo(sub: Any) -> None:
    c = _command(sub, "demo", "Run a founding problem end to end: " + ", ".join(DEMOS) + ".")
    c.add_argument("name", choices=DEMOS)
    c.add_argument("--shuffle-targets", action="store_true", help="seeded only: pair each "
                   "prompt with another sequence's continuation (a misaligned batching helper)")
    c.add_argument("--out", help="run folder (default runs/<name>)")
    add_training_options(c)
    c.set_defaults(func=cmd_demo)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    # Every command writes files: a write past `ulimit -f` then fails with EFBIG, which becomes
    # a clean error naming the file, instead of SIGXFSZ killing the process mid-write.
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        return int(args.func(args) or 0)
    except RnnkitError as exc:
        print(f"rnnkit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`rnnkit evaluate RUN --json | head -1`): stop quietly like
        # other Unix tools instead of reporting an internal error. stdout goes to devnull so
        # the flush at exit does not fail a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141  # 128 + SIGPIPE: what a shell reports for a tool stopped by a closed pipe
    except Exception as exc:  # last resort: one line, not a traceback from deep in a library
        if os.environ.get("RNNKIT_DEBUG"):
            raise
        print(f"rnnkit: internal error: {type(exc).__name__}: {exc} (set RNNKIT_DEBUG=1 for "
              "the traceback and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
