"""``netns-sim sweep``: arguments and command (sim/cli.py only registers the subcommand).

Exit status: 0 every point finished, 1 some point failed (each reported with its swept
values and error; the others ran), 2 bad input (also an --out that exists, is not empty and
was not created by netns-sim), 130 interrupted by SIGINT/SIGTERM (pending points are
cancelled and running ones killed at once; finished points are kept; run the same command
again to resume).
"""

from __future__ import annotations

import sys
from pathlib import Path

from sim import longlived, signals
from sim.sweep.executors import EXECUTORS

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def add_arguments(sp) -> None:
    sp.add_argument("scenario", metavar="SCENARIO", help="scenario YAML file with a sweep: block, "
                                                         "e.g. scenarios/sweep-load.yaml")
    sp.add_argument("--out", metavar="DIR", help="sweep directory (default: results/<scenario name>); "
                                                 "re-running into the same DIR skips finished points")
    sp.add_argument("--jobs", "-j", type=int, metavar="N", help="points at once (local pool size, or workers "
                                                                "of a local Dask cluster); default: CPU count")
    sp.add_argument("--executor", choices=sorted(EXECUTORS), default="local",
                    help="local process pool (default) or Dask distributed")
    sp.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler address tcp://HOST:PORT or scheduler "
                                                        "file (with --executor dask; default: start a local cluster)")
    sp.add_argument("--set", action="append", metavar="KEY.PATH=VALUE",
                    help="override a value (as for run); also the sweep: block, e.g. --set sweep.replications=1")
    sp.add_argument("--seed", type=int, help="set run.seed (the base seed of every replication)")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary line")


def cmd_sweep(args) -> int:
    from sim.frontdoor import outpath
    from sim.frontdoor.loader import ScenarioError
    from sim.sweep.executors import make_executor
    from sim.sweep.progress import make_progress
    from sim.sweep.runner import run_study
    from sim.sweep.spec import SweepError, expand
    from sim.sweep.store import NotOurs, check_replaceable

    def err(msg):
        print(msg, file=sys.stderr)

    try:
        exp = expand(args.scenario, args.set or [], args.seed)
    except (ScenarioError, SweepError) as e:
        err(str(e))
        return EXIT_BAD_INPUT
    if args.scheduler and args.executor != "dask":
        err("error: --scheduler needs --executor dask")
        return EXIT_BAD_INPUT
    out = Path(args.out) if args.out else Path("results") / exp.name
    if bad := outpath.problem(out):
        err(bad)
        return EXIT_BAD_INPUT
    try:
        check_replaceable(out)                   # before any worker starts (Store.prepare checks again)
    except NotOurs as e:
        err(f"error: {e}")
        return EXIT_BAD_INPUT
    signals.set_outcome(lambda: f"finished points are kept in {out}; run the same command again to resume")
    executor = None
    try:
        try:
            executor = make_executor(args.executor, args.jobs, args.scheduler)
        except (OSError, ValueError, TimeoutError) as e:
            err(f"error: cannot start the {args.executor} executor: {e}")
            return EXIT_BAD_INPUT
        longlived.freeze()                      # imports, validation and the pool's start-up done
        report = run_study(exp, out, executor, progress=make_progress(args.quiet), log=err)
    except NotOurs as e:
        err(f"error: {e}")
        return EXIT_BAD_INPUT
    except (KeyboardInterrupt, signals.Interrupted):
        if executor is not None:
            with signals.critical("cancel the sweep"):      # a second Ctrl-C does not cut this short
                executor.close(cancel=True)
            executor = None
        err(signals.message())
        return EXIT_INTERRUPTED
    except OSError as e:
        if e.errno not in outpath.FULL_DISK:
            raise
        err(f"--out {out}: writing the results failed: {e.strerror or e}; finished points are kept "
            f"(fix: free some space, then run the same command again to resume)")
        return EXIT_FAILED
    finally:
        if executor is not None:
            executor.close()
    for f in report.failed:
        levels = ", ".join(f"{k}={v}" for k, v in (f.get("levels") or {}).items())
        err(f"FAILED point {f.get('id') or '-'} replication {f['replication']} ({levels}): "
            f"{f['error'].splitlines()[0] if f['error'] else ''} (details: {out}/failed/{f['key']}.json)")
    if not args.quiet:
        reps = exp.spec.replications
        print(f"wrote {out}: {report.total // reps} point(s) x {reps} replication(s) = {report.total} run(s): "
              f"{report.done} run now, {report.skipped} already done, {len(report.failed)} failed; "
              f"summary.csv {report.summary_rows} rows; {report.wall_s:.1f} s")
    return EXIT_OK if report.ok else EXIT_FAILED
