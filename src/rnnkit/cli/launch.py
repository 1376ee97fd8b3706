"""``rnnkit fit --nproc N``: the fit command again, under torchrun.

torchrun (PyTorch's own launcher) starts the processes, connects them and restarts them after a
failure (``--max-restarts``); this module only builds its command line, passes its output
through without torchrun's Python traceback, and turns its exit status into rnnkit's.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys


def launch(args: argparse.Namespace) -> int:
    """``rnnkit fit --nproc N``: the same command under torchrun, N processes on this machine.
    torchrun does the launching, rendezvous and restarts; rnnkit only builds its command."""
    from rnnkit.errors import ConfigError, TrainingError

    if args.nproc < 1:
        raise ConfigError(f"--nproc {args.nproc}: needs at least 1 process.")
    rest, skip = [], False
    for a in args.argv:
        if skip:
            skip = False
            continue
        if a in ("--nproc", "--max-restarts"):
            skip = True
            continue
        if a.startswith(("--nproc=", "--max-restarts=")):
            continue
        rest.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={args.nproc}", f"--max-restarts={args.max_restarts or 0}",
           "-m", "rnnkit", *rest]
    if not args.quiet:
        print("rnnkit: launching " + " ".join(cmd[1:]), file=sys.stderr)
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, errors="replace")
    # Ctrl-C reaches torchrun and the workers from the terminal: they save and stop, and this
    # process waits for that instead of leaving the save running behind the prompt; a SIGTERM
    # sent to this process alone is passed on to torchrun.
    before = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
              signal.SIGTERM: signal.signal(signal.SIGTERM,
                                            lambda signum, frame: proc.send_signal(signum))}
    skipping = interrupted = False
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            # torchrun ends a failed job with its own Python traceback before its failure
            # report; the report and the workers' one-line errors are what a user needs
            if line.startswith("Traceback (most recent call last):"):
                skipping = True
            elif skipping and line.startswith("torch.distributed.elastic"):
                skipping = False
                continue
            interrupted |= line.startswith("interrupted at epoch")
            if not skipping:
                sys.stderr.write(line)
        code = proc.wait()
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    if code != 0 and interrupted:
        return 130  # the workers saved a checkpoint and said how to resume
    if code != 0:
        where = args.resume or args.out
        raise TrainingError(
            f"training with {args.nproc} processes failed (torchrun exit status {code}; the "
            "lines above say which worker and why)"
            + (f"; checkpoints in {where} are intact: rnnkit fit --resume {where} --nproc "
               f"{args.nproc}, or add --max-restarts 1 to retry on its own" if where else ""))
    return 0
